/// Limits that keep one client from holding unbounded memory. Redis's own limits are far larger
/// (512 MB bulks); the pull-metrics traffic PullSketch answers never comes near these.
public struct RESPLimits: Hashable, Sendable {
    /// Most arguments in one command. Default 1,024.
    public var maximumArguments: Int
    /// Longest single argument, in bytes. Default 1 MiB (a Lua script is a few KB).
    public var maximumArgumentBytes: Int
    /// Most bytes one whole command may take. Default 2 MiB.
    public var maximumCommandBytes: Int
    /// Longest inline command line, in bytes. Default 64 KiB, as Redis.
    public var maximumInlineBytes: Int

    public init(maximumArguments: Int = 1_024, maximumArgumentBytes: Int = 1 << 20, maximumCommandBytes: Int = 2 << 20, maximumInlineBytes: Int = 64 << 10) {
        self.maximumArguments = maximumArguments
        self.maximumArgumentBytes = maximumArgumentBytes
        self.maximumCommandBytes = maximumCommandBytes
        self.maximumInlineBytes = maximumInlineBytes
    }
}

/// What the front of a buffer holds.
public enum RESPParseResult: Hashable, Sendable {
    /// A whole command (its arguments, the name first) and the bytes it took.
    case command([[UInt8]], consumed: Int)
    /// Bytes a client may send that carry no command (an empty line, `*0`): skip them.
    case nothing(consumed: Int)
    /// The command is not complete yet: wait for more bytes.
    case incomplete
    /// The bytes break the protocol; the connection must be answered with this error and closed.
    case invalid(String)
}

/// Reads client commands of the Redis serialization protocol (RESP): arrays of bulk strings, as
/// every client library sends them, and inline commands (`PING\r\n`), as people type them. A
/// length beyond a limit is refused before its bytes arrive, and an incomplete command is refused
/// once it passes `maximumCommandBytes`, so a connection never buffers more than one command.
public struct RESPParser: Sendable {
    public let limits: RESPLimits

    public init(limits: RESPLimits = RESPLimits()) {
        self.limits = limits
    }

    /// Parses the first command in `bytes`.
    public func parse(_ bytes: UnsafeRawBufferPointer) -> RESPParseResult {
        guard let first = bytes.first else { return .incomplete }
        let result = first == UInt8(ascii: "*") ? parseArray(bytes) : parseInline(bytes)
        if result == .incomplete, bytes.count > limits.maximumCommandBytes { return .invalid("Protocol error: command too large") }
        return result
    }

    /// Convenience for arrays of bytes (tests, fuzzing).
    public func parse(_ bytes: [UInt8]) -> RESPParseResult {
        bytes.withUnsafeBytes { parse($0) }
    }

    private func parseArray(_ bytes: UnsafeRawBufferPointer) -> RESPParseResult {
        var position = 1
        let count: Int
        switch readInteger(bytes, &position, maximumDigits: 10) {
        case .incomplete: return .incomplete
        case .invalid: return .invalid("Protocol error: invalid multibulk length")
        case .value(let value): count = value
        }
        if count <= 0 { return .nothing(consumed: position) }
        guard count <= limits.maximumArguments else { return .invalid("Protocol error: invalid multibulk length") }
        var arguments: [[UInt8]] = []
        arguments.reserveCapacity(count)
        for _ in 0..<count {
            guard position < bytes.count else { return .incomplete }
            guard bytes[position] == UInt8(ascii: "$") else {
                return .invalid("Protocol error: expected '$', got '\(Self.printable(bytes[position]))'")
            }
            position += 1
            let length: Int
            switch readInteger(bytes, &position, maximumDigits: 10) {
            case .incomplete: return .incomplete
            case .invalid: return .invalid("Protocol error: invalid bulk length")
            case .value(let value): length = value
            }
            guard length >= 0, length <= limits.maximumArgumentBytes else { return .invalid("Protocol error: invalid bulk length") }
            guard bytes.count - position >= length + 2 else { return .incomplete }
            guard bytes[position + length] == UInt8(ascii: "\r"), bytes[position + length + 1] == UInt8(ascii: "\n") else {
                return .invalid("Protocol error: bulk string not followed by CRLF")
            }
            arguments.append(Array(bytes[position..<(position + length)]))
            position += length + 2
        }
        return .command(arguments, consumed: position)
    }

    /// A line of words separated by spaces or tabs, ended by `\n` or `\r\n`.
    private func parseInline(_ bytes: UnsafeRawBufferPointer) -> RESPParseResult {
        guard let newline = bytes.firstIndex(of: UInt8(ascii: "\n")) else {
            return bytes.count > limits.maximumInlineBytes ? .invalid("Protocol error: too big inline request") : .incomplete
        }
        guard newline <= limits.maximumInlineBytes else { return .invalid("Protocol error: too big inline request") }
        let line = bytes[..<newline]
        let words = line.split(whereSeparator: { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") || $0 == UInt8(ascii: "\r") })
        guard !words.isEmpty else { return .nothing(consumed: newline + 1) }
        guard words.count <= limits.maximumArguments else { return .invalid("Protocol error: invalid multibulk length") }
        return .command(words.map { Array($0) }, consumed: newline + 1)
    }

    private enum IntegerLine {
        case value(Int)
        case incomplete
        case invalid
    }

    /// Reads a decimal integer ended by CRLF at `position`, moving past the CRLF. A line longer
    /// than `maximumDigits` + sign is invalid before it is complete, so it cannot grow a buffer.
    private func readInteger(_ bytes: UnsafeRawBufferPointer, _ position: inout Int, maximumDigits: Int) -> IntegerLine {
        var index = position
        var negative = false
        if index < bytes.count, bytes[index] == UInt8(ascii: "-") {
            negative = true
            index += 1
        }
        var value = 0
        var digits = 0
        while index < bytes.count {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\r") {
                guard index + 1 < bytes.count else { return .incomplete }
                guard bytes[index + 1] == UInt8(ascii: "\n"), digits > 0 else { return .invalid }
                position = index + 2
                return .value(negative ? -value : value)
            }
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < maximumDigits else { return .invalid }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
            digits += 1
            index += 1
        }
        return .incomplete
    }

    private static func printable(_ byte: UInt8) -> String {
        (0x21...0x7e).contains(byte) ? String(UnicodeScalar(byte)) : "\\x" + String(byte, radix: 16)
    }
}
