import PullSketchPostgres
import PullSketchTestSupport
import Synchronization
import Testing

@Suite(.postgresServer) struct PostgresConnectionTests {
    func connect() throws -> PostgresConnection {
        try PostgresConnection(try PostgresServer.current!.makeDatabase())
    }

    @Test func parametersTravelAsTextAndNullsComeBackAsNil() throws {
        let connection = try connect()
        let rows = try connection.query("SELECT $1::int + 1 AS answer, $2::text AS nothing, $3::text AS quote", ["41", nil, "it's \"fine\"; DROP TABLE x"])
        #expect(rows.columns == ["answer", "nothing", "quote"])
        #expect(rows.rows == [["42", nil, "it's \"fine\"; DROP TABLE x"]])
    }

    @Test func aRefusedStatementSaysWhyWithItsSQLState() throws {
        let connection = try connect()
        try connection.query("CREATE TABLE t (k int PRIMARY KEY)")
        try connection.query("INSERT INTO t VALUES (1)")
        #expect {
            try connection.query("INSERT INTO t VALUES (1)")
        } throws: { error in
            let error = error as? PostgresError
            return error?.kind == .statement && error?.sqlState == "23505"
        }
        #expect(try connection.query("SELECT count(*) FROM t").rows == [["1"]], "the connection stays usable")
    }

    @Test func aTransactionThatThrowsChangesNothing() throws {
        let connection = try connect()
        try connection.query("CREATE TABLE t (k int)")
        struct Abort: Error {}
        #expect(throws: Abort.self) {
            try connection.transaction {
                try connection.query("INSERT INTO t VALUES (1)")
                throw Abort()
            }
        }
        _ = try connection.transaction { try connection.query("INSERT INTO t VALUES (2)") }
        #expect(try connection.query("SELECT k FROM t").rows == [["2"]])
    }

    @Test func arrayLiteralsCarryAnyTextThroughUnnest() throws {
        let connection = try connect()
        let values: [String?] = ["plain", "with,comma", "with \"quotes\"", "back\\slash", "{braces}", "", nil, "naïve ✓", "NULL"]
        let rows = try connection.query("SELECT value FROM unnest($1::text[]) WITH ORDINALITY AS u(value, n) ORDER BY n", [PostgresArray.literal(values)])
        #expect(rows.rows.map { $0[0] } == values)
    }

    @Test func aBrokenConnectionFailsItsStatementThenReconnects() throws {
        let database = try PostgresServer.current!.makeDatabase()
        let connection = try PostgresConnection(database)
        let pid = try #require(try connection.query("SELECT pg_backend_pid()").rows.first?.first ?? nil)
        try PostgresConnection(database).query("SELECT pg_terminate_backend($1::int)", [pid])
        #expect {
            try connection.query("SELECT 1")
        } throws: { error in
            (error as? PostgresError)?.kind == .connection
        }
        #expect(try connection.query("SELECT pg_backend_pid() <> $1::int", [pid]).rows == [["t"]])
    }

    @Test func noServerIsAConnectionError() throws {
        let port = try freeLoopbackPort()
        #expect {
            try PostgresConnection("host=127.0.0.1 port=\(port) user=postgres connect_timeout=2")
        } throws: { error in
            (error as? PostgresError)?.kind == .connection
        }
    }
}

@Suite(.postgresServer) struct SchemaTests {
    @Test func migrateCreatesTheSchemaOnceAndIsIdempotent() throws {
        let connection = try PostgresConnection(try PostgresServer.current!.makeDatabase())
        #expect(try Schema.migrate(connection) == Schema.migrations.map(\.version))
        #expect(try Schema.migrate(connection) == [])
        let tables = try connection.query("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1").rows.map { $0[0]! }
        #expect(tables == ["catalog_manifests", "catalog_tags", "manifest_stats", "reconciled_batches", "repositories", "schema_migrations", "tag_stats"])
        let indexes = try connection.query("SELECT indexdef FROM pg_indexes WHERE tablename = 'tag_stats'").rows.map { $0[0]! }
        for columns in ["(repository_id, last_pulled_at)", "(last_pulled_at)", "(repository_id, pull_count)", "(repository_id, tag)"] {
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
