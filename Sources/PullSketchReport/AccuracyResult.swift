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
        /// Share of pulled keys with truth in [count − error, count].
        public var boundCoverage: Double
        public var oneMinusDelta: Double
        public var lastPulledEarlierThanTruth: Int
        /// Catalog keys never pulled that show pulls.
        public var falseRecentlyPulledRate: Double
        public var keysNeverPulled: Int
        public var peakNodeMemoryBytes: Int
        public var redisMergeCommands: Int
        public var redisPayloadBytes: Int
        public var sealedBatches: Int
        public var postgresRowsWritten: Int
    }

    public let summary: Summary
    private let truth: KeyTable
    private let stored: StoredTable

    init(run: AccuracyRun, pulls: Int, truth: KeyTable, stored: StoredTable, traffic: Traffic) {
        self.truth = truth
        self.stored = stored
        var pulled = 0, exact = 0, covered = 0, undercounts = 0, lateViolations = 0, neverPulled = 0, falseRecent = 0
        var overcounts: [UInt64] = []
        for kind in 0..<2 {
            for key in truth.pulls[kind].indices {
                let real = truth.pulls[kind][key], count = stored.count[kind][key], error = stored.error[kind][key]
                guard real > 0 else {
                    neverPulled += 1
                    if count > 0 { falseRecent += 1 }
                    continue
                }
                pulled += 1
                if count < real { undercounts += 1 }
                if count == real && error == 0 { exact += 1 }
                if count >= real && count - min(count, error) <= real { covered += 1 }
                if stored.last[kind][key] < truth.last[kind][key] { lateViolations += 1 }
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
            undercounts: undercounts, boundCoverage: pulled == 0 ? 1 : Double(covered) / Double(pulled), oneMinusDelta: 1 - parameters.delta,
            lastPulledEarlierThanTruth: lateViolations,
            falseRecentlyPulledRate: neverPulled == 0 ? 0 : Double(falseRecent) / Double(neverPulled), keysNeverPulled: neverPulled,
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
            | bound coverage (truth in [count − error, count]) | \(percent(s.boundCoverage)) (1 − δ = \(percent(s.oneMinusDelta))) |
            | last pulled earlier than the truth | \(s.lastPulledEarlierThanTruth) |
            | false "recently pulled" (of \(s.keysNeverPulled) never-pulled catalog keys) | \(percent(s.falseRecentlyPulledRate)) |
            | peak memory per node | \(String(format: "%.1f MB", Double(s.peakNodeMemoryBytes) / 1e6)) |
            | Redis merge commands / payload | \(s.redisMergeCommands) / \(String(format: "%.1f MB", Double(s.redisPayloadBytes) / 1e6)) |
            | sealed batches / PostgreSQL rows written | \(s.sealedBatches) / \(s.postgresRowsWritten) |
            """
    }

    /// Writes `summary.json`, `summary.md` and `keys.csv` (one row per pulled or estimated key).
    public func write(to directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try encoder.encode(summary).write(to: directory.appendingPathComponent("summary.json"))
        try Data((markdown() + "\n").utf8).write(to: directory.appendingPathComponent("summary.md"))
        var csv = "kind,key,truth,count,error,truth_last_ms,last_ms\n"
        for kind in 0..<2 {
            for key in truth.pulls[kind].indices where truth.pulls[kind][key] > 0 || stored.count[kind][key] > 0 {
                let last = stored.last[kind][key] == .min ? "" : String(stored.last[kind][key])
                let truthLast = truth.last[kind][key] == .min ? "" : String(truth.last[kind][key])
                csv += "\(kind == 0 ? "tag" : "manifest"),\(key),\(truth.pulls[kind][key]),\(stored.count[kind][key]),\(stored.error[kind][key]),\(truthLast),\(last)\n"
            }
        }
        try Data(csv.utf8).write(to: directory.appendingPathComponent("keys.csv"))
    }
}
