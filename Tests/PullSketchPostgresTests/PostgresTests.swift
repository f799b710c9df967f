import PullSketchPostgres
import PullSketchTestSupport
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

    @Test func rowsDecodeByColumnNameAndAnUnexpectedValueThrowsInsteadOfTrapping() throws {
        let row = try connect().query("SELECT 42::bigint AS answer, NULL::text AS nothing, 't'::boolean AS yes, 'x' AS word, 7 AS answer").namedRows[0]
        #expect(try row.decode("answer", as: UInt64.self) == 42, "a repeated name reads its first column")
        #expect(try row.decode("nothing", as: String?.self) == nil)
        #expect(try row.decode("yes", as: Bool.self))
        for attempt in [{ _ = try row.decode("nothing", as: String.self) }, { _ = try row.decode("word", as: Int64.self) }, { _ = try row.decode("absent", as: String.self) }] {
            #expect { try attempt() } throws: { ($0 as? PostgresError)?.kind == .decoding }
        }
    }

    @Test func aBinaryResultReadsNumbersTextAndTimesInPlace() throws {
        let (numbers, texts, times) = try connect().withBinaryResult(
            """
            SELECT n, t, at FROM (VALUES
                (-42::bigint, 'tag é'::text, '1969-12-31 23:59:59.9985+00'::timestamptz),
                (9223372036854775807, NULL, '2027-01-15 08:00:00.000499+00'),
                (NULL, '', '9999-12-31 23:59:59.9995+00'),
                (0, 'x', NULL)
            ) v (n, t, at)
            """
        ) { result in
            let n = try result.column("n", .int8), t = try result.column("t", .text), at = try result.column("at", .timestamptz)
            return (
                try (0..<result.count).map { try result.int64($0, n) }, try (0..<result.count).map { try result.text($0, t) },
                try (0..<result.count).map { try result.milliseconds($0, at) }
            )
        }
        #expect(numbers == [-42, .max, nil, 0])
        #expect(texts == ["tag é", nil, "", "x"])
        // To the nearest millisecond (a half rounds to the later one), before 1970 and after 2000.
        #expect(times == [-1, 1_800_000_000_000, 253_402_300_800_000, nil])
    }

    @Test func aBinaryResultRefusesAColumnOfAnotherTypeAnAbsentOneInfiniteTimesAndMissingOrNegativeCounts() throws {
        let connection = try connect()
        let attempts: [(PostgresBinaryResult) throws -> Void] = [
            { _ = try $0.column("n", .text) },
            { _ = try $0.column("absent", .int8) },
            { _ = try $0.int64(0, try $0.column("t", .text)) },
            { _ = try $0.milliseconds(0, try $0.column("at", .timestamptz)) },
            { _ = try $0.uint64(0, try $0.column("negative", .int8)) },
            { _ = try $0.uint64(0, try $0.column("null", .int8)) },
            { _ = try $0.nonNullText(0, try $0.column("nothing", .text)) },
        ]
        for attempt in attempts {
            #expect {
                try connection.withBinaryResult(
                    "SELECT 1::bigint AS n, 'x'::text AS t, 'infinity'::timestamptz AS at, -1::bigint AS negative, NULL::bigint AS null, NULL::text AS nothing",
                    [String?](), attempt
                )
            } throws: { ($0 as? PostgresError)?.kind == .decoding }
        }
        #expect(try connection.withBinaryResult("SELECT $1::bigint + 1 AS n", ["41"]) { try $0.int64(0, try $0.column("n", .int8)) } == 42)
        let (count, text) = try connection.withBinaryResult("SELECT 42::bigint AS n, 'x'::text AS t") { result in
            (try result.uint64(0, try result.column("n", .int8)), try result.nonNullText(0, try result.column("t", .text)))
        }
        #expect(count == 42 && text == "x")
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

    /// libpq reads a text value up to its first NUL; cut there, `x\0|keep` would reach the server
    /// as the pattern `x`. Such a value is refused as data, and nothing runs.
    /// A server that stops taking writes without closing its sessions (a primary demoted, or
    /// `default_transaction_read_only` turned on, as here): the write it refuses is a connection
    /// error, and the next statement connects again, to the host of the connection string that
    /// takes writes (`target_session_attrs=read-write`), instead of failing on the first for good.
    @Test func aServerThatStopsTakingWritesIsLeftForTheHostThatTakesThem() async throws {
        // Two servers of its own, started and used on a thread of its own (initdb, blocking calls).
        let (refused, written) = try await onOwnThread(Self.writeAcrossAServerThatStopsTakingWrites)
        #expect(refused?.kind == .connection && refused?.sqlState == "25006", "\(String(describing: refused))")
        #expect(written == [["3"]], "the write after the refusal went to the second server")
    }

    /// Writes 1 to the first server, 2 until the first refuses it as read-only, then 3; returns the
    /// refusal and what the second server holds.
    @Sendable static func writeAcrossAServerThatStopsTakingWrites() throws -> (PostgresError?, [[String?]]) {
        let first = try PostgresServer(), second = try PostgresServer()
        for server in [first, second] { try PostgresConnection(server.connectionString()).query("CREATE TABLE writes (n int)") }
        let connection = try PostgresConnection(
            "host=127.0.0.1,127.0.0.1 port=\(first.port),\(second.port) user=postgres dbname=postgres target_session_attrs=read-write connect_timeout=5"
        )
        try connection.query("INSERT INTO writes VALUES (1)")
        let administrator = try PostgresConnection(first.connectionString())
        try administrator.query("ALTER SYSTEM SET default_transaction_read_only = on")
        try administrator.query("SELECT pg_reload_conf()")
        // The session takes the new default when its backend has read the configuration again.
        var refused: PostgresError?
        for _ in 0..<100 where refused == nil {
            do {
                try connection.query("INSERT INTO writes VALUES (2)")
            } catch {
                refused = error
            }
        }
        try connection.query("INSERT INTO writes VALUES (3)")
        return (refused, try PostgresConnection(second.connectionString()).query("SELECT n FROM writes").rows)
    }

    @Test func aTextParameterWithANulIsRefusedNotCutShort() throws {
        let connection = try connect()
        try connection.query("CREATE TABLE t (k text)")
        #expect {
            try connection.query("INSERT INTO t VALUES ($1)", ["x\0|keep"])
        } throws: { error in
            let error = error as? PostgresError
            return error?.kind == .statement && error?.sqlState == "22021" && error?.isCausedByData == true
        }
        #expect(try connection.query("SELECT count(*) FROM t").rows == [["0"]], "nothing was written")
        #expect(try connection.query("SELECT $1::text AS k", ["x|keep"]).rows == [["x|keep"]], "the connection stays usable")
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

    /// Column `n` (`bigint`) of a batch's rows.
    private func numbers(_ rows: PostgresBinaryResult) throws -> [Int64?] {
        let column = try rows.column("n", .int8)
        return try (0..<rows.count).map { try rows.int64($0, column) }
    }

    @Test func aLargeResultArrivesInBatchesOfAtMostTheGivenSizeInBinary() throws {
        let connection = try connect()
        var batches: [[Int64?]] = []
        try connection.transaction {
            try connection.forEachBatch("SELECT n::bigint FROM generate_series(1, $1::int) AS n ORDER BY n", ["25"], batchSize: 10) { rows in
                batches.append(try numbers(rows))
            }
            try connection.forEachBatch("SELECT 1 WHERE false", batchSize: 10) { _ in Issue.record("an empty result has no batch") }
        }
        #expect(batches.map(\.count) == [10, 10, 5])
        #expect(batches.joined().compactMap { $0 } == Array(1...25))
        #expect { try connection.forEachBatch("SELECT 1", batchSize: 10) { _ in } } throws: { ($0 as? PostgresError)?.kind == .statement }
    }

    @Test func aBatchReadWhoseBodyThrowsLeavesTheTransactionFreeForTheNext() throws {
        let connection = try connect()
        struct Stop: Error {}
        let sql = "SELECT n::bigint FROM generate_series(1, 25) AS n ORDER BY n"
        let rows = try connection.transaction {
            #expect(throws: Stop.self) { try connection.forEachBatch(sql, batchSize: 10) { _ in throw Stop() } }
            var rows: [Int64?] = []
            try connection.forEachBatch(sql, batchSize: 10) { rows += try numbers($0) }
            return rows
        }
        #expect(rows.count == 25)
    }

    @Test func millisecondsBecomeTheExactTimeTheyName() throws {
        // Against whole milliseconds added to the epoch: every millisecond of 20 seconds now and
        // around 1970, every 999,983rd of a year now, the extremes a `Timestamp` reaches in practice.
        let mismatches = try connect().query(
            """
            SELECT count(*) FILTER (WHERE \(PostgresTime.timestamp(milliseconds: "ms")) IS DISTINCT FROM timestamptz 'epoch' + ms * interval '1 millisecond')
                AS mismatches, count(*) AS checked
            FROM (
                SELECT generate_series(1800000000000, 1800000020000) UNION ALL SELECT generate_series(-10000, 10000)
                UNION ALL SELECT generate_series(1800000000000, 1800000000000 + 365 * 86400000::bigint, 999983)
                UNION ALL VALUES (-62135596800000), (253402300799999), (NULL)
            ) t (ms)
            """
        ).namedRows[0]
        #expect(try mismatches.decode("checked", as: Int64.self) == 71_542)
        #expect(try mismatches.decode("mismatches", as: Int64.self) == 0)
    }

    @Test func arrayLiteralsCarryAnyTextThroughUnnest() throws {
        let connection = try connect()
        let values: [String?] = ["plain", "with,comma", "with \"quotes\"", "back\\slash", "{braces}", "", nil, "naïve ✓", "NULL"]
        let rows = try connection.query("SELECT value FROM unnest($1::text[]) WITH ORDINALITY AS u(value, n) ORDER BY n", [PostgresArray.literal(values)])
        #expect(rows.rows.map { $0[0] } == values)
    }

    @Test func arrayLiteralsCarryNumbersThroughUnnest() throws {
        let connection = try connect()
        func values(_ literal: String, as type: String) throws -> [String?] {
            try connection.query("SELECT value::text FROM unnest($1::\(type)[]) WITH ORDINALITY AS u(value, n) ORDER BY n", [literal]).rows.map { $0[0] }
        }
        let signed: [Int64?] = [0, -1, 7, nil, .min, .max, 1_800_000_000_123]
        #expect(try values(PostgresArray.literal(signed), as: "bigint") == signed.map { $0.map(String.init) })
        #expect(try values(PostgresArray.literal([Int64]([-10, 10, 0])), as: "bigint") == ["-10", "10", "0"])
        #expect(try values(PostgresArray.literal([UInt64]([0, 9, 10, .max])), as: "numeric") == ["0", "9", "10", "18446744073709551615"])
        #expect(try values(PostgresArray.literal([Int64]()), as: "bigint") == [])
    }

    @Test func binaryArraysCarryTheSameValuesAsLiterals() throws {
        let connection = try connect()
        // A text parameter beside the binary one: each is sent in its own format.
        func values(_ parameter: PostgresParameter, as type: String) throws -> [String?] {
            try connection.query(
                "SELECT value::text FROM unnest($1::\(type)[]) WITH ORDINALITY AS u(value, n) WHERE n <= $2::bigint ORDER BY n",
                [parameter, .text("100")]
            ).rows.map { $0[0] }
        }
        let texts: [String?] = ["plain", "with,comma", "with \"quotes\"", "back\\slash", "{braces}", "", nil, "naïve ✓", "NULL"]
        #expect(try values(PostgresArray.binary(texts), as: "text") == texts)
        #expect(try values(PostgresArray.binary(["a", "ü"]), as: "text") == ["a", "ü"])
        let signed: [Int64?] = [0, -1, 7, nil, .min, .max, 1_800_000_000_123]
        #expect(try values(PostgresArray.binary(signed), as: "bigint") == signed.map { $0.map(String.init) })
        #expect(try values(PostgresArray.binary([Int64]([-10, 256, 0])), as: "bigint") == ["-10", "256", "0"])
        #expect(try values(PostgresArray.binary([UInt64]([0, 9, UInt64(Int64.max)])), as: "bigint") == ["0", "9", String(Int64.max)])
        #expect(try values(PostgresArray.binary([String]()), as: "text") == [])
        #expect(try values(PostgresArray.binary([Int64]()), as: "bigint") == [])
        // Beyond bigint, a count is refused by PostgreSQL, as in text.
        #expect(PostgresArray.binary([UInt64]([1, .max])) == .text("{1,18446744073709551615}"))
        #expect(throws: PostgresError.self) { try values(PostgresArray.binary([UInt64]([1, .max])), as: "bigint") }
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
