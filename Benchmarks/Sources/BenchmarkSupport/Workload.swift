public import PullSketchCore

/// A Zipf(s = 1) stream of pulls over `tags` tags in `repositories` repositories, fixed by its seed,
/// so every benchmark and baseline sees the same events.
public struct Workload: Sendable {
    public let events: [PullEvent]

    public init(tags: Int, repositories: Int, length: Int, method: ManifestRequestMethod, seed: UInt64) {
        let repositoryNames = (0..<repositories).map { try! RepositoryName("bench/repo\($0)") }
        var cumulative: [Double] = []
        var total = 0.0
        for rank in 1...tags {
            total += 1 / Double(rank)
            cumulative.append(total)
        }
        var state = seed
        events = (0..<length).map { _ in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let u = Double(state >> 11) / Double(1 << 53) * total
            var low = 0
            var high = tags - 1
            while low < high {
                let middle = (low + high) / 2
                if cumulative[middle] < u { low = middle + 1 } else { high = middle }
            }
            let hex = String(low, radix: 16)
            return PullEvent(
                repository: repositoryNames[low % repositories],
                reference: .tag(try! TagName("v\(low)")),
                method: method,
                servedDigest: try! Digest("sha256:" + String(repeating: "0", count: 64 - hex.count) + hex),
                time: Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)
            )
        }
    }
}
