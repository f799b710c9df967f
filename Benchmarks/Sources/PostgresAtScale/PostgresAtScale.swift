import BenchmarkSupport
import Foundation
import PullSketchCore
import PullSketchPostgres
import PullSketchStore

/// The pruning dry-run over 10 M tag rows (1,000 repositories × 10,000 tags), next to the same
/// question asked of an audit log of the same pulls: which tags of one repository were not pulled
/// for 90 days. The audit log's cost grows with a repository's pulls, PullSketch's with its tags,
/// so it is asked of a repository with about one pull row per tag and of one with 100. Medians of
/// 7 runs, after one warm-up, in one run. (The audit log cannot list never-pulled tags.)
/// Usage: PruningQuery 'libpq connection string of the server (no dbname)'
@main
struct PruningQuery {
    static let repositories = 1_000
    static let tagsPerRepository = 10_000
    static let now = Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)
    static let runs = 7

    static func main() throws {
        guard CommandLine.arguments.count == 2 else {
            print("usage: PruningQuery 'libpq connection string of the server (no dbname)'")
            exit(2)
        }
        let server = CommandLine.arguments[1]
        let connection = try freshDatabase(server, "pruning")
        try Schema.migrate(connection)
        let loading = ContinuousClock.now
        // A bulk load: secondary indexes dropped first and built after, as one would load a dump.
        let indexes = try connection.query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('tag_stats', 'catalog_tags') AND indexname NOT LIKE '%pkey'"
        ).rows
        for index in indexes { _ = try connection.query("DROP INDEX \(index[0]!)") }
        // Last pulls spread over the year before `now`; a tenth of the tags never pulled. The audit
        // log holds each pulled tag's last pull, and an older pull for about one in nine — except
        // in prune/busy, where every pulled tag has 100 pull rows.
        try connection.execute(script: """
            SET maintenance_work_mem = '1GB';
            SELECT setseed(0.42);
            INSERT INTO repositories (name) SELECT 'prune/repo' || r FROM generate_series(0, \(repositories - 2)) r;
            INSERT INTO repositories (name) VALUES ('prune/busy');
            INSERT INTO catalog_tags (repository_id, tag, digest, pushed_at)
                SELECT r.id, 't' || t, 'sha256:' || md5(r.id || ':' || t) || md5(t || ':' || r.id),
                       to_timestamp(\(now.millisecondsSinceEpoch / 1000) - 400 * 86400)
                FROM repositories r CROSS JOIN generate_series(0, \(tagsPerRepository - 1)) t;
            INSERT INTO tag_stats (repository_id, tag, fetches, checks, pull_count, last_pulled_at)
                SELECT repository_id, tag, n, 0, n, to_timestamp(\(now.millisecondsSinceEpoch / 1000) - (random() * 365 * 86400)::bigint)
                FROM (SELECT repository_id, tag, (1 + random() * 1000)::bigint AS n FROM catalog_tags WHERE random() < 0.9) s;
            CREATE TABLE logentry3 (
                id bigserial PRIMARY KEY, kind_id integer NOT NULL, account_id integer NOT NULL, performer_id integer,
                repository_id integer, datetime timestamp NOT NULL, ip varchar(255), metadata_json text NOT NULL);
            INSERT INTO logentry3 (kind_id, account_id, repository_id, datetime, ip, metadata_json)
                SELECT 1, 1, s.repository_id, s.last_pulled_at AT TIME ZONE 'UTC' - k * interval '1 hour', '127.0.0.1',
                       json_build_object('repo', substr(r.name, 7), 'namespace', 'prune', 'tag', s.tag)::text
                FROM tag_stats s JOIN repositories r ON r.id = s.repository_id
                CROSS JOIN LATERAL generate_series(0, CASE WHEN r.name = 'prune/busy' THEN 99 WHEN random() < 0.11 THEN 1 ELSE 0 END) k;
            CREATE INDEX logentry3_account_datetime ON logentry3 (account_id, datetime);
            CREATE INDEX logentry3_performer_datetime ON logentry3 (performer_id, datetime);
            CREATE INDEX logentry3_repository_datetime_kind ON logentry3 (repository_id, datetime, kind_id);
            \(indexes.map { $0[1]! + ";" }.joined(separator: "\n"))
            ANALYZE;
            """)
        let counts = try connection.query("SELECT (SELECT count(*) FROM tag_stats), (SELECT count(*) FROM catalog_tags), (SELECT count(*) FROM logentry3)").rows[0]
        print("loaded \(counts[0]!) tag_stats rows, \(counts[1]!) catalog tags, \(counts[2]!) audit log rows in \(Int((ContinuousClock.now - loading).components.seconds)) s")

        let queries = StatisticsQueries(connection: connection)
        let cutoff = String(now.millisecondsSinceEpoch / 1000 - 90 * 86_400)
        var rows: [String] = []
        for (name, log) in [("prune/repo500", "about 1 pull row per tag"), ("prune/busy", "100 pull rows per tag")] {
            let repository = try RepositoryName(name)
            let repositoryID = try connection.query("SELECT id FROM repositories WHERE name = $1", [name]).rows[0][0]!
            var found = (0, 0)
            let prune = try median {
                found.0 = try queries.pruneCandidates(repository, policy: PrunePolicy(notPulledDays: 90), now: now).count
            }
            let audit = try median {
                found.1 = try connection.query(
                    """
                    SELECT metadata_json::json->>'tag' AS tag, max(datetime) FROM logentry3
                    WHERE repository_id = $1 AND kind_id = 1 GROUP BY 1 HAVING max(datetime) < to_timestamp($2::bigint) AT TIME ZONE 'UTC'
                    """,
                    [repositoryID, cutoff]
                ).rows.count
            }
            rows.append(
                "| not pulled for 90 days (prune dry-run), audit log with \(log) | \(format(prune)) ms (\(found.0) tags) | "
                    + "\(format(audit)) ms (\(found.1) tags) | \(String(format: "%.2f", audit / prune))× |"
            )
        }
        let page = try median { _ = try queries.tags(try RepositoryName("prune/repo500"), order: .lastPulled, descending: false, limit: 50, offset: 0) }
        print("""
            | one repository of 10,000 tags; 10 M tag rows, 11 M audit log rows; median of \(runs) | PullSketch (`tag_stats` + catalog) | audit log (`logentry3`) | audit ÷ PullSketch |
            |---|---:|---:|---:|
            \(rows.joined(separator: "\n"))
            | least recently pulled 50 tags (the UI's sorted page) | \(format(page)) ms | — | |
            """)
    }
    /// Median milliseconds of `runs` runs after one warm-up.
    static func median(_ body: () throws -> Void) throws -> Double {
        try body()
        var samples: [Double] = []
        for _ in 0..<runs {
            let began = ContinuousClock.now
            try body()
            let elapsed = ContinuousClock.now - began
            samples.append(Double(elapsed.components.seconds) * 1_000 + Double(elapsed.components.attoseconds) / 1e15)
        }
        return samples.sorted()[runs / 2]
    }

    static func format(_ milliseconds: Double) -> String { String(format: milliseconds >= 100 ? "%.0f" : "%.1f", milliseconds) }
}
