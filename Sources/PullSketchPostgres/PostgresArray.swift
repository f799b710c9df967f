/// PostgreSQL arrays for bulk statements (`unnest($1::text[], $2::bigint[])`): one parameter
/// carries a whole column, so a batch is one statement, not one per key. As text literals
/// (`literal`), written as UTF-8 bytes into one buffer, numbers digit by digit, without a string
/// per element; or in PostgreSQL's binary format (`binary`), which neither side has to parse, for
/// the reconciler's batches of hundreds of thousands of elements.
public enum PostgresArray {
    /// `{"a","b\"c",NULL}`: every element quoted, `"` and `\` escaped, nil as NULL.
    public static func literal(_ elements: [String?]) -> String {
        build(elements) { text, element in
            guard let element else { return text.append(contentsOf: "NULL".utf8) }
            appendQuoted(&text, element)
        }
    }

    public static func literal(_ elements: [String]) -> String {
        build(elements, appendQuoted)
    }

    /// `{1,-2,NULL}`: nil as NULL. Counts and times (milliseconds) cross as `bigint`.
    public static func literal(_ numbers: [Int64?]) -> String {
        build(numbers) { text, number in
            guard let number else { return text.append(contentsOf: "NULL".utf8) }
            appendDecimal(&text, number)
        }
    }

    public static func literal(_ numbers: [Int64]) -> String {
        build(numbers) { appendDecimal(&$0, $1) }
    }

    public static func literal(_ numbers: [UInt64]) -> String {
        build(numbers) { appendDecimal(&$0, $1) }
    }

    private static func build<Element>(_ elements: [Element], _ append: (inout [UInt8], Element) -> Void) -> String {
        var text: [UInt8] = [UInt8(ascii: "{")]
        text.reserveCapacity(2 + elements.count * 16)
        for (index, element) in elements.enumerated() {
            if index > 0 { text.append(UInt8(ascii: ",")) }
            append(&text, element)
        }
        text.append(UInt8(ascii: "}"))
        return String(decoding: text, as: UTF8.self)
    }

    /// `element` in double quotes; `"` and `\`, never part of a longer UTF-8 sequence, escaped.
    private static func appendQuoted(_ text: inout [UInt8], _ element: String) {
        func isSpecial(_ byte: UInt8) -> Bool { byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") }
        var element = element
        text.append(UInt8(ascii: "\""))
        element.withUTF8 { bytes in
            if bytes.contains(where: isSpecial) {
                for byte in bytes {
                    if isSpecial(byte) { text.append(UInt8(ascii: "\\")) }
                    text.append(byte)
                }
            } else {
                text.append(contentsOf: bytes)
            }
        }
        text.append(UInt8(ascii: "\""))
    }

    private static func appendDecimal(_ text: inout [UInt8], _ number: some BinaryInteger) {
        if number < 0 { text.append(UInt8(ascii: "-")) }
        var magnitude = number.magnitude
        let first = text.count
        repeat {
            text.append(UInt8(ascii: "0") + UInt8(truncatingIfNeeded: magnitude % 10))
            magnitude /= 10
        } while magnitude != 0
        text[first...].reverse()
    }
}

extension PostgresArray {
    /// A one-dimensional `text[]` in PostgreSQL's binary format, nil as NULL: the server reads
    /// each element by its length, without parsing quotes, escapes and commas.
    public static func binary(_ elements: [String?]) -> PostgresParameter {
        binary(elements, type: textType, orNull(appendText))
    }

    public static func binary(_ elements: [String]) -> PostgresParameter {
        binary(elements, type: textType, appendText)
    }

    /// A one-dimensional `bigint[]` in binary format, nil as NULL.
    public static func binary(_ numbers: [Int64?]) -> PostgresParameter {
        binary(numbers, type: bigintType, orNull(appendBigint))
    }

    public static func binary(_ numbers: [Int64]) -> PostgresParameter {
        binary(numbers, type: bigintType, appendBigint)
    }

    /// Counts as `bigint[]`. An array holding a count beyond `bigint` goes as text, for
    /// PostgreSQL to reject (22003) as it rejects any such input.
    public static func binary(_ numbers: [UInt64]) -> PostgresParameter {
        guard numbers.allSatisfy({ $0 <= Int64.max }) else { return .text(literal(numbers)) }
        return binary(numbers, type: bigintType) { appendBigint(&$0, Int64($1)) }
    }

    /// Element types' object ids (`pg_type`).
    private static let textType: Int32 = 25
    private static let bigintType: Int32 = 20

    /// The array header — dimensions (none when empty), a flag saying it may hold NULLs, the
    /// element type, then the length and lower bound 1 — followed by each element as its length
    /// in bytes (-1: NULL) and its bytes. Integers are big-endian.
    private static func binary<Element>(
        _ elements: [Element], type: Int32, _ append: (inout [UInt8], Element) -> Void
    ) -> PostgresParameter {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(20 + elements.count * 16)
        appendInt32(&bytes, elements.isEmpty ? 0 : 1)
        appendInt32(&bytes, 1)
        appendInt32(&bytes, type)
        if !elements.isEmpty {
            appendInt32(&bytes, Int32(elements.count))
            appendInt32(&bytes, 1)
        }
        for element in elements { append(&bytes, element) }
        return .binary(bytes)
    }

    /// `append` for a value, the length -1 (NULL) for nil.
    private static func orNull<Element>(_ append: @escaping (inout [UInt8], Element) -> Void) -> (inout [UInt8], Element?) -> Void {
        { bytes, element in
            guard let element else { return appendInt32(&bytes, -1) }
            append(&bytes, element)
        }
    }

    private static func appendText(_ bytes: inout [UInt8], _ element: String) {
        var element = element
        element.withUTF8 { utf8 in
            appendInt32(&bytes, Int32(utf8.count))
            bytes.append(contentsOf: utf8)
        }
    }

    private static func appendBigint(_ bytes: inout [UInt8], _ number: Int64) {
        appendInt32(&bytes, 8)
        withUnsafeBytes(of: number.bigEndian) { bytes.append(contentsOf: $0) }
    }

    private static func appendInt32(_ bytes: inout [UInt8], _ value: Int32) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }
}
