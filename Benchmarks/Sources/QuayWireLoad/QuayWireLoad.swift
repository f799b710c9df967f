import Foundation
import PullSketchRedis

/// Quay's pull-metrics traffic as its registry sends it: a new connection per pull (SELECT 1,
/// PING, then one EVAL of a pull script), from several threads, against PullSketch's Redis endpoint
/// and a real redis-server running the script, in alternating rounds of one run. Prints pulls/s, the
/// client's latency per pull (connect to EVAL reply) and the server's CPU time per pull (from
/// /proc: the client shares the machine, so pulls/s shows the pair, CPU per pull the server),
/// medians of the rounds.
/// Usage: QuayWireLoad PULLSKETCH_RESP_PORT PULLSKETCH_PID REDIS_PORT REDIS_PID PULLS THREADS REPOSITORIES
@main
struct QuayWireLoad {
    static let script = """
        local count = redis.call('HINCRBY', KEYS[1], 'pull_count', 1)
        redis.call('HSET', KEYS[1], 'last_pull_timestamp', ARGV[#ARGV - 1], 'pull_method', ARGV[#ARGV])
        return tostring(count)
        """
    static let rounds = 3

    struct Round {
        var pullsPerSecond: Double
        var latencies: [Double]
        var serverCPUPerPull: Double
    }

    static func main() throws {
        let arguments = CommandLine.arguments.dropFirst().compactMap { Int($0) }
        guard arguments.count == 7 else {
            print("usage: QuayWireLoad PULLSKETCH_RESP_PORT PULLSKETCH_PID REDIS_PORT REDIS_PID PULLS THREADS REPOSITORIES")
            exit(2)
        }
        let servers = [("PullSketch endpoint", arguments[0], arguments[1]), ("redis-server", arguments[2], arguments[3])]
        let (pulls, threads, repositories) = (arguments[4], arguments[5], arguments[6])
        var results: [String: [Round]] = [:]
        for _ in 0..<rounds {
            for (name, port, pid) in servers {
                results[name, default: []].append(try run(port: port, pid: pid, pulls: pulls, threads: threads, repositories: repositories))
            }
        }
        print("| \(pulls) pulls per round, \(threads) client threads, new connection per pull | pulls/s | latency p50 | p99 | server CPU per pull | pulls/s per server core |")
        print("|---|---:|---:|---:|---:|---:|")
        var throughput: [String: Double] = [:]
        for (name, _, _) in servers {
            let rounds = results[name]!
            throughput[name] = median(rounds.map(\.pullsPerSecond))
            let cpu = median(rounds.map(\.serverCPUPerPull))
            print("| \(name) | \(Int(throughput[name]!)) | \(micro(median(rounds.map { percentile($0.latencies, 0.5) }))) µs "
                + "| \(micro(median(rounds.map { percentile($0.latencies, 0.99) }))) µs | \(micro(cpu)) µs | \(Int(1 / cpu)) |")
        }
        print("ratio (PullSketch / redis-server pulls/s): \(String(format: "%.2f", throughput["PullSketch endpoint"]! / throughput["redis-server"]!))")
    }

    /// User plus system CPU seconds `pid` has used.
    static func cpuSeconds(_ pid: Int) throws -> Double {
        let stat = try String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8)
        let fields = stat[stat.range(of: ")")!.upperBound...].split(separator: " ")
        return (Double(fields[11])! + Double(fields[12])!) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// One round: `pulls` pulls split over `threads` threads, each its own connection.
    static func run(port: Int, pid: Int, pulls: Int, threads: Int, repositories: Int) throws -> Round {
        let cpuBefore = try cpuSeconds(pid)
        // Each thread writes only its own indices.
        nonisolated(unsafe) let latencies = UnsafeMutableBufferPointer<Double>.allocate(capacity: pulls)
        defer { latencies.deallocate() }
        nonisolated(unsafe) let failures = UnsafeMutableBufferPointer<Int>.allocate(capacity: threads)
        defer { failures.deallocate() }
        failures.initialize(repeating: 0)
        let seconds = Int(Date().timeIntervalSince1970)
        let began = Date()
        DispatchQueue.concurrentPerform(iterations: threads) { thread in
            for index in stride(from: thread, to: pulls, by: threads) {
                let repository = index % repositories + 1
                let digest = "sha256:" + String(repeating: String(format: "%016x", index % 5_000), count: 4)
                let tag = "t\(index % 1_000)"
                let started = DispatchTime.now().uptimeNanoseconds
                do {
                    let connection = try RedisConnection(RedisEndpoint(port: port, database: 1, timeout: 2))
                    _ = try connection.command(["PING"])
                    _ = try connection.command([
                        "EVAL", script, "1", "pull_events:repo:\(repository):tag:\(tag):\(digest)",
                        String(repository), tag, digest, String(seconds), "tag",
                    ])
                } catch {
                    failures[thread] += 1
                }
                latencies[index] = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
            }
        }
        let elapsed = Date().timeIntervalSince(began)
        let failed = failures.reduce(0, +)
        if failed > 0 { print("port \(port): \(failed) pulls failed") }
        return Round(pullsPerSecond: Double(pulls) / elapsed, latencies: Array(latencies),
                     serverCPUPerPull: (try cpuSeconds(pid) - cpuBefore) / Double(pulls))
    }

    static func median(_ values: [Double]) -> Double {
        values.sorted()[values.count / 2]
    }

    static func percentile(_ values: [Double], _ fraction: Double) -> Double {
        let sorted = values.sorted()
        return sorted[min(sorted.count - 1, Int(Double(sorted.count) * fraction))]
    }

    static func micro(_ seconds: Double) -> String {
        String(Int((seconds * 1e6).rounded()))
    }
}
