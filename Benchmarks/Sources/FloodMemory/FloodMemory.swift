import BenchmarkSupport
import Foundation
import PullSketchCore
import PullSketchRedis

/// Memory under a flood of 10 M distinct keys (each pull a tag never seen before), with no drain
/// in between (the worst case: a flush that cannot keep up): PullSketch's tracker window next to
/// the exact in-process map a buffer-and-flush design keeps, and to the Redis memory Quay's
/// per-pull hashes take (measured on 200,000 keys, scaled: one hash per key).
/// Usage: FloodMemory REDIS_PORT
@main
struct FloodMemory {
    static let flood = 10_000_000
    static let redisSample = 200_000

    static func main() throws {
        guard CommandLine.arguments.count == 2, let port = Int(CommandLine.arguments[1]) else {
            print("usage: FloodMemory REDIS_PORT")
            exit(2)
        }
        let time = Timestamp(millisecondsSinceEpoch: 1_800_000_000_000)
        let repositories = try (0..<1_000).map { try RepositoryName("flood/repo\($0)") }
        func pull(_ key: Int) throws -> PullEvent {
            let hex = String(key, radix: 16)
            return PullEvent(
                repository: repositories[key % 1_000], reference: .tag(try TagName("t\(key)")), method: .get,
                servedDigest: try Digest("sha256:" + String(repeating: "0", count: 64 - hex.count) + hex), time: time
            )
        }

        let baseline = residentBytes()
        let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true))
        var peakWindow = 0
        for key in 0..<flood {
            tracker.record(try pull(key))
            if key % 100_000 == 0 { peakWindow = max(peakWindow, tracker.memoryFootprint()) }
        }
        peakWindow = max(peakWindow, tracker.memoryFootprint())
        let trackerResident = residentBytes() - baseline
        let window = tracker.drain()
        // Every pull is in the window, exactly or in the tail mass.
        let counted = window.shards.reduce(0) { total, part in
            total + part.hotEntries.reduce(0) { $0 + Int($1.pulls) } + Int(part.tailMass)
        }

        let beforeMap = residentBytes()
        var exact: [String: (count: UInt64, last: Int64)] = [:]
        for key in 0..<flood {
            let event = try pull(key)
            guard case .tag(let tag) = event.reference else { continue }
            exact["\(event.repository.value):\(tag.value)", default: (0, 0)].count += 1
        }
        let mapResident = residentBytes() - beforeMap

        let redis = try RedisConnection(RedisEndpoint(port: port, timeout: 30))
        _ = try redis.command(["FLUSHALL"])
        let redisBefore = try usedMemory(redis)
        for start in stride(from: 0, to: redisSample, by: 1_000) {
            _ = try redis.pipeline(try (start..<start + 1_000).compactMap { QuayPerPullBaseline.command(for: try pull($0)) })
        }
        let redisPerKey = Double(try usedMemory(redis) - redisBefore) / Double(redisSample)
        _ = try redis.command(["FLUSHALL"])

        func megabytes(_ bytes: Double) -> String { String(format: "%.1f MB", bytes / 1e6) }
        print("""
            | 10 M distinct keys, no flush in between | PullSketch tracker | exact in-process map | Quay: one Redis hash per key | |
            |---|---:|---:|---:|---|
            | memory | \(megabytes(Double(peakWindow))) window (\(megabytes(Double(trackerResident))) resident growth) | \
            \(megabytes(Double(mapResident))) resident growth | \(megabytes(redisPerKey * Double(flood))) in Redis (\(Int(redisPerKey)) B/key × 10 M) | \
            key updates in the window: \(counted) (tag + manifest per pull); map entries: \(exact.count) |
            """)
    }

    /// This process's resident set, from /proc/self/statm.
    static func residentBytes() -> Int {
        let statm = (try? String(contentsOfFile: "/proc/self/statm", encoding: .utf8)) ?? ""
        let pages = statm.split(separator: " ").dropFirst().first.flatMap { Int($0) } ?? 0
        return pages * Int(sysconf(Int32(_SC_PAGESIZE)))
    }

    static func usedMemory(_ redis: RedisConnection) throws -> Int {
        guard case .bulk(let bytes) = try redis.command(["INFO", "memory"]) else { throw RedisError(.unexpectedReply, "INFO") }
        let line = String(decoding: bytes, as: UTF8.self).split(whereSeparator: \.isNewline).first { $0.hasPrefix("used_memory:") }
        return line.flatMap { Int($0.dropFirst("used_memory:".count)) } ?? 0
    }
}
