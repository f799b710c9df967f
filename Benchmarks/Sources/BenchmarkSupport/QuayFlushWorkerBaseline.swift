import Foundation
public import PullSketchPostgres
public import PullSketchRedis

/// Quay upstream's flush worker (`RedisFlushWorker`, ../shared/reference/quay.md §3.4), cycle for
/// cycle: SCAN `pull_events:*` 100 at a time until 1,000 keys, RENAME each to a processing key and
/// HGETALL it, aggregate per tag and per manifest, then per table in one transaction look up the
/// existing rows in OR-chunks of 50, UPDATE each existing row, insert the new ones in one
/// statement, and finally DEL the processing keys 100 at a time. Times are stored as UTC (upstream
/// stores naive local time, a defect not worth copying).
public struct QuayFlushWorkerBaseline {
    public static let keysPerCycle = 1_000
    public static let cycleSeconds = 300
    let redis: RedisConnection
    let connection: PostgresConnection
    let repositoryIDs: [String: Int]

    public init(redis: RedisConnection, connection: PostgresConnection) throws {
        self.redis = redis
        self.connection = connection
        repositoryIDs = try QuayTables.repositoryIDs(connection)
    }

    struct Pulls {
        var count = 0
        var last = 0
        var digest = ""
    }

    /// One cycle; returns the keys it flushed (0 when Redis holds none).
    public func cycle() throws -> Int {
        var cursor = "0"
        var keys: [String] = []
        repeat {
            guard case .array(let parts) = try redis.command(["SCAN", cursor, "MATCH", QuayPerPullBaseline.keyPrefix + "*", "COUNT", "100"]),
                parts.count == 2, case .bulk(let next) = parts[0], case .array(let found) = parts[1]
            else { throw RedisError(.unexpectedReply, "SCAN") }
            cursor = String(decoding: next, as: UTF8.self)
            for case .bulk(let key) in found { keys.append(String(decoding: key, as: UTF8.self)) }
        } while cursor != "0" && keys.count < Self.keysPerCycle
        guard !keys.isEmpty else { return 0 }

        var tags: [String: Pulls] = [:], manifests: [String: Pulls] = [:]
        var processing: [String] = []
        let claimedAt = Int(Date().timeIntervalSince1970 * 1000)
        for (index, key) in keys.enumerated() {
            let claimed = "\(key):processing:\(claimedAt):\(index)"
            _ = try redis.command(["RENAME", key, claimed])
            processing.append(claimed)
            guard case .array(let items) = try redis.command(["HGETALL", claimed]) else { continue }
            var fields: [String: String] = [:]
            for pair in stride(from: 0, to: items.count - 1, by: 2) {
                if case .bulk(let name) = items[pair], case .bulk(let value) = items[pair + 1] {
                    fields[String(decoding: name, as: UTF8.self)] = String(decoding: value, as: UTF8.self)
                }
            }
            guard let repository = fields["repository"].flatMap({ repositoryIDs[$0] }), let digest = fields["manifest_digest"],
                let count = fields["pull_count"].flatMap(Int.init), let last = fields["last_pull_timestamp"].flatMap(Int.init)
            else { continue }
            func add(_ table: inout [String: Pulls], _ key: String) {
                var pulls = table[key, default: Pulls()]
                pulls.count += count
                if last >= pulls.last { (pulls.last, pulls.digest) = (last, digest) }
                table[key] = pulls
            }
            if fields["pull_method"] == "tag", let tag = fields["tag_name"] { add(&tags, "\(repository)\t\(tag)") }
            add(&manifests, "\(repository)\t\(digest)")
        }
        try upsert(tags, table: "tagpullstatistics", name: "tag_name", count: "tag_pull_count", last: "last_tag_pull_date", withDigest: true)
        try upsert(manifests, table: "manifestpullstatistics", name: "manifest_digest", count: "manifest_pull_count", last: "last_manifest_pull_date", withDigest: false)
        for start in stride(from: 0, to: processing.count, by: 100) {
            _ = try redis.command(["DEL"] + processing[start..<min(start + 100, processing.count)])
        }
        return keys.count
    }

    /// `bulk_upsert_*_statistics`: existing rows looked up 50 keys per query and updated one by
    /// one, new rows inserted together, all in one transaction.
    private func upsert(_ rows: [String: Pulls], table: String, name: String, count: String, last: String, withDigest: Bool) throws {
        let entries = rows.map { key, pulls in
            let parts = key.split(separator: "\t", maxSplits: 1)
            return (repository: String(parts[0]), name: String(parts[1]), pulls: pulls)
        }
        try connection.transaction {
            var existing: [String: String] = [:]
            for start in stride(from: 0, to: entries.count, by: 50) {
                let chunk = entries[start..<min(start + 50, entries.count)]
                let conditions = chunk.indices.map { "(repository_id = $\(2 * ($0 - start) + 1) AND \(name) = $\(2 * ($0 - start) + 2))" }
                let found = try connection.query(
                    "SELECT id, repository_id, \(name) FROM \(table) WHERE \(conditions.joined(separator: " OR "))",
                    chunk.flatMap { [$0.repository, $0.name] }
                )
                for row in found.rows { existing["\(row[1]!)\t\(row[2]!)"] = row[0]! }
            }
            var fresh: [(repository: String, name: String, pulls: Pulls)] = []
            for entry in entries {
                guard let id = existing["\(entry.repository)\t\(entry.name)"] else {
                    fresh.append(entry)
                    continue
                }
                _ = try connection.query(
                    """
                    UPDATE \(table) SET \(count) = \(count) + $1,
                        \(last) = CASE WHEN \(last) < to_timestamp($2::bigint) AT TIME ZONE 'UTC' THEN to_timestamp($2::bigint) AT TIME ZONE 'UTC' ELSE \(last) END
                        \(withDigest ? ", current_manifest_digest = $4" : "")
                    WHERE id = $3
                    """,
                    [String(entry.pulls.count), String(entry.pulls.last), id] + (withDigest ? [entry.pulls.digest] : [])
                )
            }
            guard !fresh.isEmpty else { return }
            _ = try connection.query(
                """
                INSERT INTO \(table) (repository_id, \(name), \(count), \(last)\(withDigest ? ", current_manifest_digest" : ""))
                SELECT r::integer, n, c::bigint, to_timestamp(l::bigint) AT TIME ZONE 'UTC'\(withDigest ? ", d" : "")
                FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::text[]) AS f (r, n, c, l, d)
                """,
                [
                    PostgresArray.literal(fresh.map(\.repository)), PostgresArray.literal(fresh.map(\.name)),
                    PostgresArray.literal(fresh.map { String($0.pulls.count) }), PostgresArray.literal(fresh.map { String($0.pulls.last) }),
                    PostgresArray.literal(fresh.map(\.pulls.digest)),
                ]
            )
        }
    }
}
