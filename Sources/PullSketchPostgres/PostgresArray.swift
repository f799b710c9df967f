/// Text literals of PostgreSQL arrays, for bulk statements (`unnest($1::text[], $2::bigint[])`):
/// one parameter carries a whole column, so a batch is one statement, not one per key. A batch's
/// arrays hold hundreds of thousands of elements, so each literal is written as UTF-8 bytes into
/// one buffer, numbers digit by digit, without a string per element.
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
