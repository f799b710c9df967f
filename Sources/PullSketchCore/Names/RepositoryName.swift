/// A repository name that matches the OCI distribution grammar: components
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`, at most 255 bytes.
public struct RepositoryName: Hashable, Sendable, CustomStringConvertible {
    /// The longest name accepted; distribution refuses longer ones too.
    public static let maximumLength = 255

    public let value: String
    /// XXH3-64 of the name's bytes, computed once at validation; keys hash from it (`KeyHash`).
    let nameHash: UInt64

    public init(_ value: String) throws(ValidationError) {
        if let reason = ASCIIGrammar.problem(in: value, Self.problem) {
            throw ValidationError(.repository, reason)
        }
        self.value = value
        nameHash = KeyHash.nameHash(value)
    }

    private static func problem(_ bytes: UnsafeBufferPointer<UInt8>) -> String? {
        guard !bytes.isEmpty else { return "must not be empty" }
        guard bytes.count <= maximumLength else { return "longer than \(maximumLength) bytes" }
        var start = 0
        while true {
            let end = bytes[start...].firstIndex(of: UInt8(ascii: "/")) ?? bytes.count
            let component = bytes[start..<end]
            guard !component.isEmpty else { return "empty path component" }
            guard ASCIIGrammar.isSeparatedLowerAlphanumeric(component, isSeparator: isSeparator) else {
                return "component '\(String(decoding: component, as: UTF8.self))' must be lowercase letters and digits "
                    + "joined by '.', '_', '__' or '-'"
            }
            guard end < bytes.count else { return nil }
            start = end + 1
        }
    }

    /// `.`, `_`, `__` or any run of `-`.
    private static func isSeparator(_ byte: UInt8, _ length: Int) -> Bool {
        switch byte {
        case UInt8(ascii: "."): length == 1
        case UInt8(ascii: "_"): length <= 2
        case UInt8(ascii: "-"): true
        default: false
        }
    }

    public var description: String { value }
}

extension RepositoryName {
    /// For placeholders and names read back from PullSketch's own stores, already validated.
    init(unchecked value: String) {
        self.value = value
        nameHash = KeyHash.nameHash(value)
    }
}

extension String {
    /// Heap bytes of the string's storage: none for small strings, which live inline.
    var heapByteCount: Int {
        let count = utf8.count
        return count <= 15 ? 0 : 32 + count
    }
}
