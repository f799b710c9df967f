/// A repository name that matches the OCI distribution grammar: components
/// `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*` joined by `/`, at most 255 bytes.
public struct RepositoryName: Hashable, Sendable, CustomStringConvertible {
    /// The longest name accepted; distribution refuses longer ones too.
    public static let maximumLength = 255

    public let value: String
    /// XXH3-64 of the name's bytes, computed once at validation; keys hash from it (`KeyHash`).
    let nameHash: UInt64

    public init(_ value: String) throws(ValidationError) {
        guard !value.isEmpty else { throw ValidationError(.repository, "must not be empty") }
        guard value.utf8.count <= Self.maximumLength else {
            throw ValidationError(.repository, "longer than \(Self.maximumLength) bytes")
        }
        for component in value.split(separator: "/", omittingEmptySubsequences: false) {
            guard !component.isEmpty else {
                throw ValidationError(.repository, "empty path component in '\(value)'")
            }
            guard ASCIIGrammar.isSeparatedLowerAlphanumeric(component.utf8, isSeparatorRun: Self.isSeparator) else {
                throw ValidationError(
                    .repository,
                    "component '\(component)' must be lowercase letters and digits joined by '.', '_', '__' or '-'"
                )
            }
        }
        self.value = value
        nameHash = KeyHash.xxh3(value)
    }

    private static func isSeparator(_ run: [UInt8]) -> Bool {
        switch run {
        case [UInt8(ascii: ".")], [UInt8(ascii: "_")], [UInt8(ascii: "_"), UInt8(ascii: "_")]: true
        default: run.allSatisfy { $0 == UInt8(ascii: "-") }
        }
    }

    public var description: String { value }
}

extension RepositoryName {
    /// For placeholders and names read back from PullSketch's own stores, already validated.
    init(unchecked value: String) {
        self.value = value
        nameHash = KeyHash.xxh3(value)
    }
}

extension String {
    /// Heap bytes of the string's storage: none for small strings, which live inline.
    var heapByteCount: Int {
        let count = utf8.count
        return count <= 15 ? 0 : 32 + count
    }
}
