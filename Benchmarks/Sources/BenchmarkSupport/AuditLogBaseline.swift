import Foundation
public import PullSketchCore
public import PullSketchPostgres

/// Pull statistics from the audit log (seed 003): every pull is a `pull_repo` row in `logentry3`
/// (what Quay writes today, ../shared/FACTS.md), and a worker reads new rows in id order, 1,000 at a
/// time, parses each row's metadata and does a get-or-create of the tag's statistics row: a SELECT,
/// then an UPDATE or an INSERT. A pull by tag carries no digest in its metadata, so manifests
/// cannot be counted from those rows.
public struct AuditLogBaseline {
    let connection: PostgresConnection
    let repositoryIDs: [String: Int]
    private var lastID: Int64 = 0

    public init(connection: PostgresConnection) throws {
        self.connection = connection
        repositoryIDs = try QuayTables.repositoryIDs(connection)
    }

    /// The part of `metadata_json` a pull row carries that the worker reads.
    struct Metadata: Codable {
        var repo: String
        var namespace: String
        var tag: String?
        var manifestDigest: String?

        enum CodingKeys: String, CodingKey {
            case repo, namespace, tag
            case manifestDigest = "manifest_digest"
        }
    }

    /// What the registry already does per pull: one log row.
    public func log(_ event: PullEvent) throws {
        guard let id = repositoryIDs[event.repository.value] else { return }
        let name = event.repository.value
        let slash = name.lastIndex(of: "/") ?? name.startIndex
        var metadata = Metadata(repo: String(name[name.index(after: slash)...]), namespace: String(name[..<slash]))
        switch event.reference {
        case .tag(let tag): metadata.tag = tag.value
        case .digest(let digest): metadata.manifestDigest = digest.value
        }
        _ = try connection.query(
            "INSERT INTO logentry3 (kind_id, account_id, repository_id, datetime, ip, metadata_json) VALUES ($1, 1, $2, to_timestamp($3::bigint / 1000.0) AT TIME ZONE 'UTC', '127.0.0.1', $4)",
            [String(QuayTables.pullRepoKind), String(id), String(event.time.millisecondsSinceEpoch), String(decoding: try JSONEncoder().encode(metadata), as: UTF8.self)]
        )
    }

    /// Reads and aggregates the next 1,000 log rows; returns how many it read.
    public mutating func aggregate() throws -> Int {
        let rows = try connection.query(
            "SELECT id, repository_id, (extract(epoch FROM datetime) * 1000)::bigint, metadata_json FROM logentry3 WHERE kind_id = $1 AND id > $2 ORDER BY id LIMIT 1000",
            [String(QuayTables.pullRepoKind), String(lastID)]
        ).rows
        let decoder = JSONDecoder()
        for row in rows {
            lastID = Int64(row[0]!)!
            guard let metadata = try? decoder.decode(Metadata.self, from: Data(row[3]!.utf8)), let tag = metadata.tag else { continue }
            let seconds = String(Int64(row[2]!)! / 1000)
            let found = try connection.query("SELECT id FROM tagpullstatistics WHERE repository_id = $1 AND tag_name = $2", [row[1]!, tag]).rows
            if let row = found.first, let id = row[0] {
                _ = try connection.query(
                    """
                    UPDATE tagpullstatistics SET tag_pull_count = tag_pull_count + 1,
                        last_tag_pull_date = GREATEST(last_tag_pull_date, to_timestamp($1::bigint) AT TIME ZONE 'UTC') WHERE id = $2
                    """,
                    [seconds, id]
                )
            } else {
                _ = try connection.query(
                    "INSERT INTO tagpullstatistics (repository_id, tag_name, tag_pull_count, last_tag_pull_date) VALUES ($1, $2, 1, to_timestamp($3::bigint) AT TIME ZONE 'UTC')",
                    [row[1]!, tag, seconds]
                )
            }
        }
        return rows.count
    }
}
