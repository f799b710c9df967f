public import PullSketchCore
import Foundation

/// Generated pulls, fixed by a seed. Keys are tags `report/repo<k mod R>:t<k>`, each pointing at
/// its own manifest; every pull is a GET by tag, so it updates the tag and the manifest.
public struct SyntheticWorkload: Sendable {
    public enum Shape: String, Sendable, CaseIterable {
        /// Zipf with exponent s over `keys` keys.
        case zipf
        /// Every pull a key never pulled before.
        case flood
        /// Alternately a Zipf pull and a flood pull.
        case mix
    }

    public let shape: Shape
    public let pulls: Int
    /// Keys drawn by the Zipf part; flood keys come after them.
    public let keys: Int
    public let repositories: Int
    public let exponent: Double
    /// Simulated arrival rate.
    public let pullsPerSecond: Int
    public let seed: UInt64

    public init(shape: Shape, pulls: Int, keys: Int, repositories: Int, exponent: Double = 1, pullsPerSecond: Int = 5_000, seed: UInt64) {
        self.shape = shape
        self.pulls = pulls
        self.keys = keys
        self.repositories = repositories
        self.exponent = exponent
        self.pullsPerSecond = pullsPerSecond
        self.seed = seed
    }

    /// How many key indices the catalog holds: every key the workload can pull.
    public var catalogKeys: Int {
        switch shape {
        case .zipf: keys
        case .flood: pulls
        case .mix: keys + (pulls + 1) / 2
        }
    }

    public static let start = Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)

    /// Calls `body(index, pull)` for every pull, in order: a GET by tag of key k's tag, serving its manifest.
    func forEachPull(_ body: (Int, PullEvent) throws -> Void) throws {
        let zipf = shape == .flood ? nil : ZipfSampler(keys: keys, exponent: exponent)
        let repositoryNames = try (0..<repositories).map { try RepositoryName(Self.repositoryName($0)) }
        var state = seed
        var floodNext = shape == .mix ? keys : 0
        for index in 0..<pulls {
            let time = Timestamp(millisecondsSinceEpoch: Self.start.millisecondsSinceEpoch + Int64(index) * 1_000 / Int64(pullsPerSecond))
            let useZipf = shape == .zipf || (shape == .mix && index % 2 == 0)
            let key: Int
            if useZipf, let zipf {
                state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
                key = zipf.sample(Double(state >> 11) / Double(1 << 53))
            } else {
                key = floodNext
                floodNext += 1
            }
            try body(index, PullEvent(
                repository: repositoryNames[repository(of: key)], reference: .tag(try TagName(Self.tagName(key))),
                method: .get, servedDigest: try Digest(Self.digest(key)), time: time
            ))
        }
    }

    var summary: String {
        "\(shape.rawValue) s=\(exponent), \(keys) keys, \(repositories) repositories, seed \(seed)"
    }

    func repository(of key: Int) -> Int { key % repositories }
    static let repositoryPrefix = "report/repo"
    static func repositoryName(_ index: Int) -> String { repositoryPrefix + String(index) }
    static func tagName(_ key: Int) -> String { "t\(key)" }
    /// A sha256 digest whose last 16 hex digits are the key, so it maps back to the key.
    static func digest(_ key: Int) -> String {
        let hex = String(key, radix: 16)
        return "sha256:" + String(repeating: "e", count: 48) + String(repeating: "0", count: 16 - hex.count) + hex
    }

    static func key(ofDigest digest: String) -> Int? { Int(digest.suffix(16), radix: 16) }
    static func key(ofTag tag: String) -> Int? { tag.hasPrefix("t") ? Int(tag.dropFirst()) : nil }
}

/// Inverse-CDF sampling of ranks 0..<keys with probability ∝ 1/(rank+1)^s.
struct ZipfSampler {
    private let cumulative: [Double]

    init(keys: Int, exponent: Double) {
        var total = 0.0
        cumulative = (1...max(1, keys)).map { rank in
            total += 1 / pow(Double(rank), exponent)
            return total
        }
    }

    /// The rank for a uniform `u` in [0, 1).
    func sample(_ u: Double) -> Int {
        let target = u * cumulative[cumulative.count - 1]
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < target { low = middle + 1 } else { high = middle }
        }
        return low
    }
}
