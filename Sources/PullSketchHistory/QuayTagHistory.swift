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
    /// that version (Quay's garbage collection purged it).
    public func digests(_ lookups: [Lookup]) async throws -> [String?] {
        guard !lookups.isEmpty else { return [] }
        let parameters = [
            PostgresArray.literal(lookups.indices.map { String($0) }), PostgresArray.literal(lookups.map(\.repository)),
            PostgresArray.literal(lookups.map(\.tag)), PostgresArray.literal(lookups.map { String($0.milliseconds) }),
        ]
        let rows = try await database.run { connection in
            try connection.query(
                """
                SELECT l.i, (
                    SELECT m.digest FROM repository r JOIN "user" u ON u.id = r.namespace_user_id
                    JOIN tag t ON t.repository_id = r.id JOIN manifest m ON m.id = t.manifest_id
                    WHERE u.username = split_part(l.repository, '/', 1) AND r.name = substr(l.repository, strpos(l.repository, '/') + 1)
                        AND t.name = l.tag AND t.lifetime_start_ms <= l.ms AND (t.lifetime_end_ms IS NULL OR t.lifetime_end_ms > l.ms)
                    ORDER BY t.lifetime_start_ms DESC LIMIT 1
                ) AS digest
                FROM unnest($1::integer[], $2::text[], $3::text[], $4::bigint[]) AS l(i, repository, tag, ms)
                """,
                parameters
            ).namedRows.map { (try $0.decode("i", as: Int.self), try $0.decode("digest", as: String?.self)) }
        }
        var digests = [String?](repeating: nil, count: lookups.count)
        for (index, digest) in rows { digests[index] = digest }
        return digests
    }
}

/// One audit-log pull as Quay records it, before it becomes a `PullEvent`.
struct QuayPullEntry {
    var repository: String
    var tag: String?
    var digest: String?
    var method: ManifestRequestMethod
    var time: Timestamp

    /// `metadata` of a `pull_repo` entry: `namespace`, `repo`, and `tag` or `manifest_digest`.
    init?(metadata: [String: Any], repository: String?, method: String?, time: Timestamp) {
        guard let name = repository ?? Self.name(metadata) else { return nil }
        self.repository = name
        tag = metadata["tag"] as? String
        digest = metadata["manifest_digest"] as? String
        guard tag != nil || digest != nil else { return nil }
        // Quay logs HEAD like GET; extended logging says which it was.
        self.method = method.flatMap { ManifestRequestMethod(rawValue: $0.uppercased()) } ?? .get
        self.time = time
    }

    private static func name(_ metadata: [String: Any]) -> String? {
        guard let namespace = metadata["namespace"] as? String, let repo = metadata["repo"] as? String else { return nil }
        return "\(namespace)/\(repo)"
    }

    /// The pull, with the digest the tag served if known; nil for names outside the grammar.
    func event(served: String?) -> PullEvent? {
        guard let repository = try? RepositoryName(repository) else { return nil }
        if let tag {
            guard let tag = try? TagName(tag) else { return nil }
            let served = (digest ?? served).flatMap { try? Digest($0) }
            return PullEvent(repository: repository, reference: .tag(tag), method: method, servedDigest: served, time: time)
        }
        guard let digest = digest.flatMap({ try? Digest($0) }) else { return nil }
        return PullEvent(repository: repository, reference: .digest(digest), method: method, time: time)
    }
}

extension Array where Element == QuayPullEntry {
    /// The entries as pulls, tag pulls resolved through `history` when given; entries that are not
    /// valid pulls are counted in `invalid`.
    func events(resolvingWith history: QuayTagHistory?, invalid: inout Int) async throws -> [PullEvent] {
        let needing = indices.filter { self[$0].tag != nil && self[$0].digest == nil }
        let resolved = try await history?.digests(
            needing.map { QuayTagHistory.Lookup(repository: self[$0].repository, tag: self[$0].tag!, milliseconds: self[$0].time.millisecondsSinceEpoch) }
        ) ?? []
        var served: [Int: String] = [:]
        for (index, digest) in zip(needing, resolved) where digest != nil { served[index] = digest }
        var events: [PullEvent] = []
        events.reserveCapacity(count)
        for (index, entry) in enumerated() {
            guard let event = entry.event(served: served[index]) else {
                invalid += 1
                continue
            }
            events.append(event)
        }
        return events
    }
}
