/// A content digest `algorithm:encoded` per the OCI distribution grammar. `sha256` and `sha512`
/// digests must have their exact lowercase-hex length; other algorithms are accepted by grammar.
public struct Digest: Hashable, Sendable, CustomStringConvertible {
    /// The longest digest accepted, so that memory per tracked key stays bounded.
    public static let maximumLength = 255

    public let value: String
    /// XXH3-64 of the name's bytes, computed once at validation; keys hash from it (`KeyHash`).
    let nameHash: UInt64

    public init(_ value: String) throws(ValidationError) {
        guard value.utf8.count <= Self.maximumLength else {
            throw ValidationError(.digest, "longer than \(Self.maximumLength) bytes")
        }
        let parts = value.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
        guard parts.count == 2 else { throw ValidationError(.digest, "must be 'algorithm:encoded'") }
        let (algorithm, encoded) = (parts[0], parts[1])
        guard ASCIIGrammar.isSeparatedLowerAlphanumeric(algorithm.utf8, isSeparatorRun: Self.isAlgorithmSeparator)
        else {
            throw ValidationError(.digest, "algorithm '\(algorithm)' is not valid")
        }
        guard !encoded.isEmpty, encoded.utf8.allSatisfy(Self.isEncodedByte) else {
            throw ValidationError(.digest, "encoded part must be letters, digits, '=', '_' or '-'")
        }
        if let length = Self.hexLength[String(algorithm)] {
            guard encoded.utf8.count == length, encoded.utf8.allSatisfy(ASCIIGrammar.isLowerHex) else {
                throw ValidationError(.digest, "\(algorithm) needs \(length) lowercase hex characters")
            }
        }
        self.value = value
        nameHash = KeyHash.xxh3(value)
    }

    private static let hexLength = ["sha256": 64, "sha512": 128]

    private static func isAlgorithmSeparator(_ run: [UInt8]) -> Bool {
        run.count == 1 && [UInt8(ascii: "+"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-")].contains(run[0])
    }

    private static func isEncodedByte(_ byte: UInt8) -> Bool {
        ASCIIGrammar.isAlphanumeric(byte) || byte == UInt8(ascii: "=") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "-")
    }

    public var description: String { value }
}
