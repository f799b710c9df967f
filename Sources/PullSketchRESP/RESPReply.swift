/// A reply in the Redis serialization protocol, version 2 (what clients speak unless they send
/// `HELLO 3`).
public indirect enum RESPReply: Hashable, Sendable {
    case simple(String)
    case error(String)
    case integer(Int64)
    /// nil is the null bulk string.
    case bulk([UInt8]?)
    case array([RESPReply])

    public static let ok = RESPReply.simple("OK")

    public static func bulk(_ text: String) -> RESPReply {
        .bulk(Array(text.utf8))
    }

    /// Appends the reply's bytes to `buffer`. Simple strings and errors lose any CR or LF, which
    /// the protocol cannot carry in them.
    public func encode(into buffer: inout [UInt8]) {
        switch self {
        case .simple(let text):
            buffer.append(UInt8(ascii: "+"))
            Self.appendLine(text, to: &buffer)
        case .error(let text):
            buffer.append(UInt8(ascii: "-"))
            Self.appendLine(text, to: &buffer)
        case .integer(let value):
            buffer.append(UInt8(ascii: ":"))
            Self.appendLine(String(value), to: &buffer)
        case .bulk(nil):
            buffer.append(contentsOf: "$-1\r\n".utf8)
        case .bulk(let bytes?):
            appendBulk(bytes, to: &buffer)
        case .array(let elements):
            appendHeader(UInt8(ascii: "*"), elements.count, to: &buffer)
            for element in elements { element.encode(into: &buffer) }
        }
    }

    public var bytes: [UInt8] {
        var buffer: [UInt8] = []
        encode(into: &buffer)
        return buffer
    }

    private static func appendLine(_ text: String, to buffer: inout [UInt8]) {
        buffer.append(contentsOf: text.utf8.lazy.map { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") ? UInt8(ascii: " ") : $0 })
        buffer.append(contentsOf: "\r\n".utf8)
    }
}

/// A command as a client sends it: an array of bulk strings.
public enum RESPCommand {
    /// Appends the command's bytes to `buffer`; arguments are binary-safe.
    public static func encode(_ arguments: [[UInt8]], into buffer: inout [UInt8]) {
        appendHeader(UInt8(ascii: "*"), arguments.count, to: &buffer)
        for argument in arguments { appendBulk(argument, to: &buffer) }
    }
}

/// `<marker><count>\r\n`, the header of a bulk string or an array, digits written in place.
private func appendHeader(_ marker: UInt8, _ count: Int, to buffer: inout [UInt8]) {
    buffer.append(marker)
    let digits = buffer.count
    var rest = count
    repeat {
        buffer.append(UInt8(ascii: "0") + UInt8(rest % 10))
        rest /= 10
    } while rest > 0
    buffer[digits...].reverse()
    buffer.append(UInt8(ascii: "\r"))
    buffer.append(UInt8(ascii: "\n"))
}

private func appendBulk(_ bytes: [UInt8], to buffer: inout [UInt8]) {
    appendHeader(UInt8(ascii: "$"), bytes.count, to: &buffer)
    buffer.append(contentsOf: bytes)
    buffer.append(UInt8(ascii: "\r"))
    buffer.append(UInt8(ascii: "\n"))
}
