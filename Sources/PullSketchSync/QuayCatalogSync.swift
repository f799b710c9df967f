public import Foundation
import PullSketchCore
import PullSketchPostgres
public import PullSketchStore

/// Reads Quay's live tags from its database — `tag` rows alive now (`lifetime_end_ms` null or in
/// the future), not hidden, with their manifest's digest and `lifetime_start_ms` as push time,
/// named through `repository` and `"user"` — in pages by tag id, and records them in the catalog
/// (`Catalog.observe`), with the platform manifests of each image index among them (Quay's
/// `manifestchild`, each platform read from the index's `manifest_bytes`). The checkpoint is the last tag id written. Progress counts tags; tags of one
/// repository are spread over the pages, so repositories are not counted (that would hold every
/// name in memory).
public struct QuayCatalogSync: Sendable {
    public let quay: BlockingDatabase
    public let database: BlockingDatabase
    public let checkpointFile: URL?
    public var pageSize = 5_000

    public init(quay: BlockingDatabase, database: BlockingDatabase, checkpointFile: URL?) {
        self.quay = quay
        self.database = database
        self.checkpointFile = checkpointFile
    }

    public func run(report: @Sendable (SyncProgress) -> Void = { _ in }) async throws -> SyncProgress {
        var checkpoint = try SyncCheckpoint.load(checkpointFile, source: "quay-database")
        var progress = SyncProgress()
        while true {
            let after = checkpoint.position ?? "0"
            let size = pageSize
            let rows = try await quay.run { connection in
                try connection.query(
                    """
                    SELECT t.id, u.username || '/' || r.name AS repository, t.name AS tag, m.digest, t.lifetime_start_ms, m.id AS manifest_id
                    FROM tag t JOIN repository r ON r.id = t.repository_id JOIN "user" u ON u.id = r.namespace_user_id
                    JOIN manifest m ON m.id = t.manifest_id
                    WHERE t.id > $1 AND NOT t.hidden
                        AND (t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > (extract(epoch from now()) * 1000)::bigint)
                    ORDER BY t.id LIMIT $2
                    """,
                    [after, String(size)]
                ).namedRows.map { row in
                    (
                        id: try row.decode("id", as: Int64.self), repository: try row.decode("repository", as: String.self),
                        tag: try row.decode("tag", as: String.self), digest: try row.decode("digest", as: String.self),
                        start: try row.decode("lifetime_start_ms", as: Int64.self), manifest: try row.decode("manifest_id", as: Int64.self)
                    )
                }
            }
            guard let last = rows.last else { break }
            var batch: [ObservedTag] = []
            for row in rows {
                guard let repository = try? RepositoryName(row.repository), let tag = try? TagName(row.tag), let digest = try? Digest(row.digest) else {
                    progress.skipped += 1
                    continue
                }
                batch.append(ObservedTag(repository: repository, tag: tag, digest: digest, time: Timestamp(millisecondsSinceEpoch: row.start)))
            }
            let manifests = Set(rows.map(\.manifest)).sorted().map(String.init)
            let links = try await quay.run { try Self.platformManifests(of: manifests, $0) }
            let observed = batch
            try await database.run { connection in
                let catalog = Catalog(connection: connection)
                try catalog.observe(observed)
                try catalog.link(links)
            }
            progress.tags += batch.count
            checkpoint.position = String(last.id)
            try checkpoint.save(checkpointFile)
            report(progress)
        }
        return progress
    }

    /// The platform manifests the image indexes among `manifests` (Quay manifest ids) list, each
    /// with the platform the index names for it.
    private static func platformManifests(of manifests: [String], _ connection: PostgresConnection) throws -> [IndexLink] {
        try connection.query(
            """
            SELECT u.username || '/' || r.name AS repository, p.digest AS index, c.digest AS child, (
                SELECT (e -> 'platform' ->> 'os') || '/' || (e -> 'platform' ->> 'architecture') || coalesce('/' || (e -> 'platform' ->> 'variant'), '')
                FROM jsonb_array_elements(coalesce(p.manifest_bytes::jsonb -> 'manifests', '[]')) e WHERE e ->> 'digest' = c.digest LIMIT 1
            ) AS platform
            FROM manifestchild x JOIN manifest p ON p.id = x.manifest_id JOIN manifest c ON c.id = x.child_manifest_id
            JOIN repository r ON r.id = x.repository_id JOIN "user" u ON u.id = r.namespace_user_id
            WHERE x.manifest_id = ANY($1::bigint[])
            """,
            [PostgresArray.literal(manifests)]
        ).namedRows.compactMap { row in
            guard let repository = try? RepositoryName(try row.decode("repository", as: String.self)),
                let index = try? Digest(try row.decode("index", as: String.self)), let child = try? Digest(try row.decode("child", as: String.self))
            else { return nil }
            return IndexLink(repository: repository, index: index, child: child, platform: try row.decode("platform"))
        }
    }
}
