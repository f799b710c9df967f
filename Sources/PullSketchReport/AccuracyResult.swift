public import Foundation
import PullSketchCore

/// Every key compared with the truth, and the summary an operator reads.
public struct AccuracyResult: Sendable {
    public struct Summary: Codable, Sendable, Equatable {
        public var workload: String
        public var pulls: Int
        public var nodes: Int
        public var width: Int
        public var depth: Int
        public var hotCapacity: Int
        public var mergeIntervalMilliseconds: Int64
        /// Keys pulled at least once (tags and manifests).
        public var keysPulled: Int
        public var keysExactPercent: Double
        public var overcountMean: Double
        public var overcountP99: UInt64
        public var overcountMax: UInt64
        /// Keys whose count is below the truth: must be 0.
        public var undercounts: Int
        /// Share of keys pulled or stored with pulls whose truth is in [count − error, count].
        public var boundCoverage: Double
        /// Keys pulled or stored with pulls whose truth is outside [count − error, count].
        public var keysOutsideBound: Int
        public var oneMinusDelta: Double
        public var lastPulledEarlierThanTruth: Int
        public var lastUsedEarlierThanTruth: Int
        /// Catalog keys never pulled that show pulls.
        public var falseRecentlyPulledRate: Double
        public var keysNeverPulled: Int
        /// Keys used but never pulled (a HEAD by digest, a HEAD by tag's manifest) that show pulls.
        public var usedNeverPulledShowingPulls: Int
        public var keysUsedNeverPulled: Int
        public var peakNodeMemoryBytes: Int
        public var redisMergeCommands: Int
        public var redisPayloadBytes: Int
        public var sealedBatches: Int
        public var postgresRowsWritten: Int
    }

    public let summary: Summary
    private let truth: KeyTable
    private let stored: StoredTable

    private let keys: KeySpace

    init(run: AccuracyRun, pulls: Int, keys: KeySpace, truth: KeyTable, stored: StoredTable, traffic: Traffic) {
        self.truth = truth
        self.stored = stored
        self.keys = keys
        var pulled = 0, exact = 0, judged = 0, covered = 0, undercounts = 0, latePulled = 0, lateUsed = 0
        var neverPulled = 0, falseRecent = 0, usedOnly = 0, usedOnlyShowingPulls = 0
        var overcounts: [UInt64] = []
        for kind in 0..<2 {
            for key in truth.pulls[kind].indices {
                let real = truth.pulls[kind][key], count = stored.count[kind][key], error = stored.error[kind][key]
                if real > 0 || count > 0 {
                    judged += 1
                    if count >= real && count - min(count, error) <= real { covered += 1 }
                }
                if stored.times.lastPulled[kind][key] < truth.times.lastPulled[kind][key] { latePulled += 1 }
                if stored.times.lastUsed[kind][key] < truth.times.lastUsed[kind][key] { lateUsed += 1 }
                guard real > 0 else {
                    neverPulled += 1
                    if count > 0 { falseRecent += 1 }
                    if truth.times.lastUsed[kind][key] != .min {
                        usedOnly += 1
                        if count > 0 { usedOnlyShowingPulls += 1 }
                    }
                    continue
                }
                pulled += 1
                if count < real { undercounts += 1 }
                if count == real && error == 0 { exact += 1 }
                overcounts.append(count > real ? count - real : 0)
            }
        }
        overcounts.sort()
        let parameters = run.tracker.sketch
        summary = Summary(
            workload: run.workload.summary, pulls: pulls, nodes: run.nodes, width: parameters.width, depth: parameters.depth,
            hotCapacity: run.tracker.hotCapacity, mergeIntervalMilliseconds: run.mergeIntervalMilliseconds,
            keysPulled: pulled, keysExactPercent: pulled == 0 ? 100 : 100 * Double(exact) / Double(pulled),
            overcountMean: overcounts.isEmpty ? 0 : Double(overcounts.reduce(0, +)) / Double(overcounts.count),
            overcountP99: overcounts.isEmpty ? 0 : overcounts[(overcounts.count - 1) * 99 / 100], overcountMax: overcounts.last ?? 0,
            undercounts: undercounts, boundCoverage: judged == 0 ? 1 : Double(covered) / Double(judged), keysOutsideBound: judged - covered,
            oneMinusDelta: 1 - parameters.delta, lastPulledEarlierThanTruth: latePulled, lastUsedEarlierThanTruth: lateUsed,
            falseRecentlyPulledRate: neverPulled == 0 ? 0 : Double(falseRecent) / Double(neverPulled), keysNeverPulled: neverPulled,
            usedNeverPulledShowingPulls: usedOnlyShowingPulls, keysUsedNeverPulled: usedOnly,
            peakNodeMemoryBytes: traffic.peakNodeMemory, redisMergeCommands: traffic.mergeCommands, redisPayloadBytes: traffic.payloadBytes,
            sealedBatches: traffic.batches, postgresRowsWritten: traffic.rowsWritten
        )
    }

    /// The summary as a Markdown table.
    public func markdown() -> String {
        let s = summary
        func percent(_ value: Double) -> String { String(format: "%.4f %%", value * 100) }
        return """
            | accuracy run | |
            |---|---|
            | workload | \(s.workload), \(s.pulls) pulls |
            | nodes, sketch, hot capacity, merge interval | \(s.nodes), \(s.width)×\(s.depth), \(s.hotCapacity), \(s.mergeIntervalMilliseconds) ms |
            | keys pulled (tags and manifests) | \(s.keysPulled) |
            | keys exact | \(String(format: "%.2f %%", s.keysExactPercent)) |
            | over-count mean / p99 / max | \(String(format: "%.3f", s.overcountMean)) / \(s.overcountP99) / \(s.overcountMax) |
            | under-counts (must be 0) | \(s.undercounts) |
            | bound coverage (truth in [count − error, count]) | \(percent(s.boundCoverage)), \(s.keysOutsideBound) keys outside (1 − δ = \(percent(s.oneMinusDelta))) |
            | last pulled / last used earlier than the truth | \(s.lastPulledEarlierThanTruth) / \(s.lastUsedEarlierThanTruth) |
            | false "recently pulled" (of \(s.keysNeverPulled) never-pulled catalog keys) | \(percent(s.falseRecentlyPulledRate)) |
            | used but never pulled, shown with pulls | \(s.usedNeverPulledShowingPulls) of \(s.keysUsedNeverPulled) |
            | peak memory per node | \(String(format: "%.1f MB", Double(s.peakNodeMemoryBytes) / 1e6)) |
            | Redis merge commands / payload | \(s.redisMergeCommands) / \(String(format: "%.1f MB", Double(s.redisPayloadBytes) / 1e6)) |
            | sealed batches / PostgreSQL rows written | \(s.sealedBatches) / \(s.postgresRowsWritten) |
            """
    }

    /// Writes `summary.json`, `summary.md` and `keys.csv`: one row per key used or stored, named by
    /// kind, dense key number, repository and reference (OCI names hold no commas).
    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(summary).write(to: directory.appendingPathComponent("summary.json"))
        try Data((markdown() + "\n").utf8).write(to: directory.appendingPathComponent("summary.md"))
        func milliseconds(_ value: Int64) -> String { value == .min ? "" : String(value) }
        var csv = "kind,key,repository,reference,truth,count,error,truth_last_pulled_ms,last_pulled_ms,truth_last_used_ms,last_used_ms\n"
        for kind in KeyKind.allCases {
            let slot = kind.slot
            keys.forEachKey(kind) { key, repository, reference in
                guard truth.times.lastUsed[slot][key] != .min || stored.times.lastUsed[slot][key] != .min || stored.count[slot][key] > 0 else { return }
                let fields = [
                    kind == .tag ? "tag" : "manifest", String(key), keys.repositoryName(repository), reference,
                    String(truth.pulls[slot][key]), String(stored.count[slot][key]), String(stored.error[slot][key]),
                    milliseconds(truth.times.lastPulled[slot][key]), milliseconds(stored.times.lastPulled[slot][key]),
                    milliseconds(truth.times.lastUsed[slot][key]), milliseconds(stored.times.lastUsed[slot][key]),
                ]
                csv += fields.joined(separator: ",") + "\n"
            }
        }
        try Data(csv.utf8).write(to: directory.appendingPathComponent("keys.csv"))
    }
}
