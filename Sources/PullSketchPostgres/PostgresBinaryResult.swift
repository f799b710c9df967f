import CLibPQ

/// A result in PostgreSQL's binary format, read in place: a number or a time crosses as eight
/// bytes, with no text made on either side and no string per value, which is most of the cost of
/// reading thousands of rows as text (the dry run, the reconciler's catalog reads). Valid only
/// inside the body that received it (`PostgresConnection.withBinaryResult`, `forEachBatch`). A
/// column is looked up once, by name and type; a value that is not what its column promised
/// throws a `.decoding` error.
public struct PostgresBinaryResult {
    /// The column types read in binary.
    public enum ColumnType: UInt32, Sendable {
        case int8 = 20
        case text = 25
        case timestamptz = 1184
    }

    /// A column's position in the result and the type it was checked to have.
    public struct Column: Sendable {
        let index: Int32
        let type: ColumnType
        public let name: String
    }

    let result: OpaquePointer
    public let count: Int

    init(_ result: OpaquePointer) {
        self.result = result
        count = Int(PQntuples(result))
    }

    /// The column named `name`, which must be of `type`.
    public func column(_ name: String, _ type: ColumnType) throws(PostgresError) -> Column {
        let index = PQfnumber(result, "\"\(name)\"")
        guard index >= 0 else { throw PostgresError(.decoding, "the result has no column \(name)") }
        guard PQftype(result, index) == type.rawValue else {
            throw PostgresError(.decoding, "column \(name) is of type oid \(PQftype(result, index)), not \(type)")
        }
        return Column(index: index, type: type, name: name)
    }

    /// The text in `column` of `row`; nil for NULL.
    public func text(_ row: Int, _ column: Column) throws(PostgresError) -> String? {
        try utf8(row, column).map { String(decoding: $0, as: UTF8.self) }
    }

    /// The UTF-8 bytes of the text in `column` of `row`, in place (valid as long as the result);
    /// nil for NULL. For a reader that needs a string of only some of the rows it reads.
    public func utf8(_ row: Int, _ column: Column) throws(PostgresError) -> UnsafeRawBufferPointer? {
        try bytes(row, column, .text)
    }

    /// The text in `column` of `row`, which must not be NULL.
    public func nonNullText(_ row: Int, _ column: Column) throws(PostgresError) -> String {
        guard let text = try text(row, column) else { throw PostgresError(.decoding, "column \(column.name) holds NULL, not text") }
        return text
    }

    /// The `bigint` in `column` of `row`, which must be neither NULL nor negative: a count.
    public func uint64(_ row: Int, _ column: Column) throws(PostgresError) -> UInt64 {
        let value = try int64(row, column)
        guard let count = value.flatMap(UInt64.init(exactly:)) else {
            throw PostgresError(.decoding, "column \(column.name) holds \(value.map(String.init) ?? "NULL"), not a count")
        }
        return count
    }

    /// The `bigint` in `column` of `row`; nil for NULL.
    public func int64(_ row: Int, _ column: Column) throws(PostgresError) -> Int64? {
        guard let bytes = try bytes(row, column, .int8) else { return nil }
        return try Self.bigEndianInt64(bytes, column)
    }

    /// The `timestamptz` in `column` of `row` as milliseconds since 1970 (UTC), to the nearest
    /// millisecond; nil for NULL. `infinity` and `-infinity` have no such number and throw.
    public func milliseconds(_ row: Int, _ column: Column) throws(PostgresError) -> Int64? {
        guard let bytes = try bytes(row, column, .timestamptz) else { return nil }
        // Microseconds since 2000-01-01 UTC; the extremes of Int64 stand for the infinities.
        let microseconds = try Self.bigEndianInt64(bytes, column)
        guard microseconds != .min, microseconds != .max else {
            throw PostgresError(.decoding, "column \(column.name) holds an infinite time")
        }
        let (milliseconds, remainder) = microseconds.quotientAndRemainder(dividingBy: 1_000)
        let rounded = remainder >= 500 ? milliseconds + 1 : remainder < -500 ? milliseconds - 1 : milliseconds
        return rounded + 946_684_800_000
    }

    private func bytes(_ row: Int, _ column: Column, _ type: ColumnType) throws(PostgresError) -> UnsafeRawBufferPointer? {
        guard column.type == type else { throw PostgresError(.decoding, "column \(column.name) is \(column.type), not \(type)") }
        precondition((0..<count).contains(row), "row \(row) of a result of \(count)")
        let row = Int32(row)
        guard PQgetisnull(result, row, column.index) == 0 else { return nil }
        return UnsafeRawBufferPointer(start: PQgetvalue(result, row, column.index), count: Int(PQgetlength(result, row, column.index)))
    }

    private static func bigEndianInt64(_ bytes: UnsafeRawBufferPointer, _ column: Column) throws(PostgresError) -> Int64 {
        guard bytes.count == 8 else { throw PostgresError(.decoding, "column \(column.name) holds \(bytes.count) bytes, not 8") }
        return Int64(bigEndian: bytes.loadUnaligned(as: Int64.self))
    }
}
