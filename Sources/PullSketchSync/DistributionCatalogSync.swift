public import Foundation
import PullSketchCore
import PullSketchEvents
public import PullSketchStore

/// Walks a distribution registry through its API — every repository of `/v2/_catalog`, every tag
/// of `tags/list`, the digest of each by `HEAD`, the platform manifests of each image index — and records what it finds in the catalog
/// (`Catalog.observe`), a repository at a time. The API has no push times, so a tag found is
/// recorded as pushed when it was seen, which errs the safe way: a tag nobody pulls becomes a
/// prune candidate a full window after the sync, never before. Memory holds one page of names and
/// one batch of tags; a checkpoint after each repository lets a stopped sync resume after it.
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
        var more = true
        while more {
            let page = try await client.repositories(after: checkpoint.position, pageSize: pageSize)
            for name in page.names {
                try await sync(repository: name, progress: &progress)
                checkpoint.position = name
                try checkpoint.save(checkpointFile)
                report(progress)
            }
            more = page.more && !page.names.isEmpty
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
        var last: String?
        var more = true
        while more {
            let page = try await client.tags(of: name, after: last, pageSize: pageSize)
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
            last = page.names.last
            more = page.more && last != nil
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
