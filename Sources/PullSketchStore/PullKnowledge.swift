public import PullSketchCore
public import PullSketchPostgres

/// Since when PullSketch knows the registry's pulls (`pull_knowledge`): a row for live counting,
/// written with the first batch of live pulls (PostgreSQL's time at that batch's commit, a little
/// after its first pull), and a row per history source, its earliest imported pull. Before the
/// earliest of them PullSketch knows nothing, so a dry run whose window reaches further back
/// cannot tell a tag unused then from one it never heard of; and until live counting began it
/// knows nothing of the pulls since the imports' cutover. Imports are taken to reach up to live
/// counting (their `--until`); a gap between them is not seen.
public struct PullKnowledge {
    let connection: PostgresConnection

    public init(connection: PostgresConnection) {
        self.connection = connection
    }

    /// The earliest time from which PullSketch knows pulls up to now; nil before live counting
    /// began, whatever was imported.
    public func since() throws -> Timestamp? {
        try connection.query(
            "SELECT \(StatisticsQueries.milliseconds("min(since)", as: "since_ms")) FROM pull_knowledge HAVING bool_or(source = 'live')"
        ).namedRows.first?.time("since_ms")
    }

    /// Records that source `source` brought the registry's pulls from `earliestPull` on; an
    /// earlier time already recorded for it stays.
    public func recordImport(_ source: String, earliestPull: Timestamp) throws {
        try connection.query(
            """
            INSERT INTO pull_knowledge AS k (source, since) VALUES ($1, \(PostgresTime.timestamp(milliseconds: "$2::bigint")))
            ON CONFLICT (source) DO UPDATE SET since = least(k.since, EXCLUDED.since)
            """,
            [source, String(earliestPull.millisecondsSinceEpoch)]
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
    /// `knownSince` whatever the answer.
    public func isJudgedOnKnownPulls(knownSince: Timestamp?, now: Timestamp) -> Bool {
        guard let days = notPulledDays else { return true }
        guard let knownSince else { return false }
        return knownSince <= StatisticsQueries.cutoff(days: days, now: now)
    }
}
