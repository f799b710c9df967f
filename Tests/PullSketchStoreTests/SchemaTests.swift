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
            "catalog_manifests", "catalog_tags", "manifest_children", "manifest_stats", "quarantined_batches", "quay_repository_names", "reconciled_batches",
            "reconciled_windows", "repositories", "schema_migrations", "tag_stats", "unattributed_pulls",
        ])
        let indexes = try connection.query("SELECT indexdef FROM pg_indexes WHERE tablename = 'tag_stats'").rows.map { $0[0]! }
        for columns in ["(repository_id, last_pulled_at)", "(last_pulled_at)", "(repository_id, pull_count)", "(repository_id, tag)", "(repository_id, last_used_at)"] {
            #expect(indexes.contains { $0.hasSuffix(columns) }, "tag_stats index on \(columns)")
        }
        let types = try connection.query("""
            SELECT DISTINCT data_type FROM information_schema.columns
            WHERE table_schema = 'public' AND column_name LIKE '%\\_at' ESCAPE '\\'
            """).rows.map { $0[0]! }
        #expect(types == ["timestamp with time zone"])
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
