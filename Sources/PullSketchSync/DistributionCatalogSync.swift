public import Foundation
import PullSketchCore
import PullSketchEvents
public import PullSketchStore

/// Walks a distribution registry through its API — every repository of `/v2/_catalog`, every tag
/// of `tags/list`, the digest of each by `HEAD`, the platform manifests of each image index — and records what it finds in the catalog
/// (`Catalog.observe`), a repository at a time. The API has no push times, so a tag found is
/// recorded as pushed when it was seen, which errs the safe way: a tag nobody pulls becomes a
/// prune candidate a full window after the sync, never before. Memory holds one page of names and
/// one batch of tags; a checkpoint after each repository (its name and the page it was on) lets a
/// stopped sync resume after it.
public struct DistributionCatalogSync: Sendable {
    public let client: RegistryClient
    public let database: BlockingDatabase
    public let checkpointFile: URL?
    public var pageSize = 100
    public var batchSize = 1_000

    public init(client: RegistryClient, database: BlockingDatabase, checkpointFile: URL?) {
        self.client = client
        self.database = database
        self.checkpointFile = checkpointFile
    }

    public func run(report: @Sendable (SyncProgress) -> Void = { _ in }) async throws -> SyncProgress {
        var checkpoint = try SyncCheckpoint.load(checkpointFile, source: client.base.absoluteString)
        var progress = SyncProgress()
        // A checkpoint with a page's address resumes on that page, after the names done there;
        // one without (written before pages were kept) asks for the names after its position.
        var request = checkpoint.page.flatMap(URL.init(string:)).map(RegistryClient.PageRequest.at)
            ?? .after(checkpoint.position, pageSize: pageSize)
        var done = checkpoint.page == nil ? nil : checkpoint.position
        while true {
            let page = try await client.repositories(request)
            let start = done.flatMap { page.names.firstIndex(of: $0) }.map { $0 + 1 } ?? 0
            done = nil
            for name in page.names[start...] {
                try await sync(repository: name, progress: &progress)
                checkpoint.position = name
                checkpoint.page = page.address.absoluteString
                try checkpoint.save(checkpointFile)
                report(progress)
            }
            guard let next = page.next else { break }
            request = .at(next)
        }
        return progress
    }

    private func sync(repository name: String, progress: inout SyncProgress) async throws {
        guard let repository = try? RepositoryName(name) else {
            progress.skipped += 1
            return
        }
        var batch: [ObservedTag] = []
        var links: [IndexLink] = []
        /// Indexes of this repository already read: several tags often point at one.
        var indexesRead: Set<Digest> = []
        var request = RegistryClient.PageRequest.after(nil, pageSize: pageSize)
        while true {
            let page = try await client.tags(of: name, request)
            for text in page.names {
                let seen = Timestamp.now()
                guard let tag = try? TagName(text), let manifest = try await client.manifest(of: name, tag: text),
                    let digest = try? Digest(manifest.digest)
                else {
                    progress.skipped += 1
                    continue
                }
                batch.append(ObservedTag(repository: repository, tag: tag, digest: digest, time: seen))
                if let mediaType = manifest.mediaType, NotificationEvent.indexMediaTypes.contains(mediaType), !indexesRead.contains(digest) {
                    indexesRead.insert(digest)
                    links += try await client.platforms(of: name, index: digest.value).compactMap { child in
                        (try? Digest(child.digest)).map { IndexLink(repository: repository, index: digest, child: $0, platform: child.platform) }
                    }
                }
                if batch.count + links.count >= batchSize {
                    try await write(batch, links, progress: &progress)
                    batch.removeAll(keepingCapacity: true)
                    links.removeAll(keepingCapacity: true)
                }
            }
            guard let next = page.next else { break }
            request = .at(next)
        }
        try await write(batch, links, progress: &progress)
        progress.repositories += 1
    }

    private func write(_ batch: [ObservedTag], _ links: [IndexLink], progress: inout SyncProgress) async throws {
        guard !batch.isEmpty || !links.isEmpty else { return }
        try await database.run { connection in
            let catalog = Catalog(connection: connection)
            try catalog.observe(batch)
            try catalog.link(links)
        }
        progress.tags += batch.count
    }
}
