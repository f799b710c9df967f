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

extension String: PostgresDecodable {
    public init?(postgresText: String?) {
        guard let postgresText else { return nil }
        self = postgresText
    }
}

extension Bool: PostgresDecodable {
    public init?(postgresText: String?) {
        switch postgresText {
        case "t": self = true
        case "f": self = false
        default: return nil
        }
    }
}

extension Int: PostgresDecodable {
    public init?(postgresText: String?) {
        guard let value = postgresText.flatMap({ Int($0) }) else { return nil }
        self = value
    }
}

extension Int64: PostgresDecodable {
    public init?(postgresText: String?) {
        guard let value = postgresText.flatMap({ Int64($0) }) else { return nil }
        self = value
    }
}

extension UInt64: PostgresDecodable {
    public init?(postgresText: String?) {
        guard let value = postgresText.flatMap({ UInt64($0) }) else { return nil }
        self = value
    }
}

extension Double: PostgresDecodable {
    public init?(postgresText: String?) {
        guard let value = postgresText.flatMap({ Double($0) }) else { return nil }
        self = value
    }
}
