/// A tag that matches the OCI distribution grammar `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
public struct TagName: Hashable, Sendable, CustomStringConvertible {
    public static let maximumLength = 128

    public let value: String
    /// XXH3-64 of the name's bytes, computed once at validation; keys hash from it (`KeyHash`).
    let nameHash: UInt64

    public init(_ value: String) throws(ValidationError) {
        if let reason = ASCIIGrammar.problem(in: value, Self.problem) {
            throw ValidationError(.tag, reason)
        }
        self.value = value
        nameHash = KeyHash.nameHash(value)
    }

    private static func problem(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard let first = bytes.first else { return "must not be empty" }
        guard bytes.count <= maximumLength else { return "longer than \(maximumLength) bytes" }
        guard ASCIIGrammar.isAlphanumeric(first) || first == UInt8(ascii: "_") else {
            return "must start with a letter, digit or '_'"
        }
        guard bytes.allSatisfy(isTagByte) else { return "may contain only letters, digits, '.', '_' and '-'" }
        return nil
    }

    private static func isTagByte(_ byte: UInt8) -> Bool {
        ASCIIGrammar.isAlphanumeric(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "-")
    }

    public var description: String { value }
}
