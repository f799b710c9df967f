/// Reads JSON in place from UTF-8 bytes: the caller walks the shape it expects, and `skipValue`
/// passes over everything else. No document tree and no `Decodable` machinery, which took about a
/// tenth of the node's CPU per notification.
///
/// It answers as Foundation's `JSONDecoder` does, and the tests hold it to that: the structure
/// (brackets, commas — one trailing comma allowed —, colons, string ends, literals, nesting up to
/// 512) must hold everywhere, or the document is refused; numbers and skipped strings are only
/// delimited; a string or key that is read must decode (valid escapes, surrogate pairs, UTF-8, no
/// control characters), or it is a `mismatch` like a value of another type; a repeated key's
/// first value counts.
struct JSONScanner {
    enum Failure: Error {
        /// Not JSON: the whole document is refused.
        case syntax
        /// JSON, but not what the caller expects here: another type, or a string that does not decode.
        case mismatch
    }

    static let maximumDepth = 512
    private let bytes: UnsafeRawBufferPointer
    private var position = 0
    private var depth = 0

    init(_ bytes: UnsafeRawBufferPointer) {
        self.bytes = bytes
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { position = 3 }  // a UTF-8 byte order mark
    }

    /// The array under `key` in the top-level object of `json`, each element read by `read`, or nil
    /// when of a shape `read` does not expect; nil when `json` is not JSON or has no such array.
    static func lenientArray<Element>(
        in json: UnsafeRawBufferPointer, under key: String, _ read: (inout JSONScanner) throws(Failure) -> Element
    ) -> [Element?]? {
        var scanner = JSONScanner(json)
        var elements: [Element?]?
        do {
            try scanner.object { scanner, name throws(Failure) in
                guard name == key else { return try scanner.skipValue() }
                var found: [Element?] = []
                try scanner.array { scanner throws(Failure) in found.append(try scanner.lenient(read)) }
                elements = found
            }
            try scanner.end()
        } catch {
            return nil
        }
        return elements
    }

    /// After the document's value: nothing but whitespace may follow.
    mutating func end() throws(Failure) {
        skipWhitespace()
        guard position == bytes.count else { throw .syntax }
    }

    /// An object; `member` gets each key the first time it appears and must read or skip its value.
    mutating func object(_ member: (inout JSONScanner, String) throws(Failure) -> Void) throws(Failure) {
        var seen: [String] = []
        seen.reserveCapacity(8)  // a usual object's keys: one allocation instead of one per doubling
        try members { scanner throws(Failure) in
            let key = try scanner.string()
            try scanner.colon()
            if seen.contains(key) { return try scanner.skipValue() }
            seen.append(key)
            try member(&scanner, key)
        }
    }

    /// An array; `element` must read or skip each element.
    mutating func array(_ element: (inout JSONScanner) throws(Failure) -> Void) throws(Failure) {
        try open(UInt8(ascii: "["))
        try elements(closedBy: UInt8(ascii: "]"), element)
    }

    /// A string or `null`.
    mutating func optionalString() throws(Failure) -> String? {
        try null() ? nil : string()
    }

    /// A value read by `read`, or nil for a value it does not expect (checked and skipped): what a
    /// lenient `Decodable` wrapper around each element does.
    mutating func lenient<Value>(_ read: (inout JSONScanner) throws(Failure) -> Value) throws(Failure) -> Value? {
        let (start, startDepth) = (position, depth)
        do {
            return try read(&self)
        } catch .mismatch {
            (position, depth) = (start, startDepth)
            try skipValue()
            return nil
        }
    }

    /// Whether the next value is `null`, consumed if so.
    mutating func null() throws(Failure) -> Bool {
        guard try next() == UInt8(ascii: "n") else { return false }
        try literal("null")
        return true
    }

    /// Passes over the next value, checking its structure only.
    mutating func skipValue() throws(Failure) {
        switch try next() {
        case UInt8(ascii: "{"):
            try members { scanner throws(Failure) in
                _ = try scanner.stringBounds()
                try scanner.colon()
                try scanner.skipValue()
            }
        case UInt8(ascii: "["):
            try array { scanner throws(Failure) in try scanner.skipValue() }
        case UInt8(ascii: "\""): _ = try stringBounds()
        case UInt8(ascii: "t"): try literal("true")
        case UInt8(ascii: "f"): try literal("false")
        case UInt8(ascii: "n"): try literal("null")
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): skipNumber()
        default: throw .syntax
        }
    }

    /// A string, decoded.
    mutating func string() throws(Failure) -> String {
        let (bounds, isVerbatim) = try stringBounds()
        let content = UnsafeRawBufferPointer(rebasing: bytes[bounds])
        return isVerbatim ? String(decoding: content, as: UTF8.self) : try Self.decode(content)
    }

    // MARK: Structure

    /// `{`, then `member` for each member until `}`.
    private mutating func members(_ member: (inout JSONScanner) throws(Failure) -> Void) throws(Failure) {
        try open(UInt8(ascii: "{"))
        try elements(closedBy: UInt8(ascii: "}")) { scanner throws(Failure) in
            guard try scanner.next() == UInt8(ascii: "\"") else { throw .syntax }
            try member(&scanner)
        }
    }

    /// Comma-separated elements after an opening bracket, up to `closing`; one trailing comma allowed.
    private mutating func elements(closedBy closing: UInt8, _ element: (inout JSONScanner) throws(Failure) -> Void) throws(Failure) {
        if try next() == closing { return close() }
        while true {
            try element(&self)
            switch try next() {
            case UInt8(ascii: ","):
                position += 1
                if try next() == closing { return close() }
            case closing:
                return close()
            default:
                throw .syntax
            }
        }
    }

    private mutating func open(_ bracket: UInt8) throws(Failure) {
        guard try next() == bracket else { throw .mismatch }
        guard depth < Self.maximumDepth else { throw .syntax }
        position += 1
        depth += 1
    }

    private mutating func close() {
        position += 1
        depth -= 1
    }

    private mutating func colon() throws(Failure) {
        guard try next() == UInt8(ascii: ":") else { throw .syntax }
        position += 1
    }

    /// The bytes between a string's quotes, consumed: up to the first quote no backslash escapes;
    /// `\u` must be followed by four bytes that are not a quote. Nothing else is checked here.
    /// `isVerbatim`: the bytes are their own decoding — ASCII, no backslash, no control character
    /// below 0x20 — so the string is made without escapes or UTF-8 validation (the generic
    /// `String(validating:)` cost more than the scan).
    private mutating func stringBounds() throws(Failure) -> (Range<Int>, isVerbatim: Bool) {
        guard try next() == UInt8(ascii: "\"") else { throw .mismatch }
        position += 1
        let start = position
        var isVerbatim = true
        while position < bytes.count {
            let byte = bytes[position]
            switch byte {
            case UInt8(ascii: "\""):
                position += 1
                return (start..<position - 1, isVerbatim)
            case UInt8(ascii: "\\"):
                isVerbatim = false
                guard position + 1 < bytes.count else { throw .syntax }
                position += 2
                if bytes[position - 1] == UInt8(ascii: "u") {
                    guard bytes.count - position >= 4, !bytes[position..<position + 4].contains(UInt8(ascii: "\"")) else { throw .syntax }
                    position += 4
                }
            default:
                if byte < 0x20 || byte >= 0x80 { isVerbatim = false }
                position += 1
            }
        }
        throw .syntax
    }

    /// A number's bytes: a sign or digit, then digits, signs, points and exponents, unchecked.
    private mutating func skipNumber() {
        position += 1
        while position < bytes.count {
            switch bytes[position] {
            case UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "e"), UInt8(ascii: "E"):
                position += 1
            default:
                return
            }
        }
    }

    private mutating func literal(_ word: StaticString) throws(Failure) {
        let length = word.utf8CodeUnitCount
        guard bytes.count - position >= length,
            UnsafeRawBufferPointer(rebasing: bytes[position..<position + length]).elementsEqual(UnsafeRawBufferPointer(start: word.utf8Start, count: length))
        else { throw .syntax }
        position += length
    }

    /// The next byte that is not whitespace, not consumed; the document must go on.
    private mutating func next() throws(Failure) -> UInt8 {
        skipWhitespace()
        guard position < bytes.count else { throw .syntax }
        return bytes[position]
    }

    private mutating func skipWhitespace() {
        while position < bytes.count {
            switch bytes[position] {
            case 0x20, 0x09, 0x0A, 0x0D: position += 1
            default: return
            }
        }
    }

    // MARK: Decoding a string

    /// A string's content with its escapes resolved.
    private static func decode(_ content: UnsafeRawBufferPointer) throws(Failure) -> String {
        guard content.contains(where: { $0 == UInt8(ascii: "\\") || $0 < 0x20 }) else { return try text(content) }
        var utf8: [UInt8] = []
        utf8.reserveCapacity(content.count)
        var index = 0
        while index < content.count {
            let byte = content[index]
            index += 1
            switch byte {
            case UInt8(ascii: "\\"): try unescape(content, at: &index, into: &utf8)
            case ..<0x20: throw .mismatch
            default: utf8.append(byte)
            }
        }
        return try text(utf8)
    }

    /// The escape after a backslash (its bounds checked when the string was delimited).
    private static func unescape(_ content: UnsafeRawBufferPointer, at index: inout Int, into utf8: inout [UInt8]) throws(Failure) {
        let byte = content[index]
        index += 1
        switch byte {
        case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): utf8.append(byte)
        case UInt8(ascii: "b"): utf8.append(0x08)
        case UInt8(ascii: "f"): utf8.append(0x0C)
        case UInt8(ascii: "n"): utf8.append(0x0A)
        case UInt8(ascii: "r"): utf8.append(0x0D)
        case UInt8(ascii: "t"): utf8.append(0x09)
        case UInt8(ascii: "u"):
            var value = try hexQuad(content, at: &index)
            if UTF16.isLeadSurrogate(UInt16(value)) {
                guard content.count - index >= 6, content[index] == UInt8(ascii: "\\"), content[index + 1] == UInt8(ascii: "u") else { throw .mismatch }
                index += 2
                let trail = try hexQuad(content, at: &index)
                guard UTF16.isTrailSurrogate(UInt16(trail)) else { throw .mismatch }
                value = 0x10000 + (value - 0xD800) << 10 + (trail - 0xDC00)
            }
            guard let scalar = Unicode.Scalar(value) else { throw .mismatch }
            utf8.append(contentsOf: UTF8.encode(scalar)!)
        default:
            throw .mismatch
        }
    }

    private static func hexQuad(_ content: UnsafeRawBufferPointer, at index: inout Int) throws(Failure) -> UInt32 {
        var value: UInt32 = 0
        for byte in content[index..<index + 4] {
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw .mismatch
            }
            value = value << 4 | UInt32(digit)
        }
        index += 4
        return value
    }

    /// The bytes as a string; invalid UTF-8 does not decode.
    private static func text(_ utf8: some Sequence<UInt8>) throws(Failure) -> String {
        guard let text = String(validating: utf8, as: UTF8.self) else { throw .mismatch }
        return text
    }
}
