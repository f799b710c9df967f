import PullSketchCore
import PullSketchPostgres
import PullSketchStore
import PullSketchTestSupport
import Synchronization
import Testing

@Suite(.postgresServer) struct SchemaTests {
    @Test func migrateCreatesTheSchemaOnceAndIsIdempotent() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        #expect(try Schema.migrate(connection) == Schema.migrations.map(\.version))
        #expect(try Schema.migrate(connection) == [])
        let tables = try connection.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").rows.map { $0[0]! }
        #expect(tables == [
            "catalog_manifests", "catalog_tags", "manifest_children", "manifest_stats", "pull_knowledge", "quarantined_batches", "quay_repository_names",
            "reconciled_batches", "reconciled_windows", "repositories", "schema_migrations", "tag_stats", "unattributed_pulls",
        ])
        // Statistics rows are updated in place (HOT): no index covers a column a batch changes.
        for table in ["tag_stats", "manifest_stats"] {
            let indexed = try connection.query(
                """
                SELECT DISTINCT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
                WHERE i.indrelid = $1::regclass ORDER BY 1
                """,
                [table]
            ).rows.map { $0[0]! }
            #expect(indexed == (table == "tag_stats" ? ["current_digest", "repository_id", "tag"] : ["digest", "repository_id"]), "\(table)")
            let options = try connection.query("SELECT reloptions FROM pg_class WHERE oid = $1::regclass", [table]).rows
            #expect(options == [["{fillfactor=80}"]], "\(table)")
        }
        let types = try connection.query("""
            SELECT DISTINCT data_type FROM information_schema.columns
            WHERE table_schema = 'public' AND column_name LIKE '%\\_at' ESCAPE '\\'
            """).rows.map { $0[0]! }
        #expect(types == ["timestamp with time zone"])
    }

    /// `requireCurrent` refuses a database with no PullSketch schema and one that lacks a
    /// migration this build has, saying which and what to run; it passes a current schema, and
    /// one with a newer build's migration too (a rolling upgrade).
    @Test func aSchemaThatLacksAMigrationOfThisBuildIsRefusedByName() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        func refusal() -> String? {
            do {
                try Schema.requireCurrent(connection)
                return nil
            } catch {
                return "\(error)"
            }
        }
        #expect(refusal() == "the database has no PullSketch schema: run `pullsketch migrate` with this build")
        try Schema.migrate(connection)
        #expect(refusal() == nil)
        let last = try #require(Schema.migrations.last)
        try connection.query("DELETE FROM schema_migrations WHERE version = $1", [String(last.version)])
        #expect(refusal() == "the database schema lacks migration \(last.version): run `pullsketch migrate` with this build")
        try connection.query("INSERT INTO schema_migrations (version, name) VALUES ($1, 'back'), ($2, 'a newer build')", [String(last.version), String(last.version + 1)])
        #expect(refusal() == nil)
    }

    @Test func aRepositoryKeepsItsIdAndRowWhileStatisticsOrCatalogRowsNameIt() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)
        try connection.execute(script: """
            INSERT INTO repositories (name) VALUES ('keep/tag-stats'), ('keep/manifest-stats'), ('keep/catalog-tags'), ('keep/catalog-manifests'), ('keep/unused');
            INSERT INTO tag_stats (repository_id, tag, pull_count) SELECT id, 'latest', 1 FROM repositories WHERE name = 'keep/tag-stats';
            INSERT INTO manifest_stats (repository_id, digest, pull_count) SELECT id, 'sha256:' || repeat('a', 64), 1 FROM repositories WHERE name = 'keep/manifest-stats';
            INSERT INTO catalog_tags (repository_id, tag) SELECT id, 'latest' FROM repositories WHERE name = 'keep/catalog-tags';
            INSERT INTO catalog_manifests (repository_id, digest) SELECT id, 'sha256:' || repeat('b', 64) FROM repositories WHERE name = 'keep/catalog-manifests';
            """)
        func refused(_ statement: String) -> Bool {
            do {
                try connection.execute(script: statement)
                return false
            } catch {
                return error.sqlState == "23503"
            }
        }
        func repositories() throws -> [String] {
            try connection.query("SELECT id || ' ' || name FROM repositories ORDER BY id").rows.map { $0[0]! }
        }
        let before = try repositories()
        for name in ["keep/tag-stats", "keep/manifest-stats", "keep/catalog-tags", "keep/catalog-manifests"] {
            #expect(refused("DELETE FROM repositories WHERE name = '\(name)'"), "deleting \(name)")
            #expect(refused("UPDATE repositories SET id = id + 1000 WHERE name = '\(name)'"), "renumbering \(name)")
        }
        #expect(refused("TRUNCATE repositories CASCADE"))
        #expect(try repositories() == before, "nothing changed")
        try connection.execute(script: "UPDATE repositories SET name = name || '-renamed' WHERE name = 'keep/tag-stats'")
        try connection.execute(script: "DELETE FROM repositories WHERE name = 'keep/unused'")
        #expect(try repositories().count == before.count - 1)
    }

    /// A database at version 10: pushed manifests, one pulled (its statistics row without a push
    /// time), one only pushed, one only known from an index (no push time). Version 11 gives each
    /// pushed manifest a statistics row carrying its push and deletion times, keeping the pulls.
    @Test func version11CopiesEveryPushedManifestsTimesIntoItsStatisticsRow() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)
        try connection.execute(script: """
            DELETE FROM schema_migrations WHERE version = 11;
            INSERT INTO repositories (name) VALUES ('team/app');
            INSERT INTO catalog_manifests (repository_id, digest, pushed_at, deleted_at)
            SELECT id, 'sha256:' || repeat(d, 64), CASE WHEN d = 'c' THEN NULL ELSE '2026-01-02T03:04:05.678Z'::timestamptz END,
                CASE WHEN d = 'b' THEN '2026-02-01T00:00:00Z'::timestamptz END
            FROM repositories CROSS JOIN unnest(ARRAY['a', 'b', 'c']) AS d;
            INSERT INTO manifest_stats (repository_id, digest, pull_count, last_used_at) SELECT id, 'sha256:' || repeat('a', 64), 7, now() FROM repositories;
            """)
        #expect(try Schema.migrate(connection) == [11])
        let rows = try connection.query(
            "SELECT left(digest, 8), pushed_at = '2026-01-02T03:04:05.678Z', deleted_at IS NOT NULL, pull_count FROM manifest_stats ORDER BY 1"
        ).rows
        #expect(rows == [["sha256:a", "t", "f", "7"], ["sha256:b", "t", "t", "0"]])
    }

    /// A database at version 11 with ledger rows: version 12 takes live counting to have begun
    /// with the oldest of them, the latest it can have begun.
    @Test func version12TakesPullsToBeKnownSinceTheOldestLedgerRow() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        try Schema.migrate(connection)
        try connection.execute(script: """
            DROP TABLE pull_knowledge;
            DELETE FROM schema_migrations WHERE version >= 12;
            INSERT INTO reconciled_batches (shard, batch, pulls, tail_mass, epsilon, delta, reconciled_at)
            VALUES (0, 7, 1, 0, 0, 0, '2026-11-01T00:00:00Z'), (1, 9, 1, 0, 0, 0, '2026-10-01T00:00:00Z');
            """)
        #expect(try Schema.migrate(connection) == [12, 13])
        #expect(try PullKnowledge(connection: connection).since() == Timestamp(millisecondsSinceEpoch: 1_790_812_800_000))
    }

    @Test func concurrentMigratorsApplyEachMigrationOnce() throws {
        let database = try PostgresServer.current!.makeDatabase()
        let applied = Mutex<[[Int]]>([])
        let failures = Mutex<[String]>([])
        runOnThreads(3) { _ in
            do {
                let versions = try Schema.migrate(try PostgresConnection(database))
                applied.withLock { $0.append(versions) }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        #expect(applied.withLock { $0 }.flatMap { $0 }.sorted() == Schema.migrations.map(\.version))
        let rows = try PostgresConnection(database).query("SELECT version FROM schema_migrations ORDER BY 1").rows
        #expect(rows.map { $0[0] } == Schema.migrations.map { String($0.version) })
    }
}
