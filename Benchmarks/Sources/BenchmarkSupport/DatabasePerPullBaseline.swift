public import PullSketchCore
public import PullSketchPostgres

/// A database write per pull: the tag's and the manifest's statistics upserted, each its own
/// autocommitted statement, the moment the pull happens.
public struct DatabasePerPullBaseline {
    let connection: PostgresConnection
    let repositoryIDs: [String: Int]

    public init(connection: PostgresConnection) throws {
        self.connection = connection
        repositoryIDs = try QuayTables.repositoryIDs(connection)
    }

    public func record(_ event: PullEvent) throws {
        guard case .tag(let tag) = event.reference, let digest = event.servedDigest, let id = repositoryIDs[event.repository.value] else { return }
        let seconds = String(event.time.millisecondsSinceEpoch / 1000)
        _ = try connection.query(
            """
            INSERT INTO tagpullstatistics AS s (repository_id, tag_name, tag_pull_count, last_tag_pull_date, current_manifest_digest)
            VALUES ($1, $2, 1, to_timestamp($3::bigint) AT TIME ZONE 'UTC', $4)
            ON CONFLICT (repository_id, tag_name) DO UPDATE SET tag_pull_count = s.tag_pull_count + 1,
                last_tag_pull_date = GREATEST(s.last_tag_pull_date, EXCLUDED.last_tag_pull_date), current_manifest_digest = EXCLUDED.current_manifest_digest
            """,
            [String(id), tag.value, seconds, digest.value]
        )
        _ = try connection.query(
            """
            INSERT INTO manifestpullstatistics AS s (repository_id, manifest_digest, manifest_pull_count, last_manifest_pull_date)
            VALUES ($1, $2, 1, to_timestamp($3::bigint) AT TIME ZONE 'UTC')
            ON CONFLICT (repository_id, manifest_digest) DO UPDATE SET manifest_pull_count = s.manifest_pull_count + 1,
                last_manifest_pull_date = GREATEST(s.last_manifest_pull_date, EXCLUDED.last_manifest_pull_date)
            """,
            [String(id), digest.value, seconds]
        )
    }
}
