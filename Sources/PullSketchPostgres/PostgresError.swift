/// A failed PostgreSQL call.
public struct PostgresError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// Could not connect, or the connection broke: reconnect and retry the transaction.
        case connection
        /// The server refused the statement; `sqlState` says why (e.g. 23505 unique violation).
        case statement
        /// A result value is not what the caller read it as: a schema out of step with the code.
        case decoding
    }

    public let kind: Kind
    /// The five-character SQLSTATE, when the server sent one.
    public let sqlState: String?
    public let message: String

    public init(_ kind: Kind, sqlState: String? = nil, _ message: String) {
        self.kind = kind
        self.sqlState = sqlState
        self.message = message
    }

    /// The statement failed because of the values it was given (SQLSTATE classes 22 data
    /// exception, 23 integrity violation, 54 program limit): running it again fails again.
    public var isCausedByData: Bool {
        kind == .statement && ["22", "23", "54"].contains(sqlState?.prefix(2) ?? "")
    }

    public var description: String {
        "postgres \(kind)\(sqlState.map { " \($0)" } ?? ""): \(message)"
    }
}
