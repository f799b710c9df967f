import BenchmarkSupport
import Foundation
import PullSketchCore
import PullSketchPostgres
import PullSketchStore

/// PostgreSQL at 10 M tag rows and 10 M manifest rows (1,000 repositories × 10,000 tags, each
/// tag's manifest): first the reconciler's batch writes (latency, WAL bytes, HOT updates, table
/// and index sizes, pages read and the time reading them) into tables vacuumed and read into
/// memory, then the pruning dry-run next to the same question asked of an audit log of
/// the same pulls: which tags of one repository were not pulled for 90 days. The audit log's cost
/// grows with a repository's pulls, PullSketch's with its tags, so it is asked of a repository
/// with about one pull row per tag and of one with 100; asked of the rows as written, then again
/// after `CLUSTER` has put each repository's rows together; beside it, the UI's sorted page, the
/// dry run's statement for untagged manifests, the API's manifest pages and the UI's front page
/// (repositories with their tag counts). Medians of 7 runs, after one warm-up, in one run. (The
/// audit log cannot list never-pulled tags.)
/// Usage: PostgresAtScale 'libpq connection string of the server (no dbname)'
@main
struct PostgresAtScale {
    static let repositories = 1_000
    static let tagsPerRepository = 10_000
    static let now = Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)
    static let runs = 7
    static let database = "pruning"

    static func main() throws {
        guard CommandLine.arguments.count == 2 else {
            print("usage: PostgresAtScale 'libpq connection string of the server (no dbname)'")
            exit(2)
        }
        let server = CommandLine.arguments[1]
        let connection = try freshDatabase(server, database)
        try Schema.migrate(connection)
        try connection.query("CREATE EXTENSION pg_prewarm")
        let loading = ContinuousClock.now
        // A bulk load: secondary indexes dropped first and built after, as one would load a dump.
        let indexes = try connection.query(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename IN ('tag_stats', 'manifest_stats', 'catalog_tags') AND indexname NOT LIKE '%pkey'"
        ).rows
        for index in indexes { _ = try connection.query("DROP INDEX \(index[0]!)") }
        // Last pulls spread over the year before `now`; a tenth of the tags never pulled. A pulled
        // tag's row is as the reconciler and the catalog leave it: last used at its last pull, its
        // push time copied. Every pushed manifest has a statistics row carrying its push time (zeros
        // when never pulled), as the catalog's writers keep it (schema version 11). The audit
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
            INSERT INTO tag_stats (repository_id, tag, fetches, checks, pull_count, last_pulled_at, last_used_at, current_digest, pushed_at)
                SELECT repository_id, tag, n, 0, n, pulled, pulled, digest, pushed_at
                FROM (
                    SELECT repository_id, tag, digest, pushed_at, (1 + random() * 1000)::bigint AS n,
                        to_timestamp(\(now.millisecondsSinceEpoch / 1000) - (random() * 365 * 86400)::bigint) AS pulled
                    FROM catalog_tags WHERE random() < 0.9
                ) s;
            INSERT INTO catalog_manifests (repository_id, digest, pushed_at) SELECT repository_id, digest, pushed_at FROM catalog_tags;
            INSERT INTO manifest_stats (repository_id, digest, fetches, checks, pull_count, last_pulled_at, last_used_at, pushed_at)
                SELECT c.repository_id, c.digest, coalesce(t.pull_count, 0), 0, coalesce(t.pull_count, 0), t.last_pulled_at, t.last_pulled_at, c.pushed_at
                FROM catalog_tags c LEFT JOIN tag_stats t USING (repository_id, tag);
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
            """)
        let counts = try connection.query(
            "SELECT (SELECT count(*) FROM tag_stats), (SELECT count(*) FROM manifest_stats), (SELECT count(*) FROM catalog_tags), (SELECT count(*) FROM logentry3)"
        ).rows[0]
        print("""
            loaded \(counts[0]!) tag_stats rows, \(counts[1]!) manifest_stats rows, \(counts[2]!) catalog tags, \(counts[3]!) audit log rows \
            in \(wholeSeconds(since: loading)) s
            """)
        print("VACUUM (ANALYZE) after the load, then a checkpoint: \(try vacuum(connection, tables: loadedTables))\n")
        try measureBatchWrites(connection, settings: "PostgreSQL's defaults (`max_wal_size` 1 GB, no WAL compression)", first: 1)
        // Fewer checkpoints mean fewer first touches of a page after one (each writes the whole
        // page to the WAL), and compression shrinks those that remain. Reset afterwards.
        for statement in ["ALTER SYSTEM SET max_wal_size = '16GB'", "ALTER SYSTEM SET wal_compression = 'lz4'", "SELECT pg_reload_conf()"] {
            try connection.query(statement)
        }
        try measureBatchWrites(connection, settings: "`max_wal_size` 16 GB, `wal_compression` lz4", first: batches + 1)
        for statement in ["ALTER SYSTEM RESET max_wal_size", "ALTER SYSTEM RESET wal_compression", "SELECT pg_reload_conf()"] {
            try connection.query(statement)
        }

        // PullSketch's reads and their limits run as the node runs them (its session settings); the
        // audit log's query as PostgreSQL runs it for an operator, with its defaults.
        let node = try PostgresConnection(server + " dbname=\(database)", settings: BlockingDatabase.sessionDefaults)
        try measurePruning(connection, node: node, layout: "rows as written (each repository's rows spread over the tables)")
        // Keeping each repository's rows together: `CLUSTER` rewrites a table in its primary key's
        // order (repository first) under an exclusive lock; the time it takes is part of the answer.
        var clustering: [String] = []
        for table in clusteredTables {
            let began = ContinuousClock.now
            try connection.execute(script: "SET maintenance_work_mem = '1GB'; CLUSTER \(table) USING \(table)_pkey;")
            clustering.append("`\(table)` \(wholeSeconds(since: began)) s")
        }
        print("""
            CLUSTER by primary key: \(clustering.joined(separator: ", ")); then VACUUM (ANALYZE) and a checkpoint: \
            \(try vacuum(connection, tables: clusteredTables))

            """)
        try measurePruning(connection, node: node, layout: "after `CLUSTER` by primary key (each repository's rows together)")
    }

    /// Whole seconds from `began` until now, for the progress lines of steps that take seconds to minutes.
    static func wholeSeconds(since began: ContinuousClock.Instant) -> Int64 {
        (ContinuousClock.now - began).components.seconds
    }

    static let clusteredTables = ["catalog_tags", "tag_stats", "manifest_stats", "catalog_manifests"]
    static let loadedTables = clusteredTables + ["repositories", "logentry3"]

    /// Vacuums and analyzes `tables`, then checkpoints, and says how long each took. Tables just
    /// loaded or rewritten are what autovacuum goes for next — minutes of reading and writing every
    /// page, on 2 cores — so without this the measurements after a load share the machine with it,
    /// more or less by chance; a production database's tables have long been vacuumed.
    static func vacuum(_ connection: PostgresConnection, tables: [String]) throws -> String {
        var took: [String] = []
        for table in tables {
            let began = ContinuousClock.now
            try connection.query("VACUUM (ANALYZE) \(table)")
            took.append("`\(table)` \(wholeSeconds(since: began)) s")
        }
        let began = ContinuousClock.now
        try connection.query("CHECKPOINT")
        took.append("checkpoint \(wholeSeconds(since: began)) s")
        return took.joined(separator: ", ")
    }

    /// The pruning dry-run and the UI's sorted page of one repository, on `node`, next to the audit
    /// log's answer, on `connection`, and to three limits on `node`: the repository's rows read once
    /// from each table the dry run reads, those rows joined, and the answer's rows alone read from one
    /// table.
    static func measurePruning(_ connection: PostgresConnection, node: PostgresConnection, layout: String) throws {
        let queries = StatisticsQueries(connection: node)
        let cutoff = String(now.millisecondsSinceEpoch / 1000 - 90 * 86_400)
        let cutoffMilliseconds = now.millisecondsSinceEpoch - 90 * 86_400_000
        var rows: [String] = []
        for (name, log) in [("prune/repo500", "about 1 pull row per tag"), ("prune/busy", "100 pull rows per tag")] {
            let repository = try RepositoryName(name)
            let repositoryID = try connection.query("SELECT id FROM repositories WHERE name = $1", [name]).rows[0][0]!
            var found = (0, 0)
            let prune = try timings {
                found.0 = try queries.pruneCandidates(repository, policy: PrunePolicy(notPulledDays: 90), now: now).count
            }
            let audit = try timings {
                found.1 = try connection.query(
                    """
                    SELECT metadata_json::json->>'tag' AS tag, max(datetime) FROM logentry3
                    WHERE repository_id = $1 AND kind_id = 1 GROUP BY 1 HAVING max(datetime) < to_timestamp($2::bigint) AT TIME ZONE 'UTC'
                    """,
                    [repositoryID, cutoff]
                ).rows.count
            }
            // The limit: visiting the repository's rows once in each table the answer needs, no join.
            let bare = try timings {
                for (table, column) in [("catalog_tags", "pushed_at"), ("tag_stats", "last_used_at"), ("manifest_stats", "last_used_at")] {
                    _ = try node.query("SELECT count(\(column)) FROM \(table) WHERE repository_id = $1", [repositoryID])
                }
            }
            // The limit of this schema: the three shares joined as the dry run joins them, counted in
            // the server (no policy, no sort, no rows sent).
            let joined = try timings {
                _ = try node.query(
                    """
                    SELECT count(t.last_used_at) + count(m.last_used_at) + count(m.pushed_at) FROM catalog_tags c
                    LEFT JOIN tag_stats t ON t.repository_id = c.repository_id AND t.tag = c.tag
                    LEFT JOIN manifest_stats m ON m.repository_id = c.repository_id AND m.digest = coalesce(c.digest, t.current_digest)
                    WHERE c.repository_id = $1 AND c.deleted_at IS NULL
                    """,
                    [repositoryID]
                )
            }
            // The limit of any layout: as many rows as the dry run answers, of its ten types (NULL where
            // its rows are), read from one table and sent in binary, no policy, no sort — one row per
            // tag holding everything.
            let answerOnly = try timings {
                _ = try node.withBinaryResult(
                    """
                    SELECT tag, pull_count, last_pulled_at, last_used_at, updated_at, current_digest, fetches, last_pulled_at, updated_at, NULL::bigint
                    FROM tag_stats WHERE repository_id = $1 LIMIT $2
                    """,
                    [repositoryID, String(found.0)]
                ) { $0.count }
            }
            // The baseline of schema version 10: the same statement reading each manifest's push time
            // from `catalog_manifests`, a fourth table joined (every row read, as the dry run reads them).
            let previous = try timings {
                _ = try node.withBinaryResult(Self.previousDryRun, [repositoryID, String(cutoffMilliseconds)]) { result in
                    let texts = try ["tag", "digest"].map { try result.column($0, .text) }
                    let counts = try ["pull_count", "manifest_pull_count", "platforms_pulls"].map { try result.column($0, .int8) }
                    let times = try ["last_pulled_at", "tag_used", "tag_pushed", "manifest_used", "manifest_pushed"].map { try result.column($0, .timestamptz) }
                    var read = 0
                    for row in 0..<result.count {
                        read += try texts.count { try result.text(row, $0) != nil } + counts.count { try result.int64(row, $0) != nil }
                            + times.count { try result.milliseconds(row, $0) != nil }
                    }
                    return read
                }
            }
            rows.append(
                "| not pulled for 90 days (prune dry-run), audit log with \(log) | \(format(prune.median)) ms (slowest \(format(prune.slowest))) "
                    + "(\(found.0) tags) | \(format(audit.median)) ms (slowest \(format(audit.slowest))) (\(found.1) tags) | "
                    + "\(String(format: "%.2f", audit.median / prune.median))× | \(format(bare.median)) ms | \(format(joined.median)) ms | "
                    + "\(format(answerOnly.median)) ms | \(format(previous.median)) ms |"
            )
        }
        let repo500 = try RepositoryName("prune/repo500")
        let page = try timings { _ = try queries.tags(repo500, order: .lastPulled, descending: false, limit: 50, offset: 0) }
        // The rest of what the API and the UI read for one repository, and the UI's front page.
        var untagged = 0, listed = (0, 0)
        let untaggedPrune = try timings {
            untagged = try queries.manifestPruneCandidates(repo500, policy: PrunePolicy(notPulledDays: 90), now: now).count
        }
        let manifestPage = try timings { _ = try queries.manifests(repo500, order: .lastPulled, descending: false, limit: 50, offset: 0) }
        let deepManifestPage = try timings { _ = try queries.manifests(repo500, order: .lastPulled, descending: false, limit: 50, offset: 5_000) }
        let frontPage = try timings { listed.0 = try queries.repositories(containing: "", limit: 200).count }
        let search = try timings { listed.1 = try queries.repositories(containing: "repo50", limit: 200).count }
        func row(_ what: String, _ timing: (median: Double, slowest: Double)) -> String {
            "| \(what) | \(format(timing.median)) ms (slowest \(format(timing.slowest))) | — | | | | | |"
        }
        print("""
            | one repository of 10,000 tags; 10 M tag rows, 11 M audit log rows; \(layout); median of \(runs) | PullSketch (`tag_stats` + catalog) | audit log (`logentry3`) | audit ÷ PullSketch | limit: the repository's rows read once from each of the 3 tables | limit of this schema: the 3 tables' rows joined | limit of any layout: the answer's rows from one table, sent | baseline: the dry run of schema version 10 (push times joined from `catalog_manifests`) |
            |---|---:|---:|---:|---:|---:|---:|---:|
            \(rows.joined(separator: "\n"))
            \(row("least recently pulled 50 tags (the UI's sorted page)", page))
            \(row("untagged manifests not pulled for 90 days (the dry run's second statement; \(untagged) found)", untaggedPrune))
            \(row("least recently pulled 50 manifests (the API's repository page)", manifestPage))
            \(row("the same, manifests 5,001–5,050", deepManifestPage))
            \(row("the UI's front page: the first \(listed.0) repositories by name, each with its live tags counted and its latest tag pull", frontPage))
            \(row("the same for a search matching \(listed.1) repositories", search))
            """)
    }
    /// The tags' dry run as schema version 10 ran it: `$1` the repository's id, `$2` the cutoff in
    /// milliseconds.
    static let previousDryRun = """
        SELECT tag, coalesce(tag_pulls, 0) AS pull_count, last_pulled_at, tag_used, tag_pushed, digest,
            coalesce(manifest_pulls, 0) AS manifest_pull_count, manifest_used, manifest_pushed, platforms_pulls
        FROM (
            SELECT c.tag, t.pull_count AS tag_pulls, t.last_pulled_at, t.last_used_at AS tag_used, c.pushed_at AS tag_pushed, d.digest,
                m.pull_count AS manifest_pulls, m.last_used_at AS manifest_used, cm.pushed_at AS manifest_pushed,
                k.pull_count AS platforms_pulls, k.last_used_at AS platforms_used
            FROM catalog_tags c
            LEFT JOIN tag_stats t ON t.repository_id = $1::bigint AND t.tag = c.tag
            CROSS JOIN LATERAL (SELECT coalesce(c.digest, t.current_digest) AS digest) d
            LEFT JOIN manifest_stats m ON m.repository_id = $1::bigint AND m.digest = d.digest
            LEFT JOIN catalog_manifests cm ON cm.repository_id = $1::bigint AND cm.digest = d.digest
            LEFT JOIN (
                SELECT x.index_digest, max(ps.last_used_at) AS last_used_at, max(ps.pull_count) AS pull_count
                FROM manifest_children x JOIN manifest_stats ps ON ps.repository_id = x.repository_id AND ps.digest = x.child_digest
                WHERE x.repository_id = $1::bigint GROUP BY x.index_digest
            ) k ON k.index_digest = d.digest
            WHERE c.repository_id = $1::bigint AND c.deleted_at IS NULL
            OFFSET 0
        ) s
        WHERE coalesce(greatest(tag_used, tag_pushed), '-infinity') < to_timestamp($2::bigint::float8 / 1000)
            AND (digest IS NULL OR coalesce(greatest(manifest_used, platforms_used, manifest_pushed), '-infinity') < to_timestamp($2::bigint::float8 / 1000))
        ORDER BY greatest(tag_used, tag_pushed, manifest_used, platforms_used, manifest_pushed) ASC NULLS FIRST, tag
        """

    static let batches = 20
    static let pullsPerBatch = 15_000

    /// The reconciler's writes into the loaded tables: `batches` batches (numbered from `first`) of
    /// `pullsPerBatch` GETs by tag of tags drawn uniformly from all 10 M (the worst case for
    /// locality; a tenth of the tags have no statistics row yet), each a tag and a manifest
    /// update, written by `BatchWriter`.
    static func measureBatchWrites(_ connection: PostgresConnection, settings: String, first: Int) throws {
        let writer = BatchWriter(connection: connection, shardCount: 1)
        let sampleRate = String(format: "%.4f", Double(pullsPerBatch) * 100 / Double(repositories * tagsPerRepository))
        func updates() throws -> [Int] {
            _ = try connection.query("SELECT pg_stat_force_next_flush()")
            return try connection.query(
                "SELECT sum(n_tup_upd), sum(n_tup_hot_upd) FROM pg_stat_user_tables WHERE relname IN ('tag_stats', 'manifest_stats')"
            ).rows[0].map { Int($0!)! }
        }
        // A batch reads pages all over the tables: from memory on a server that holds them, from the
        // disk, one random read at a time, where it does not — tens of seconds a batch at this VM's
        // few hundred reads/s. The tables and their indexes are read into the kernel's page cache
        // first, the state of a server sized for them; what a batch still waits for the disk, as
        // PostgreSQL times every read of a page outside its shared buffers, is shown beside it.
        let tables = (clusteredTables + ["repositories"]).map { "'\($0)'" }.joined(separator: ", ")
        let warming = ContinuousClock.now
        let warmed = try connection.query(
            """
            SELECT sum(pg_prewarm(c.oid, 'read')) FROM pg_class c
            WHERE c.relname IN (\(tables))
                OR c.oid IN (SELECT i.indexrelid FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid WHERE t.relname IN (\(tables)))
            """
        ).rows[0][0]!
        let warmingTook = wholeSeconds(since: warming)
        try connection.query("SET track_io_timing = on")
        func reads() throws -> (blocks: Int, milliseconds: Double) {
            _ = try connection.query("SELECT pg_stat_force_next_flush()")
            let row = try connection.query("SELECT blks_read, blk_read_time FROM pg_stat_database WHERE datname = current_database()").rows[0]
            return (Int(row[0]!)!, Double(row[1]!)!)
        }
        var latencies: [Double] = [], walBytes: [Int] = [], keys: [Int] = [], blocksRead: [Int] = [], readTimes: [Double] = []
        let before = try updates()
        for number in first..<first + batches {
            let batch = try sampledBatch(
                number: Int64(number),
                """
                SELECT r.name, c.tag, c.digest FROM catalog_tags c TABLESAMPLE BERNOULLI (\(sampleRate))
                JOIN repositories r ON r.id = c.repository_id LIMIT \(pullsPerBatch)
                """,
                from: connection, pulls: pullsPerBatch, time: now
            )
            let lsn = try connection.query("SELECT pg_current_wal_lsn()::text").rows[0][0]!
            let readsBefore = try reads()
            let began = ContinuousClock.now
            _ = try writer.write(batch)
            latencies.append((ContinuousClock.now - began).inMilliseconds)
            walBytes.append(Int(try connection.query("SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), $1::pg_lsn)::bigint", [lsn]).rows[0][0]!)!)
            let readsAfter = try reads()
            blocksRead.append(readsAfter.blocks - readsBefore.blocks)
            readTimes.append(readsAfter.milliseconds - readsBefore.milliseconds)
            keys.append(batch.content.hotEntries.count)
        }
        let after = try updates()
        let sizes = try connection.query(
            """
            SELECT relname, pg_table_size(oid), pg_indexes_size(oid) FROM pg_class
            WHERE relname IN ('tag_stats', 'manifest_stats', 'catalog_tags', 'catalog_manifests') ORDER BY relname
            """
        ).rows
        let sortedLatencies = latencies.sorted()
        let medianKeys = keys.sorted()[keys.count / 2]
        let megabytes = { (bytes: String?) in String(format: "%.0f MB", Double(bytes!)! / 1_048_576) }
        print("""
            | \(batches) batches of \(pullsPerBatch) GETs by tag into 10 M + 10 M rows (\(medianKeys) key updates each, median); \(settings) | |
            |---|---:|
            | the tables and indexes read into the page cache first (`pg_prewarm`) | \(Int(warmed)! / 128) MB in \(warmingTook) s |
            | batch latency, median / slowest | \(format(sortedLatencies[batches / 2])) ms / \(format(sortedLatencies.last!)) ms |
            | key updates/s, median batch | \(Int(Double(medianKeys) / sortedLatencies[batches / 2] * 1_000)) |
            | pages read from outside shared buffers per batch, median; time spent reading them | \(blocksRead.sorted()[batches / 2]) pages; \(format(readTimes.sorted()[batches / 2])) ms |
            | WAL per batch, median | \(String(format: "%.1f MB", Double(walBytes.sorted()[batches / 2]) / 1_048_576)) (\(walBytes.sorted()[batches / 2] / medianKeys) bytes per key update) |
            | HOT updates | \(after[1] - before[1]) of \(after[0] - before[0]) (\(String(format: "%.0f %%", Double(after[1] - before[1]) * 100 / Double(max(1, after[0] - before[0]))))) |
            \(sizes.map { "| `\($0[0]!)` table / indexes | \(megabytes($0[1])) / \(megabytes($0[2])) |" }.joined(separator: "\n"))

            """)
    }

    /// Median and slowest milliseconds of `runs` runs after one warm-up.
    static func timings(_ body: () throws -> Void) throws -> (median: Double, slowest: Double) {
        try body()
        var samples: [Double] = []
        for _ in 0..<runs {
            let began = ContinuousClock.now
            try body()
            samples.append((ContinuousClock.now - began).inMilliseconds)
        }
        samples.sort()
        return (samples[runs / 2], samples[runs - 1])
    }

    static func format(_ milliseconds: Double) -> String { String(format: milliseconds >= 100 ? "%.0f" : "%.1f", milliseconds) }
}
