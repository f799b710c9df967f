import PullSketchCore
import PullSketchPostgres
public import PullSketchStore

/// Quay's tag history (`tag` rows, one per version of a tag, alive from `lifetime_start_ms` until
/// `lifetime_end_ms`): which manifest a tag pointed at when it was pulled. Quay logs a pull by tag
/// without the digest it served.
public struct QuayTagHistory: Sendable {
    public let database: BlockingDatabase

    public init(database: BlockingDatabase) {
        self.database = database
    }

    /// A tag pull to resolve: repository (`namespace/name`), tag, time in ms.
    public struct Lookup: Sendable {
        public var repository: String
        public var tag: String
        public var milliseconds: Int64
    }

    /// The digest each lookup's tag pointed at then, in order; nil when the history no longer has
    /// that version (Quay's garbage collection purged it). Reads the whole history of each distinct
    /// tag once and picks the version in memory.
    public func digests(_ lookups: [Lookup]) async throws -> [String?] {
        guard !lookups.isEmpty else { return [] }
        let names = Array(Set(lookups.map { TagKey(repository: $0.repository, tag: $0.tag) }))
        let parameters = [PostgresArray.literal(names.map(\.repository)), PostgresArray.literal(names.map(\.tag))]
        let versions = try await database.run { connection in
            try connection.query(
                """
                SELECT k.repository, k.tag, t.lifetime_start_ms AS start, t.lifetime_end_ms AS end, m.digest
                FROM unnest($1::text[], $2::text[]) AS k(repository, tag)
                JOIN "user" u ON u.username = split_part(k.repository, '/', 1)
                JOIN repository r ON r.namespace_user_id = u.id AND r.name = substr(k.repository, strpos(k.repository, '/') + 1)
                JOIN tag t ON t.repository_id = r.id AND t.name = k.tag
                JOIN manifest m ON m.id = t.manifest_id
                """,
                parameters
            ).namedRows.map { row in
                (
                    TagKey(repository: try row.decode("repository"), tag: try row.decode("tag")),
                    Version(start: try row.decode("start"), end: try row.decode("end"), digest: try row.decode("digest"))
                )
            }
        }
        let history = Dictionary(grouping: versions, by: \.0).mapValues { $0.map(\.1).sorted { $0.start > $1.start } }
        return lookups.map { lookup in
            history[TagKey(repository: lookup.repository, tag: lookup.tag)]?.first { version in
                version.start <= lookup.milliseconds && (version.end.map { lookup.milliseconds < $0 } ?? true)
            }?.digest
        }
    }

    private struct TagKey: Hashable, Sendable {
        var repository: String
        var tag: String
    }

    /// One row of a tag's history: alive from `start` until `end` (ms), pointing at `digest`.
    private struct Version: Sendable {
        var start: Int64
        var end: Int64?
        var digest: String
    }
}

/// One audit-log pull as Quay records it, before it becomes a `PullEvent`.
struct QuayPullEntry {
    /// Where the entry is in its source, for messages.
    var position: SourcePosition
    var repository: String
    var tag: String?
    var digest: String?
    var method: ManifestRequestMethod
    var time: Timestamp

    /// `metadata` of a `pull_repo` entry: `namespace`, `repo`, and `tag` or `manifest_digest`.
    init?(metadata: [String: Any], repository: String?, method: String?, time: Timestamp, position: SourcePosition) {
        guard let name = repository ?? Self.name(metadata) else { return nil }
        self.position = position
        self.repository = name
        tag = metadata["tag"] as? String
        digest = metadata["manifest_digest"] as? String
        guard tag != nil || digest != nil else { return nil }
        // Quay logs HEAD like GET; extended logging says which it was.
        self.method = method.flatMap { ManifestRequestMethod(rawValue: $0.uppercased()) } ?? .get
        self.time = time
    }

    /// The client's user agent, which Quay keeps in a pull's `metadata`.
    static func userAgent(_ metadata: [String: Any]) -> String? {
        metadata["user-agent"] as? String
    }

    private static func name(_ metadata: [String: Any]) -> String? {
        guard let namespace = metadata["namespace"] as? String, let repo = metadata["repo"] as? String else { return nil }
        return "\(namespace)/\(repo)"
    }

    /// The pull, with the digest the tag served if known; refused for names outside the grammar.
    func event(served: String?) throws(ValidationError) -> PullEvent {
        let repository = try RepositoryName(repository)
        if let tag {
            let tag = try TagName(tag)
            let served = (digest ?? served).flatMap { try? Digest($0) }
            return PullEvent(repository: repository, reference: .tag(tag), method: method, servedDigest: served, time: time)
        }
        // `init` keeps only entries naming a tag or a digest.
        return PullEvent(repository: repository, reference: .digest(try Digest(digest!)), method: method, time: time)
    }
}

extension Array where Element == QuayPullEntry {
    /// The entries as pulls, tag pulls resolved through `history` when given; entries that are not
    /// valid pulls are counted in `chunk` as invalid.
    func events(resolvingWith history: QuayTagHistory?, counting chunk: inout HistoryChunk) async throws -> [PullEvent] {
        let needing = indices.filter { self[$0].tag != nil && self[$0].digest == nil }
        let resolved = try await history?.digests(
            needing.map { QuayTagHistory.Lookup(repository: self[$0].repository, tag: self[$0].tag!, milliseconds: self[$0].time.millisecondsSinceEpoch) }
        ) ?? []
        var served: [Int: String] = [:]
        for (index, digest) in zip(needing, resolved) where digest != nil { served[index] = digest }
        var events: [PullEvent] = []
        events.reserveCapacity(count)
        for (index, entry) in enumerated() {
            do {
                events.append(try entry.event(served: served[index]))
            } catch {
                chunk.addInvalid("\(entry.position): an audit entry: \(error)")
            }
        }
        return events
    }
}
