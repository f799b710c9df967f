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
        nameHash = KeyHash.xxh3(value)
    }

    private static func problem(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
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

    /// The exact encoded length of the registered algorithms (OCI image spec).
    private static func hexLength(of algorithm: Slice<UnsafeBufferPointer<UInt8>>) -> Int? {
        if algorithm.elementsEqual("sha256".utf8) { return 64 }
        if algorithm.elementsEqual("sha512".utf8) { return 128 }
        return nil
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
