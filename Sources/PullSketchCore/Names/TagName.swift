/// A tag that matches the OCI distribution grammar `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`.
public struct TagName: Hashable, Sendable, CustomStringConvertible {
    public static let maximumLength = 128

    public let value: String
    /// XXH3-64 of the name's bytes, computed once at validation; keys hash from it (`KeyHash`).
    let nameHash: UInt64

    public init(_ value: String) throws(ValidationError) {
        let bytes = value.utf8
        guard let first = bytes.first else { throw ValidationError(.tag, "must not be empty") }
        guard bytes.count <= Self.maximumLength else {
            throw ValidationError(.tag, "longer than \(Self.maximumLength) bytes")
        }
        guard ASCIIGrammar.isAlphanumeric(first) || first == UInt8(ascii: "_") else {
            throw ValidationError(.tag, "must start with a letter, digit or '_'")
        }
        guard bytes.allSatisfy(Self.isTagByte) else {
            throw ValidationError(.tag, "may contain only letters, digits, '.', '_' and '-'")
        }
        self.value = value
        nameHash = KeyHash.xxh3(value)
    }

    private static func isTagByte(_ byte: UInt8) -> Bool {
        ASCIIGrammar.isAlphanumeric(byte) || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "-")
    }

    public var description: String { value }
}
