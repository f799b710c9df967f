/// One row of a result, read by column name. A missing column, an unexpected NULL or text that is
/// not a value of the asked type throws a `.decoding` error naming the column; nothing traps.
public struct PostgresRow: Sendable {
    private let columns: [String: Int]
    private let values: [String?]

    init(columns: [String: Int], values: [String?]) {
        self.columns = columns
        self.values = values
    }

    public func decode<Value: PostgresDecodable>(_ column: String, as type: Value.Type = Value.self) throws(PostgresError) -> Value {
        guard let index = columns[column] else { throw PostgresError(.decoding, "the result has no column \(column)") }
        guard let value = Value(postgresText: values[index]) else {
            throw PostgresError(.decoding, "column \(column) holds \(values[index].map { "'\($0)'" } ?? "NULL"), not \(Value.self)")
        }
        return value
    }
}

extension PostgresRows {
    /// The rows, each readable by column name.
    public var namedRows: [PostgresRow] {
        let indices = Dictionary(columns.enumerated().map { ($1, $0) }) { first, _ in first }
        return rows.map { PostgresRow(columns: indices, values: $0) }
    }
}

/// A Swift value read from PostgreSQL's text format; nil when the text (nil for NULL) is not one.
public protocol PostgresDecodable {
    init?(postgresText: String?)
}

extension Optional: PostgresDecodable where Wrapped: PostgresDecodable {
    /// NULL is `.none`; other text must be a `Wrapped`.
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
    public init?(postgresText: String?) {
        switch postgresText {
        case "t": self = true
        case "f": self = false
        default: return nil
        }
    }
}
