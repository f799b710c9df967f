import Foundation

/// The shape of a count-min sketch. Two sketches merge only when all four fields are equal: they
/// are a versioned wire contract between trackers, Redis and the reconciler.
public struct SketchParameters: Hashable, Sendable, CustomStringConvertible {
    /// The version of the wire contract: the hashing and indexing scheme (`KeyHash`,
    /// `CountMinSketch`) and what a window carries. Version 2: the tail sketch holds pulls under
    /// the counting rule, a `UsageFilter` travels with it, and every key has a last-used time.
    /// Version 3: merges name the sequence the node last saw acknowledged, and batches record the
    /// node windows they hold. Version 4: windows name their tail keys and count the pulls of those
    /// they could not name. Version 5: windows count, per repository, the uses of tail keys they
    /// could not name. Version 6: the usage filter marks only the tail keys a window does not name.
    public static let currentFormatVersion: UInt32 = 6

    /// Counters per row, w. Default 16,384: ε ≈ 1.7·10⁻⁴.
    public var width: Int
    /// Rows, d. Default 5: δ ≈ 0.7 %.
    public var depth: Int
    /// Seed of the key hash. Default 0x5075_6c6c_536b_7463 ("PullSktc").
    public var seed: UInt64
    public var formatVersion: UInt32

    public init(
        width: Int = 16_384,
        depth: Int = 5,
        seed: UInt64 = 0x5075_6c6c_536b_7463,
        formatVersion: UInt32 = SketchParameters.currentFormatVersion
    ) {
        precondition(width > 0 && width <= Int(UInt32.max), "sketch width must be in 1...2^32-1")
        precondition(depth > 0 && depth <= 32, "sketch depth must be in 1...32")
        self.width = width
        self.depth = depth
        self.seed = seed
        self.formatVersion = formatVersion
    }

    /// The shapes a deployment takes: Redis's `BITFIELD` addresses at most 2³² bits, so a sketch
    /// holds at most 2²⁷ counters of 32 bits.
    public static let widths = 1...(1 << 26)
    public static let depths = 1...32
    public static let largestCounterCount = 1 << 27

    /// The smallest sketch with error at most `epsilon`·N with probability at least 1 − `delta`:
    /// w = ⌈e/ε⌉, d = ⌈ln 1/δ⌉; nil when ε or δ is outside (0, 1) or that sketch is larger than
    /// any deployment takes (`widths`, `depths`, `largestCounterCount`).
    public init?(epsilon: Double, delta: Double, seed: UInt64 = 0x5075_6c6c_536b_7463) {
        guard epsilon > 0, epsilon < 1, delta > 0, delta < 1 else { return nil }
        guard let width = Int(exactly: (M_E / epsilon).rounded(.up)), let depth = Int(exactly: log(1 / delta).rounded(.up)),
            Self.isDeployable(width: width, depth: depth)
        else { return nil }
        self.init(width: width, depth: depth, seed: seed)
    }

    /// Whether a deployment takes a sketch of this shape (`widths`, `depths`, `largestCounterCount`).
    public static func isDeployable(width: Int, depth: Int) -> Bool {
        widths.contains(width) && depths.contains(depth) && width * depth <= largestCounterCount
    }

    /// ε = e/w: an estimate exceeds the truth by at most ε·N (N = mass inserted) ...
    public var epsilon: Double { M_E / Double(width) }
    /// ... except with probability δ = e^−d.
    public var delta: Double { exp(-Double(depth)) }

    /// The per-batch error bound ⌈ε·N⌉ for a tail mass N.
    public func errorBound(tailMass: UInt64) -> UInt64 {
        guard tailMass > 0 else { return 0 }
        return UInt64((epsilon * Double(tailMass)).rounded(.up))
    }

    /// Bytes of one sketch's counters.
    public var byteCount: Int { width * depth * MemoryLayout<UInt32>.stride }

    /// A compact text form, stored next to sketches in Redis and compared on every merge.
    public var fingerprint: String { "v\(formatVersion):w\(width):d\(depth):s\(seed)" }

    /// Parses a `fingerprint`; nil when the text is not one.
    public init?(fingerprint: String) {
        let fields = fingerprint.split(separator: ":")
        guard fields.count == 4,
            fields[0].first == "v", let version = UInt32(fields[0].dropFirst()),
            fields[1].first == "w", let width = Int(fields[1].dropFirst()), width > 0, width <= Int(UInt32.max),
            fields[2].first == "d", let depth = Int(fields[2].dropFirst()), depth > 0, depth <= 32,
            fields[3].first == "s", let seed = UInt64(fields[3].dropFirst())
        else { return nil }
        self.init(width: width, depth: depth, seed: seed, formatVersion: version)
    }

    public var description: String { fingerprint }
}
