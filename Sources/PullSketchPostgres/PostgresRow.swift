/// One row of a result, read by column name. A missing column, an unexpected NULL or text that is
/// not a value of the asked type throws a `.decoding` error naming the column; nothing traps.
/// Inlinable, so a caller reads each column as its concrete type: generic across modules, each
/// read looked up the type's metadata at run time (a third of a 7,800-row dry run's client time).
/// A column is found by comparing names in select order, the first of a repeated name: for the
/// dozen columns of a result that is cheaper than hashing the name.
public struct PostgresRow: Sendable {
    @usableFromInline let columns: [String]
    @usableFromInline let values: [String?]

    init(columns: [String], values: [String?]) {
        self.columns = columns
        self.values = values
    }

    @inlinable
    public func decode<Value: PostgresDecodable>(_ column: String, as type: Value.Type = Value.self) throws(PostgresError) -> Value {
        guard let index = columns.firstIndex(of: column) else { throw PostgresError(.decoding, "the result has no column \(column)") }
        guard let value = Value(postgresText: values[index]) else {
            throw PostgresError(.decoding, "column \(column) holds \(values[index].map { "'\($0)'" } ?? "NULL"), not \(Value.self)")
        }
        return value
    }
}

extension PostgresRows {
    /// The rows, each readable by column name.
    public var namedRows: [PostgresRow] {
        rows.map { PostgresRow(columns: columns, values: $0) }
    }
}

/// A Swift value read from PostgreSQL's text format; nil when the text (nil for NULL) is not one.
public protocol PostgresDecodable {
    init?(postgresText: String?)
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    /// NULL is `.none`; other text must be a `Wrapped`.
    @inlinable
    public init?(postgresText: String?) {
        guard let text = postgresText else {
            self = .none
            return
        }
        guard let value = Wrapped(postgresText: text) else { return nil }
        self = .some(value)
    }
}

extension PostgresDecodable where Self: LosslessStringConvertible {
    /// Numbers and text read as Swift parses them.
    @inlinable
    public init?(postgresText: String?) {
        guard let value = postgresText.flatMap(Self.init) else { return nil }
        self = value
    }
}

extension String: PostgresDecodable {}
extension Int: PostgresDecodable {}
extension Int64: PostgresDecodable {}
extension UInt64: PostgresDecodable {}
extension Double: PostgresDecodable {}

extension Bool: PostgresDecodable {
    /// PostgreSQL writes booleans as `t` and `f`.
    @inlinable
    public init?(postgresText: String?) {
        switch postgresText {
        case "t": self = true
        case "f": self = false
        default: return nil
        }
    }
}
