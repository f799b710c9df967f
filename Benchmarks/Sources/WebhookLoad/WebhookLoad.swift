import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Distribution notifications into one node as fast as it answers: keep-alive connections on
/// loopback, one event per POST (what docker-registry 2.8 sends), every event a manifest pull of a
/// tag never seen before. Bounded: stops after EVENTS events or SECONDS seconds, whichever first.
/// Prints events/s and latency percentiles, and, if the node's pid is given, the node's CPU time per
/// event (user and system, from `/proc`: steadier than the rate on a shared machine) and its peak
/// resident memory, beside the CPU per event of this load generator and of the Redis at REDIS_PID:
/// on one machine the three share the cores, so together they say where the rate's limit is.
/// Usage: WebhookLoad PORT SECRET EVENTS SECONDS CONNECTIONS [NODE_PID [REDIS_PID]]
@main
struct WebhookLoad {
    static func main() throws {
        let arguments = CommandLine.arguments
        guard arguments.count >= 6, let port = UInt16(arguments[1]), let events = Int(arguments[3]), let seconds = Double(arguments[4]),
            let connections = Int(arguments[5])
        else {
            print("usage: WebhookLoad PORT SECRET EVENTS SECONDS CONNECTIONS [NODE_PID [REDIS_PID]]")
            exit(2)
        }
        let secret = arguments[2]
        let nodePID = arguments.count > 6 ? arguments[6] : nil
        let measured = [("node", nodePID), ("load generator", String(getpid())), ("Redis", arguments.count > 7 ? arguments[7] : nil)]
            .compactMap { name, pid in pid.map { (name, $0) } }
        let cpuBefore = measured.map { cpuSeconds($0.1) }
        let deadline = Date().addingTimeInterval(seconds)
        let perConnection = events / connections
        let results = Results(connections: connections)
        let began = Date()
        let finished = DispatchGroup()
        for worker in 0..<connections {
            finished.enter()
            Thread {
                results.store(worker, drive(port: port, secret: secret, worker: worker, events: perConnection, deadline: deadline))
                finished.leave()
            }.start()
        }
        finished.wait()
        let elapsed = Date().timeIntervalSince(began)
        let latencies = results.all.sorted()
        guard !latencies.isEmpty else { exit(1) }
        func percentile(_ p: Int) -> String { String(format: "%.2f ms", latencies[(latencies.count - 1) * p / 100] * 1_000) }
        var node = ""
        if nodePID != nil {
            for ((name, pid), before) in zip(measured, cpuBefore) {
                guard let before, let after = cpuSeconds(pid) else { continue }
                node += String(format: ", \(name) CPU %.0f µs per event", (after - before) / Double(latencies.count) * 1e6)
            }
        }
        if let nodePID, let status = try? String(contentsOfFile: "/proc/\(nodePID)/status", encoding: .utf8) {
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
            node += ", node peak resident memory \(line.dropFirst(6).trimmingCharacters(in: .whitespaces))"
        }
        print("""
            \(latencies.count) events in \(String(format: "%.1f", elapsed)) s over \(connections) connections: \
            \(Int(Double(latencies.count) / elapsed)) events/s, latency p50 \(percentile(50)), p99 \(percentile(99))\(node)
            """)
    }

    /// The user and system CPU time process `pid` has used, in seconds.
    static func cpuSeconds(_ pid: String) -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let fields = stat.split(separator: ")").last?.split(separator: " "), fields.count > 13,
            let user = Double(fields[11]), let system = Double(fields[12])
        else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }

    /// One connection's requests, one at a time; their latencies in seconds.
    static func drive(port: UInt16, secret: String, worker: Int, events: Int, deadline: Date) -> [Double] {
        var latencies: [Double] = []
        do {
            let client = try Client(port: port)
            latencies.reserveCapacity(events)
            for index in 0..<events where Date() < deadline {
                let body = envelope(worker: worker, index: index)
                let request = "POST /notifications HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(secret)\r\n"
                    + "Content-Type: application/vnd.docker.distribution.events.v1+json\r\nContent-Length: \(body.utf8.count)\r\n\r\n\(body)"
                let sent = Date()
                let status = try client.exchange(request)
                guard status == 200 else { throw LoadError("status \(status)") }
                latencies.append(Date().timeIntervalSince(sent))
            }
        } catch {
            print("connection \(worker): \(error)")
        }
        return latencies
    }

    /// When the load started, as the events' time: a registry stamps events with the time of the
    /// request, and the node clamps times far from the arrival.
    static let started: String = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return formatter.string(from: Date())
    }()

    /// One event: a GET by tag of a tag no other event names, served a digest no other event
    /// names (64 hex digits of the worker and index; `%x` would keep only 32 bits).
    static func envelope(worker: Int, index: Int) -> String {
        let hex = String(UInt64(worker) << 40 | UInt64(index), radix: 16)
        let digest = String(repeating: "0", count: 64 - hex.count) + hex
        return """
            {"events":[{"id":"w\(worker)-\(index)","timestamp":"\(started)","action":"pull",\
            "target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:\(digest)",\
            "repository":"load/repo\(index % 1_000)","tag":"w\(worker)-\(index)"},"request":{"method":"GET"}}]}
            """
    }
}

/// Latencies per connection, collected once each connection is done.
final class Results: @unchecked Sendable {
    private var perConnection: [[Double]]
    private let lock = NSLock()

    init(connections: Int) {
        perConnection = Array(repeating: [], count: connections)
    }

    func store(_ connection: Int, _ latencies: [Double]) {
        lock.withLock { perConnection[connection] = latencies }
    }

    var all: [Double] { lock.withLock { perConnection.flatMap { $0 } } }
}

/// One keep-alive HTTP/1.1 connection to 127.0.0.1 that sends a request and reads one response.
final class Client {
    private let socket: Int32
    private var buffer: [UInt8] = []

    init(port: UInt16) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = port.bigEndian
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw LoadError("cannot connect to port \(port)") }
        var noDelay: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &noDelay, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(socket) }

    /// Sends `request` and returns the response's status, having read its body.
    func exchange(_ request: String) throws -> Int {
        let bytes = Array(request.utf8)
        var offset = 0
        while offset < bytes.count {
            let written = bytes.withUnsafeBytes { send(socket, $0.baseAddress! + offset, $0.count - offset, 0) }
            guard written > 0 else { throw LoadError("send failed") }
            offset += written
        }
        let separator: [UInt8] = [13, 10, 13, 10]
        var headerEnd: Int?
        while true {
            if let end = headerEnd {
                let head = String(decoding: buffer[..<end], as: UTF8.self)
                let length = head.split(separator: "\r\n").first { $0.lowercased().hasPrefix("content-length:") }
                    .flatMap { Int($0.split(separator: ":")[1].trimmingCharacters(in: .whitespaces)) } ?? 0
                if buffer.count >= end + 4 + length {
                    let status = Int(head.split(separator: " ")[1]) ?? 0
                    buffer.removeFirst(end + 4 + length)
                    return status
                }
            } else if buffer.count >= 4, let range = buffer.firstRange(of: separator) {
                headerEnd = range.lowerBound
                continue
            }
            var chunk = [UInt8](repeating: 0, count: 16_384)
            let received = chunk.withUnsafeMutableBytes { recv(socket, $0.baseAddress!, $0.count, 0) }
            guard received > 0 else { throw LoadError("connection closed") }
            buffer.append(contentsOf: chunk[..<received])
        }
    }
}

struct LoadError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
