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

/// One parameter of a statement: text in PostgreSQL's input syntax (nil: NULL), or a value in
/// PostgreSQL's binary format, whose type the statement gives (`$1::bigint[]`).
public enum PostgresParameter: Hashable, Sendable {
    case text(String?)
    case binary([UInt8])
}

/// One blocking connection to PostgreSQL over libpq. Not thread-safe, like the `PGconn` it owns:
/// one per task, off any event loop. Every statement is parameterized (`$1`, `$2`, …), so SQL is
/// never assembled from data; parameters travel as text or, for bulk arrays, in binary
/// (`PostgresArray.binary`), and results as text or, for large reads, in binary (`withBinaryResult`).
/// A connection that broke reconnects before its next statement; the statement that met the break
/// is never resent, its error is thrown. So does one whose server stopped taking writes (SQLSTATE
/// 25006: a primary demoted to a standby without closing its sessions, or `default_transaction_
/// read_only` turned on): its error is a `.connection` one, and connecting again with the same
/// string — several hosts and `target_session_attrs=read-write` — finds the server that takes them.
public final class PostgresConnection {
    private let connection: OpaquePointer
    /// Session settings applied at every (re)connection, e.g. `statement_timeout`.
    private let settings: [(name: String, value: String)]
    /// The server refused a write as read-only: connect again before the next statement.
    private var serverTakesNoWrites = false

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
        try query(sql, parameters.map(PostgresParameter.text))
    }

    /// Runs one statement whose parameters are text or binary (bulk arrays, `PostgresArray.binary`)
    /// and returns its rows.
    @discardableResult
    public func query(_ sql: String, _ parameters: [PostgresParameter]) throws(PostgresError) -> PostgresRows {
        let result = try run(sql, parameters, binaryResult: false)
        defer { PQclear(result) }
        return Self.rows(result)
    }

    /// Runs one query with text parameters and hands its result, in binary format, to `body`.
    public func withBinaryResult<Result>(
        _ sql: String, _ parameters: [String?] = [], _ body: (PostgresBinaryResult) throws -> Result
    ) throws -> Result {
        try withBinaryResult(sql, parameters.map(PostgresParameter.text), body)
    }

    /// Runs one statement whose parameters are text or binary and hands its result, in binary
    /// format, to `body`.
    public func withBinaryResult<Result>(
        _ sql: String, _ parameters: [PostgresParameter], _ body: (PostgresBinaryResult) throws -> Result
    ) throws -> Result {
        let result = try run(sql, parameters, binaryResult: true)
        defer { PQclear(result) }
        return try body(PostgresBinaryResult(result))
    }

    /// The successful result of one statement, to be cleared by the caller.
    private func run(_ sql: String, _ parameters: [PostgresParameter], binaryResult: Bool) throws(PostgresError) -> OpaquePointer {
        // libpq reads a text value up to its first NUL: refused, as the server refuses a NUL in
        // text (character not in repertoire), rather than sent cut short.
        for case .text(let text?) in parameters where text.utf8.contains(0) {
            throw PostgresError(.statement, sqlState: "22021", "a text parameter contains a NUL character")
        }
        try reconnectIfBroken()
        let result = Self.withValues(parameters) { values, lengths, formats in
            PQexecParams(connection, sql, Int32(parameters.count), nil, values, lengths, formats, binaryResult ? 1 : 0)
        }
        guard let result else { throw PostgresError(.connection, Self.text(PQerrorMessage(connection))) }
        switch PQresultStatus(result) {
        case PGRES_TUPLES_OK, PGRES_COMMAND_OK:
            return result
        default:
            defer { PQclear(result) }
            let sqlState = PQresultErrorField(result, Int32(UInt8(ascii: "C"))).map { String(cString: $0) }
            let readOnly = sqlState == "25006"
            if readOnly { serverTakesNoWrites = true }
            let kind: PostgresError.Kind = PQstatus(connection) == CONNECTION_OK && !readOnly ? .statement : .connection
            throw PostgresError(kind, sqlState: sqlState, Self.text(PQresultErrorMessage(result)))
        }
    }

    /// Runs one query through a cursor and hands its rows to `body` at most `batchSize` at a time,
    /// in binary (`PostgresBinaryResult`), so a result of any size is never held whole. Inside a
    /// transaction only (PostgreSQL's rule for cursors), and not nested: the cursor has one name.
    /// The cursor is closed when `body` throws too, so the transaction can go on.
    public func forEachBatch(
        _ sql: String, _ parameters: [String?] = [], batchSize: Int, _ body: (PostgresBinaryResult) throws -> Void
    ) throws {
        precondition(batchSize > 0)
        try query("DECLARE pullsketch_batches NO SCROLL CURSOR FOR \(sql)", parameters)
        do {
            var fetched = batchSize
            while fetched == batchSize {
                fetched = try withBinaryResult("FETCH FORWARD \(batchSize) FROM pullsketch_batches") { rows in
                    if rows.count > 0 { try body(rows) }
                    return rows.count
                }
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
        guard PQstatus(connection) != CONNECTION_OK || serverTakesNoWrites else { return }
        serverTakesNoWrites = false
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

    /// `parameters` as libpq takes them: values (text NUL-terminated, NULL as a null pointer),
    /// lengths and formats (0 text, 1 binary; libpq reads lengths of binary values only).
    private static func withValues<Result>(
        _ parameters: [PostgresParameter],
        _ body: (UnsafePointer<UnsafePointer<CChar>?>?, UnsafePointer<Int32>?, UnsafePointer<Int32>?) -> Result
    ) -> Result {
        let copies = parameters.map { parameter -> UnsafeMutablePointer<CChar>? in
            switch parameter {
            case .text(let text): return text.flatMap { strdup($0) }
            case .binary(let bytes):
                let copy = malloc(max(bytes.count, 1))!
                bytes.withUnsafeBytes { if let base = $0.baseAddress { copy.copyMemory(from: base, byteCount: $0.count) } }
                return copy.assumingMemoryBound(to: CChar.self)
            }
        }
        defer { copies.forEach { free($0) } }
        let lengths = parameters.map { parameter -> Int32 in if case .binary(let bytes) = parameter { Int32(bytes.count) } else { 0 } }
        let formats = parameters.map { parameter -> Int32 in if case .binary = parameter { 1 } else { 0 } }
        return copies.map { UnsafePointer($0) }.withUnsafeBufferPointer { values in
            lengths.withUnsafeBufferPointer { lengths in
                formats.withUnsafeBufferPointer { formats in body(values.baseAddress, lengths.baseAddress, formats.baseAddress) }
            }
        }
    }

    private static func text(_ message: UnsafePointer<CChar>?) -> String {
        guard let message else { return "unknown error" }
        var text = String(cString: message)
        while text.last?.isWhitespace == true { text.removeLast() }
        return text
    }
}
