import PullSketchCore

/// Builders for valid names and events; they trap on invalid literals, which are test bugs.
enum Fixtures {
    static func repository(_ name: String) -> RepositoryName { try! RepositoryName(name) }
    static func tag(_ name: String) -> TagName { try! TagName(name) }

    /// A valid sha256 digest derived from a number.
    static func digest(_ number: UInt64) -> Digest {
        let hex = String(number, radix: 16)
        return try! Digest("sha256:" + String(repeating: "0", count: 64 - hex.count) + hex)
    }

    static func time(_ milliseconds: Int64) -> Timestamp { Timestamp(millisecondsSinceEpoch: milliseconds) }

    static func enabled(
        hotCapacity: Int = 32_768,
        stripes: Int = 8,
        coreWindows: Int = 1,
        shards: Int = 4,
        tailRepositoriesPerStripe: Int = 1_024,
        tailNames: Int = 32_768,
        sketch: SketchParameters = SketchParameters(),
        rule: CountingRule = .resolutions
    ) -> TrackerConfiguration {
        TrackerConfiguration(
            isEnabled: true,
            countingRule: rule,
            hotCapacity: hotCapacity,
            stripeCount: stripes,
            coreWindowCount: coreWindows,
            shardCount: shards,
            tailRepositoriesPerStripe: tailRepositoriesPerStripe,
            tailNameCapacity: tailNames,
            sketch: sketch
        )
    }
}

/// The exact truth of a workload, key by key, to compare drained windows against.
struct Truth {
    typealias Key = PullKey

    struct Counts: Equatable {
        var fetches: UInt64 = 0
        var checks: UInt64 = 0
        var pulls: UInt64 = 0
        var lastPulled = Timestamp.distantPast
        var lastUsed = Timestamp.distantPast
    }

    private(set) var counts: [Key: Counts] = [:]
    private(set) var pulls: UInt64 = 0

    mutating func record(_ event: PullEvent, rule: CountingRule = .resolutions) {
        for touch in rule.touches(for: event) {
            let key = touch.key
            counts[key, default: Counts()].add(touch.effect, at: event.time)
            pulls += touch.effect.pulls
        }
    }
}

extension Truth.Counts {
    mutating func add(_ effect: KeyEffect, at time: Timestamp) {
        fetches += effect.fetches
        checks += effect.checks
        pulls += effect.pulls
        if effect.pulls > 0 { lastPulled = max(lastPulled, time) }
        lastUsed = max(lastUsed, time)
    }
}

extension Window {
    /// The tail repositories of all shards, summed by repository.
    var tailRepositoryPulls: [String: UInt64] {
        var pulls: [String: UInt64] = [:]
        for tail in shards.flatMap(\.tailRepositories) { pulls[tail.repository.value, default: 0] += tail.pulls }
        return pulls
    }

    var tailRepositoriesOverflowed: Bool { shards.contains(where: \.tailRepositoriesOverflowed) }
    var tailLastPulled: Timestamp { shards.map(\.tailLastPulled).max() ?? .distantPast }

    /// The sum of every shard's tail sketch: an upper bound for every key's tail count.
    var summedSketch: CountMinSketch {
        var sketch = CountMinSketch(parameters: parameters)
        for part in shards { try! sketch.add(cells: part.sketchCells) }
        return sketch
    }
}

/// Drained windows summed key by key (each shard's sketch added into one).
struct DrainedTotals {
    private(set) var exact: [Truth.Key: Truth.Counts] = [:]
    private(set) var tailMass: UInt64 = 0
    private(set) var pulls: UInt64 = 0
    private(set) var sketch: CountMinSketch

    init(parameters: SketchParameters) {
        sketch = CountMinSketch(parameters: parameters)
    }

    mutating func add(_ window: Window) {
        for entry in window.hotEntries {
            let key = entry.key
            var counts = exact[key, default: Truth.Counts()]
            counts.fetches += entry.fetches
            counts.checks += entry.checks
            counts.pulls += entry.pulls
            counts.lastPulled = max(counts.lastPulled, entry.lastPulled)
            counts.lastUsed = max(counts.lastUsed, entry.lastUsed)
            exact[key] = counts
        }
        tailMass += window.tailMass
        pulls += window.pulls
        for part in window.shards {
            try! sketch.add(cells: part.sketchCells)
        }
    }
}
