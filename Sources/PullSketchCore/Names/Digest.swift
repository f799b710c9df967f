/// A content digest `algorithm:encoded` per the OCI distribution grammar. `sha256` and `sha512`
/// digests must have their exact lowercase-hex length; other algorithms are accepted by grammar.
public struct Digest: Hashable, Sendable, CustomStringConvertible {
    /// The longest digest accepted, so that memory per tracked key stays bounded.
    public static let maximumLength = 255

    public let value: String
    /// XXH3-64 of the name's bytes, computed once at validation; keys hash from it (`KeyHash`).
    let nameHash: UInt64

    public init(_ value: String) throws(ValidationError) {
        if let reason = ASCIIGrammar.problem(in: value, Self.problem) {
            throw ValidationError(.digest, reason)
        }
        self.value = value
        nameHash = KeyHash.nameHash(value)
    }

    private static func problem(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        if isSHA256(bytes) { return nil }
        guard bytes.count <= maximumLength else { return "longer than \(maximumLength) bytes" }
        guard let colon = bytes.firstIndex(of: UInt8(ascii: ":")) else { return "must be 'algorithm:encoded'" }
        let algorithm = bytes[..<colon]
        let encoded = bytes[(colon + 1)...]
        guard ASCIIGrammar.isSeparatedLowerAlphanumeric(algorithm, isSeparator: isAlgorithmSeparator) else {
            return "algorithm '\(String(decoding: algorithm, as: UTF8.self))' is not valid"
        }
        guard !encoded.isEmpty, encoded.allSatisfy(isEncodedByte) else {
            return "encoded part must be letters, digits, '=', '_' or '-'"
        }
        if let length = hexLength(of: algorithm) {
            guard encoded.count == length, encoded.allSatisfy(ASCIIGrammar.isLowerHex) else {
                return "\(String(decoding: algorithm, as: UTF8.self)) needs \(length) lowercase hex characters"
            }
        }
        return nil
    }

    /// `sha256:` and 64 lowercase hex characters, what nearly every digest is: accepted in one pass.
    /// The grammar accepts everything this accepts; anything else is left to it.
    private static func isSHA256(_ bytes: UnsafeBufferPointer<UInt8>) -> Bool {
        bytes.count == 71 && equals(bytes[..<7], "sha256:") && bytes[7...].allSatisfy(ASCIIGrammar.isLowerHex)
    }

    /// The exact encoded length of the registered algorithms (OCI image spec).
    private static func hexLength(of algorithm: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
        if equals(algorithm, "sha256") { return 64 }
        if equals(algorithm, "sha512") { return 128 }
        return nil
    }

    /// Compared as bytes: `elementsEqual` against a `String`'s UTF-8 view was a tenth of validating.
    private static func equals(_ bytes: Slice<UnsafeBufferPointer<UInt8>>, _ text: StaticString) -> Bool {
        text.withUTF8Buffer { bytes.elementsEqual($0) }
    }

    /// One of `+`, `.`, `_`, `-`.
    private static func isAlgorithmSeparator(_ byte: UInt8, _ length: Int) -> Bool {
        length == 1
            && (byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: "-"))
    }

    private static func isEncodedByte(_ byte: UInt8) -> Bool {
        ASCIIGrammar.isAlphanumeric(byte) || byte == UInt8(ascii: "=") || byte == UInt8(ascii: "_")
            || byte == UInt8(ascii: "-")
    }

    public var description: String { value }
}
