import CLibPQ

#if canImport(Glibc)
import Glibc
#endif

/// The rows of a query, as text (PostgreSQL's text format), NULL as nil.
public struct PostgresRows: Hashable, Sendable {
    public let columns: [String]
    public let rows: [[String?]]
    /// Rows inserted, updated or deleted, for commands that report it.
    public let affected: Int
}

/// One blocking connection to PostgreSQL over libpq. Not thread-safe, like the `PGconn` it owns:
/// one per task, off any event loop. Every statement is parameterized (`$1`, `$2`, …); parameters
/// travel as text, so SQL is never assembled from data, and results as text or, for large reads,
/// in binary (`withBinaryResult`). A connection that broke reconnects before its next statement;
/// the statement that met the break is never resent, its error is thrown.
public final class PostgresConnection {
    private let connection: OpaquePointer
    /// Session settings applied at every (re)connection, e.g. `statement_timeout`.
    private let settings: [(name: String, value: String)]

    /// Connects with a libpq connection string, e.g. `host=127.0.0.1 port=5432 dbname=pullsketch`,
    /// and applies `settings` (name → value, as `set_config` takes them) to the session, again
    /// after every reconnection.
    public init(_ connectionString: String, settings: [String: String] = [:]) throws(PostgresError) {
        guard let connection = PQconnectdb(connectionString) else {
            throw PostgresError(.connection, "out of memory allocating a connection")
        }
        guard PQstatus(connection) == CONNECTION_OK else {
            let message = Self.text(PQerrorMessage(connection))
            PQfinish(connection)
            throw PostgresError(.connection, message)
        }
        PQsetNoticeProcessor(connection, { _, _ in }, nil)  // notices are not errors; keep stderr clean
        self.connection = connection
        self.settings = settings.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }
        try applySettings()
    }

    deinit {
        PQfinish(connection)
    }

    /// Runs one statement with text parameters and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [String?] = []) throws(PostgresError) -> PostgresRows {
        let result = try run(sql, parameters, binary: false)
        defer { PQclear(result) }
        return Self.rows(result)
    }

    /// Runs one query with text parameters and hands its result, in binary format, to `body`.
    public func withBinaryResult<Result>(
        _ sql: String, _ parameters: [String?] = [], _ body: (PostgresBinaryResult) throws -> Result
    ) throws -> Result {
        let result = try run(sql, parameters, binary: true)
        defer { PQclear(result) }
        return try body(PostgresBinaryResult(result))
    }

    /// The successful result of one statement, to be cleared by the caller.
    private func run(_ sql: String, _ parameters: [String?], binary: Bool) throws(PostgresError) -> OpaquePointer {
        try reconnectIfBroken()
        let result = Self.withCStrings(parameters) { values in
            PQexecParams(connection, sql, Int32(parameters.count), nil, values, nil, nil, binary ? 1 : 0)
        }
        guard let result else { throw PostgresError(.connection, Self.text(PQerrorMessage(connection))) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
            return result
        default:
            defer { PQclear(result) }
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let kind: PostgresError.Kind = PQstatus(connection) == CONNECTION_OK ? .statement : .connection
            throw PostgresError(kind, sqlState: sqlState, Self.text(PQresultErrorMessage(result)))
        }
    }

    /// Runs one query through a cursor and hands its rows to `body` at most `batchSize` at a time,
    /// so a result of any size is never held whole. Inside a transaction only (PostgreSQL's rule
    /// for cursors), and not nested: the cursor has one name. The cursor is closed when `body`
    /// throws too, so the transaction can go on.
    public func forEachBatch(
        _ sql: String, _ parameters: [String?] = [], batchSize: Int, _ body: (PostgresRows) throws -> Void
    ) throws {
        precondition(batchSize > 0)
        try query("DECLARE pullsketch_batches NO SCROLL CURSOR FOR \(sql)", parameters)
        do {
            var fetched = batchSize
            while fetched == batchSize {
                let rows = try query("FETCH FORWARD \(batchSize) FROM pullsketch_batches")
                fetched = rows.rows.count
                if fetched > 0 { try body(rows) }
            }
        } catch {
            _ = try? query("CLOSE pullsketch_batches")  // fails only in a transaction already aborted
            throw error
        }
        try query("CLOSE pullsketch_batches")
    }

    /// Runs statements without parameters in one call (migrations); nothing is returned.
    public func execute(script sql: String) throws(PostgresError) {
        try reconnectIfBroken()
        guard let result = PQexec(connection, sql) else {
            throw PostgresError(.connection, Self.text(PQerrorMessage(connection)))
        }
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COMMAND_OK || PQresultStatus(result) == PGRES_TUPLES_OK else {
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            throw PostgresError(.statement, sqlState: sqlState, Self.text(PQresultErrorMessage(result)))
        }
    }

    /// Runs `body` in a transaction: committed when it returns, rolled back when it throws.
    public func transaction<Result>(_ body: () throws -> Result) throws -> Result {
        try query("BEGIN")
        do {
            let result = try body()
            try query("COMMIT")
            return result
        } catch {
            _ = try? query("ROLLBACK")
            throw error
        }
    }

    private func reconnectIfBroken() throws(PostgresError) {
        guard PQstatus(connection) != CONNECTION_OK else { return }
        PQreset(connection)
        guard PQstatus(connection) == CONNECTION_OK else {
            throw PostgresError(.connection, Self.text(PQerrorMessage(connection)))
        }
        try applySettings()
    }

    private func applySettings() throws(PostgresError) {
        for (name, value) in settings {
            try query("SELECT set_config($1, $2, false)", [name, value])
        }
    }

    private static func rows(_ result: OpaquePointer) -> PostgresRows {
        let columnCount = PQnfields(result)
        let columns = (0..<columnCount).map { String(cString: PQfname(result, $0)) }
        let rows = (0..<PQntuples(result)).map { row in
            (0..<columnCount).map { column -> String? in
                PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
            }
        }
        return PostgresRows(columns: columns, rows: rows, affected: Int(String(cString: PQcmdTuples(result))) ?? 0)
    }

    private static func withCStrings<Result>(
        _ strings: [String?],
        _ body: (UnsafePointer<UnsafePointer<CChar>?>?) -> Result
    ) -> Result {
        let copies = strings.map { $0.flatMap { strdup($0) } }
        defer { copies.forEach { free($0) } }
        let pointers = copies.map { UnsafePointer($0) }
        return pointers.withUnsafeBufferPointer { body($0.baseAddress) }
    }

    private static func text(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "unknown error" }
        var text = String(cString: message)
        while text.last?.isWhitespace == true { text.removeLast() }
        return text
    }
}
