import CXXHash

/// The 64-bit hash that identifies a key everywhere: in the hot table, in the sketch, in the Redis
/// shard choice and in the reconciler's estimates. Part of the sketch's wire contract
/// (`SketchParameters.formatVersion`): with `n(s)` = XXH3-64 of the UTF-8 bytes of `s` (seed 0),
/// the key hash is XXH3-64 of the 16 bytes `n(repository) ‖ n(reference)` (little-endian) with
/// seed `sketchSeed &+ kind.rawValue`. Validated names carry `n` already, so the hot path hashes
/// 16 bytes and never touches a string.
public struct KeyHash: Hashable, Sendable {
    public let value: UInt64

    public init(kind: KeyKind, repository: String, reference: String, seed: UInt64) {
        self.init(kind: kind, repositoryHash: Self.nameHash(repository), referenceHash: Self.nameHash(reference), seed: seed)
    }

    /// The hash of a key from its names' `n` (`nameHash`), for a reader that meets many keys of one
    /// repository and hashes its name once.
    public init(kind: KeyKind, repositoryHash: UInt64, referenceHash: UInt64, seed: UInt64) {
        var names = (repositoryHash.littleEndian, referenceHash.littleEndian)
        value = withUnsafeBytes(of: &names) { pullsketch_xxh3_64bits_16_withSeed($0.baseAddress, seed &+ UInt64(kind.rawValue)) }
    }

    /// The Redis shard of the key, in `0..<count`: the high half of the hash remixed, reduced by
    /// multiply-shift. Every node and the reconciler agree on it (part of the wire contract).
    public func shard(count: Int) -> Int {
        Self.reduce(value &* 0x9E37_79B9_7F4A_7C15, count)
    }

    /// A lock stripe within the key's shard, from bits independent of the shard choice.
    func stripe(count: Int) -> Int {
        Self.reduce(value &* 0xC2B2_AE3D_27D4_EB4F, count)
    }

    @inline(__always)
    private static func reduce(_ mixed: UInt64, _ count: Int) -> Int {
        Int(((mixed >> 32) &* UInt64(count)) >> 32)
    }

    /// `n(s)`: XXH3-64 of a string's UTF-8 bytes with seed 0.
    public static func nameHash(_ string: String) -> UInt64 {
        if let hash = string.utf8.withContiguousStorageIfAvailable({ nameHash(utf8: UnsafeRawBufferPointer($0)) }) {
            return hash
        }
        return Array(string.utf8).withUnsafeBytes { nameHash(utf8: $0) }
    }

    /// `n(s)` of a name given as its UTF-8 bytes, so a name read in place needs no `String`.
    public static func nameHash(utf8: UnsafeRawBufferPointer) -> UInt64 {
        pullsketch_xxh3_64bits(utf8.baseAddress, utf8.count)
    }
}
