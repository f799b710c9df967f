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

    /// When the latest batch still in `quarantined_batches` was set aside; nil when none is. Its
    /// pulls are counted nowhere until an operator applies it by hand and deletes its row.
    public func latestQuarantine() throws -> Timestamp? {
        try connection.query("SELECT \(StatisticsQueries.milliseconds("max(quarantined_at)", as: "at_ms")) FROM quarantined_batches")
            .namedRows.first?.time("at_ms")
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
