public import PullSketchCore
public import PullSketchPostgres

/// Since when PullSketch knows the registry's pulls (`pull_knowledge`): a row for live counting,
/// written with the first batch of live pulls (PostgreSQL's time at that batch's commit, a little
/// after its first pull), and a row per history source, the span of its imported pulls. Pulls are
/// known from the earliest time that live counting and the imports reach back to without a hole:
/// a dry run whose window reaches further back cannot tell a tag unused then from one it never
/// heard of; and until live counting began PullSketch knows nothing of the pulls since the
/// imports' cutover.
public struct PullKnowledge {
    let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// The earliest time from which PullSketch knows pulls up to now; nil before live counting
    /// began, whatever was imported. From live counting's start it reaches back through each
    /// import whose last pull is at most `longestQuietSpell` before what is known already (an
    /// import without an end recorded is taken to reach live counting).
    public func since() throws -> Timestamp? {
        let rows = try connection.query(
            """
            SELECT source = 'live' AS live, \(StatisticsQueries.milliseconds("since", as: "since_ms")),
                \(StatisticsQueries.milliseconds("until", as: "until_ms")) FROM pull_knowledge
            """
        ).namedRows
        var spans: [(since: Int64, until: Int64?)] = []
        var known: Int64?
        for row in rows {
            let since = try row.decode("since_ms", as: Int64.self)
            if try row.decode("live", as: Bool.self) {
                known = since
            } else {
                spans.append((since, try row.decode("until_ms", as: Int64?.self)))
            }
        }
        guard var known else { return nil }
        while let reaching = spans.filter({ $0.since < known && ($0.until ?? .max) >= known - Self.longestQuietSpell }).map(\.since).min() {
            known = reaching
        }
        return Timestamp(millisecondsSinceEpoch: known)
    }

    /// The longest time without a pull, in milliseconds, taken for a quiet spell rather than a
    /// hole in what is known: a log's last pull comes a little before its end, and live
    /// counting's first batch a little after it began.
    public static let longestQuietSpell: Int64 = 86_400_000

    /// When the latest batch still in `quarantined_batches` was set aside; nil when none is. Its
    /// pulls are counted nowhere until an operator applies it by hand and deletes its row.
    public func latestQuarantine() throws -> Timestamp? {
        try connection.query("SELECT \(StatisticsQueries.milliseconds("max(quarantined_at)", as: "at_ms")) FROM quarantined_batches")
            .namedRows.first?.time("at_ms")
    }

    /// Records that source `source` brought the registry's pulls from `earliestPull` up to
    /// `until` (its last pull, or the cutover when it held later ones); an earlier start or a
    /// later end already recorded for it stays.
    public func recordImport(_ source: String, earliestPull: Timestamp, until: Timestamp) throws {
        try connection.query(
            """
            INSERT INTO pull_knowledge AS k (source, since, until)
            VALUES ($1, \(PostgresTime.timestamp(milliseconds: "$2::bigint")), \(PostgresTime.timestamp(milliseconds: "$3::bigint")))
            ON CONFLICT (source) DO UPDATE SET since = least(k.since, EXCLUDED.since), until = greatest(k.until, EXCLUDED.until)
            """,
            [source, String(earliestPull.millisecondsSinceEpoch), String(until.millisecondsSinceEpoch)]
        )
    }

    /// What the node ids of history imports begin with; every other node counts live pulls.
    public static let importNodePrefix = "import:"

    /// The statement that records, once, that live counting began, when `condition` holds: run in
    /// the transaction of each batch (with whether it holds live pulls), so the first such batch
    /// that commits sets it.
    static func recordLiveCounting(when condition: String) -> String {
        "INSERT INTO pull_knowledge (source, since) SELECT 'live', now() WHERE \(condition) ON CONFLICT (source) DO NOTHING"
    }
}

extension SealedBatch {
    /// Whether the batch holds pulls counted live: a window of a node other than an import's
    /// (a batch written without its windows is taken to).
    var holdsLivePulls: Bool {
        windows.isEmpty || windows.keys.contains { !$0.hasPrefix(PullKnowledge.importNodePrefix) }
    }
}

extension PrunePolicy {
    /// Whether PullSketch knew pulls, from `knownSince` on, for all the time this policy asks
    /// about at `now`: its "not pulled for N days" window. Pull counts are counts since
    /// `knownSince` whatever the answer. A batch set aside at `latestQuarantine` holds pulls counted
    /// nowhere, all of them before that time: it leaves a window that begins later whole, but not
    /// counts (`maxPulls`) or which tags were used last (`keepMostRecent`).
    public func isJudgedOnKnownPulls(knownSince: Timestamp?, latestQuarantine: Timestamp?, now: Timestamp) -> Bool {
        let cutoff = notPulledDays.map { StatisticsQueries.cutoff(days: $0, now: now) }
        if let latestQuarantine, maxPulls != nil || keepMostRecent != nil || cutoff.map({ latestQuarantine >= $0 }) ?? true {
            return false
        }
        guard let cutoff else { return true }
        guard let knownSince else { return false }
        return knownSince <= cutoff
    }
}
