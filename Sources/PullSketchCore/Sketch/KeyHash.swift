import CXXHash

/// The 64-bit XXH3 hash that identifies a key everywhere: in the hot table, in the sketch, in the
/// Redis shard choice and in the reconciler's estimates. Part of the sketch's wire contract
/// (`SketchParameters.formatVersion`):
/// `XXH3_64(reference, seed: XXH3_64(repository, seed: sketchSeed &+ kind.rawValue))`.
public struct KeyHash: Hashable, Sendable {
    public let value: UInt64

    public init(value: UInt64) {
        self.value = value
    }

    public init(kind: KeyKind, repository: String, reference: String, seed: UInt64) {
        let repositorySeed = Self.xxh3(repository, seed: seed &+ UInt64(kind.rawValue))
        value = Self.xxh3(reference, seed: repositorySeed)
    }

    /// The hash of a repository name alone, for tables keyed by repository.
    public init(repository: String, seed: UInt64) {
        value = Self.xxh3(repository, seed: seed)
    }

    static func xxh3(_ string: String, seed: UInt64) -> UInt64 {
        if let hash = string.utf8.withContiguousStorageIfAvailable({ XXH3_64bits_withSeed($0.baseAddress, $0.count, seed) }) {
            return hash
        }
        return Array(string.utf8).withUnsafeBytes { XXH3_64bits_withSeed($0.baseAddress, $0.count, seed) }
    }
}
