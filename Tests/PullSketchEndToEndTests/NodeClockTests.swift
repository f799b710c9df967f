import Foundation
import PullSketchTestSupport
import Testing

/// A node whose host clock is wrong, made so by `scripts/clock-shift.c` preloaded into it: the
/// node dates events by Redis's clock, so what it records and what its dry run decides do not
/// move with its host's clock.
extension EndToEndTests {
    @Test func aNodeWhoseClockIsDaysBehindRecordsTodaysPullsAsTodaysAndOffersNoTagInUse() async throws {
        let days: Int64 = 100
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-clock-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let stack = try Stack(nodeEnvironment: try ClockShift.environment(seconds: -days * 86_400, buildingInto: directory))
        // The health check measures the offset within its first round (every 5 s; the bound is
        // for a loaded machine).
        try await eventually(within: 60) {
            let metrics = try ChildProcess.run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(stack.nodePort)/metrics"])
            let line = metrics.split(separator: "\n").first { $0.hasPrefix("pullsketch_clock_offset_seconds ") }
            return line.flatMap { Double($0.split(separator: " ")[1]) }.map { abs($0 - Double(days * 86_400)) < 60 } ?? false
        }
        let before = Date()
        try stack.push("app", to: "team/app:v1")
        try stack.pull("team/app:v1")
        try await eventually(within: 60) { (try stack.api("team/app/tag/v1/pull_statistics")["tag_pull_count"] as? Int) == 1 }
        let statistics = try stack.api("team/app/tag/v1/pull_statistics")
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let pulled = try #require((statistics["last_tag_pull_date"] as? String).flatMap(formatter.date(from:)))
        #expect(pulled >= before.addingTimeInterval(-60) && pulled <= Date().addingTimeInterval(60), "dated by Redis's clock: \(pulled)")
        let candidates = try stack.api("team/app/prune_candidates?not_pulled_days=90")
        #expect((candidates["candidates"] as? [[String: Any]])?.isEmpty == true, "a tag pulled now is no candidate: \(candidates)")
    }
}
