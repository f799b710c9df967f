import Foundation
import PullSketchCore
import PullSketchRedis
import BenchmarkSupport

/// Redis commands, bytes and time per 1 M pulls: PullSketch's merges next to one EVAL per pull
/// (Quay upstream), against the same redis-server, read from Redis's own INFO counters.
/// Usage: RedisTraffic PORT
@main
struct RedisTraffic {
    static let pulls = 1_000_000
    static let nodes = 4
    /// Pulls per node per window: 5,000 pulls/s over 4 nodes, 2 s merge interval.
    static let windowPulls = 2_500
    /// The baseline is one command per pull whatever the distribution; it runs this many pulls
    /// and is scaled to 1 M (at ~85 µs each, 1 M would take 85 s).
    static let baselinePulls = 100_000

    struct Traffic {
        /// Commands the client sent.
        var sent: Int64 = 0
        /// Commands Redis executed, those inside scripts included.
        var commands: Int64
        var bytesIn: Int64
        var seconds: Double
        var merges: [Double] = []
    }

    static func main() throws {
        guard CommandLine.arguments.count == 2, let port = Int(CommandLine.arguments[1]) else {
            print("usage: RedisTraffic REDIS_PORT")
            exit(2)
        }
        let connection = try RedisConnection(RedisEndpoint(port: port, timeout: 30))
        let workload = Workload(tags: 100_000, repositories: 100, length: pulls, method: .get, seed: 7)

        _ = try connection.command(["FLUSHALL"])
        let sketch = try measure(connection) { traffic in
            let store = BatchStore(connection: try RedisConnection(RedisEndpoint(port: port, timeout: 30)), shardCount: 4)
            let trackers = (0..<nodes).map { _ in PullTracker(configuration: TrackerConfiguration(isEnabled: true)) }
            for start in stride(from: 0, to: pulls, by: windowPulls * nodes) {
                for (offset, event) in workload.events[start..<min(start + windowPulls * nodes, pulls)].enumerated() {
                    trackers[offset % nodes].record(event)
                }
                for (node, tracker) in trackers.enumerated() {
                    let window = tracker.drain()
                    let began = Date()
                    traffic.sent += Int64(try store.merge(window, node: "node-\(node)").count)
                    traffic.merges.append(Date().timeIntervalSince(began))
                }
            }
        }
        _ = try connection.command(["FLUSHALL"])
        let baseline = try measure(connection) { traffic in
            let client = try RedisConnection(RedisEndpoint(port: port, timeout: 30))
            for event in workload.events.prefix(baselinePulls) {
                try QuayPerPullBaseline.record(event, on: client)
                traffic.sent += 1
            }
        }
        let scale = Double(pulls) / Double(baselinePulls)
        let merges = sketch.merges.sorted()
        print("""
            | per 1 M pulls (Zipf s = 1, 100,000 tags, \(nodes) nodes) | PullSketch merges | EVAL per pull (×\(Int(scale)) of \(baselinePulls)) | ratio |
            |---|---:|---:|---:|
            | commands sent (round trips) | \(sketch.sent) | \(Int64(Double(baseline.sent) * scale)) | \(ratio(Double(baseline.sent) * scale, Double(sketch.sent))) |
            | commands Redis executed (inside scripts too) | \(sketch.commands) | \(Int64(Double(baseline.commands) * scale)) | \(ratio(Double(baseline.commands) * scale, Double(sketch.commands))) |
            | bytes sent to Redis | \(sketch.bytesIn) | \(Int64(Double(baseline.bytesIn) * scale)) | \(ratio(Double(baseline.bytesIn) * scale, Double(sketch.bytesIn))) |
            | wall time, one client | \(format(sketch.seconds)) s | \(format(baseline.seconds * scale)) s | \(ratio(baseline.seconds * scale, sketch.seconds)) |
            | merge of one window (\(windowPulls) pulls), p50 / p99 | \(format(merges[merges.count / 2] * 1_000)) ms / \(format(merges[merges.count * 99 / 100] * 1_000)) ms | | |
            """)
    }

    /// Runs `body` and returns what Redis counted meanwhile. Redis counts a command once it has
    /// run and its input bytes once read: the first INFO is in the command count, the second
    /// INFO's 25 request bytes are in the byte count; both are taken out.
    static func measure(_ connection: RedisConnection, _ body: (inout Traffic) throws -> Void) throws -> Traffic {
        let before = try stats(connection)
        let began = Date()
        var traffic = Traffic(commands: 0, bytesIn: 0, seconds: 0)
        try body(&traffic)
        traffic.seconds = Date().timeIntervalSince(began)
        let after = try stats(connection)
        traffic.commands = after.commands - before.commands - 1
        traffic.bytesIn = after.bytesIn - before.bytesIn - 25
        return traffic
    }

    static func stats(_ connection: RedisConnection) throws -> (commands: Int64, bytesIn: Int64) {
        guard case .bulk(let bytes) = try connection.command(["INFO", "stats"]) else { throw RedisError(.unexpectedReply, "INFO") }
        var values: [String: Int64] = [:]
        for line in String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline) {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, let value = Int64(parts[1].trimmingCharacters(in: .whitespaces)) { values[String(parts[0])] = value }
        }
        return (values["total_commands_processed"] ?? 0, values["total_net_input_bytes"] ?? 0)
    }

    static func ratio(_ baseline: Double, _ ours: Double) -> String { "\(format(baseline / ours))×" }
    static func format(_ value: Double) -> String { String(format: value >= 100 ? "%.0f" : "%.2f", value) }
}
