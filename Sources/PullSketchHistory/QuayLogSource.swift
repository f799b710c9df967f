import Foundation
import PullSketchCore
public import PullSketchEvents
import PullSketchPostgres
public import PullSketchStore

/// Quay's audit log table `logentry3` read directly: `pull_repo` rows (the kind's id looked up by
/// name in `logentrykind`), in chunks of `chunkSize` ids, `datetime` read as UTC (Quay writes it
/// naive, in UTC). A tag pull's digest comes from the tag history.
public struct QuayLogSource: HistorySource {
    public let identity: String
    public let chunkSize: Int
    private let database: BlockingDatabase
    private let history: QuayTagHistory
    private let clients: IgnoredClients
    private let kind: Int64
    private let firstID: Int64
    private let lastID: Int64

    /// Reads the id range and the kind; `name` overrides the identity (`quay-logentry3:<database>`).
    /// Pulls by a client `clients` names (the metadata's `user-agent`) are ignored.
    public static func open(
        _ database: BlockingDatabase, name: String? = nil, chunkSize: Int = 100_000, ignoring clients: IgnoredClients = .none
    ) async throws -> QuayLogSource {
        let (database_, kind, first, last) = try await database.run { connection in
            guard let kind = try connection.query("SELECT id FROM logentrykind WHERE name = 'pull_repo'").namedRows.first else {
                throw ImportError("logentrykind has no 'pull_repo': is this Quay's database?")
            }
            let bounds = try connection.query("SELECT current_database() AS name, min(id) AS first, max(id) AS last FROM logentry3").namedRows[0]
            return (
                try bounds.decode("name", as: String.self), try kind.decode("id", as: Int64.self),
                try bounds.decode("first", as: Int64?.self) ?? 1, try bounds.decode("last", as: Int64?.self) ?? 0
            )
        }
        return QuayLogSource(
            identity: name ?? "quay-logentry3:\(database_)", chunkSize: chunkSize, database: database, history: QuayTagHistory(database: database),
            clients: clients, kind: kind, firstID: first, lastID: last
        )
    }

    public var chunkCount: Int? { lastID < firstID ? 0 : Int((lastID - firstID) / Int64(chunkSize)) + 1 }

    public func chunk(_ index: Int) async throws -> HistoryChunk? {
        let low = firstID + Int64(index) * Int64(chunkSize)
        guard low <= lastID else { return nil }
        let high = low + Int64(chunkSize)
        let kind = self.kind
        let rows = try await database.run { connection in
            try connection.query(
                """
                SELECT l.id, (extract(epoch from l.datetime) * 1000)::bigint AS ms, l.metadata_json AS metadata,
                    CASE WHEN r.id IS NOT NULL THEN u.username || '/' || r.name END AS repository
                FROM logentry3 l LEFT JOIN repository r ON r.id = l.repository_id LEFT JOIN "user" u ON u.id = r.namespace_user_id
                WHERE l.id >= $1 AND l.id < $2 AND l.kind_id = $3
                """,
                [String(low), String(high), String(kind)]
            ).namedRows.map {
                (
                    try $0.decode("id", as: Int64.self), try $0.decode("ms", as: Int64.self), try $0.decode("metadata", as: String.self),
                    try $0.decode("repository", as: String?.self)
                )
            }
        }
        var chunk = HistoryChunk()
        chunk.positions = rows.count
        var entries: [QuayPullEntry] = []
        for (id, milliseconds, metadata, repository) in rows {
            let position = SourcePosition.logEntry(id)
            guard let object = (try? JSONSerialization.jsonObject(with: Data(metadata.utf8))) as? [String: Any] else {
                chunk.addInvalid("\(position): metadata_json is not a JSON object")
                continue
            }
            let time = Timestamp(millisecondsSinceEpoch: milliseconds)
            guard !clients.ignores(userAgent: QuayPullEntry.userAgent(object)) else {
                chunk.ignored += 1
                continue
            }
            guard let entry = QuayPullEntry(metadata: object, repository: repository, method: nil, time: time, position: position) else {
                chunk.ignored += 1  // a v1 pull names neither tag nor digest
                continue
            }
            entries.append(entry)
        }
        chunk.pulls = try await entries.events(resolvingWith: history, counting: &chunk)
        return chunk
    }
}
