import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Distribution notifications into one node as fast as it answers, or at RATE events/s in all:
/// keep-alive connections on loopback, one event per POST (what docker-registry 2.8 sends), every
/// event a manifest pull of a tag never seen before. Bounded: stops after EVENTS events or SECONDS
/// seconds, whichever first.
/// Prints events/s and latency percentiles, and, if the node's pid is given, the node's CPU time per
/// event (user and system, from `/proc`: steadier than the rate on a shared machine) and its peak
/// resident memory, beside the CPU per event of this load generator and of the Redis at REDIS_PID:
/// on one machine the three share the cores, so together they say where the rate's limit is. With
/// them, the share of the machine's CPU time left idle during the load: what no process could use
/// while each waited for another.
/// Usage: WebhookLoad [--rate RATE] PORT SECRET EVENTS SECONDS CONNECTIONS [NODE_PID [REDIS_PID]]
@main
struct WebhookLoad {
    static func main() throws {
        var arguments = CommandLine.arguments
        var rate: Double?
        if let option = arguments.firstIndex(of: "--rate"), option + 1 < arguments.count {
            rate = Double(arguments[option + 1])
            arguments.removeSubrange(option...option + 1)
        }
        guard arguments.count >= 6, let port = UInt16(arguments[1]), let events = Int(arguments[3]), let seconds = Double(arguments[4]),
            let connections = Int(arguments[5]), rate.map({ $0 > 0 }) ?? true
        else {
            print("usage: WebhookLoad [--rate RATE] PORT SECRET EVENTS SECONDS CONNECTIONS [NODE_PID [REDIS_PID]]")
            exit(2)
        }
        // Each connection sends its events at its share of the rate, on a schedule from the start.
        let interval = rate.map { UInt64(Double(connections) / $0 * 1e9) }
        let secret = arguments[2]
        let nodePID = arguments.count > 6 ? arguments[6] : nil
        let measured = [("node", nodePID), ("load generator", String(getpid())), ("Redis", arguments.count > 7 ? arguments[7] : nil)]
            .compactMap { name, pid in pid.map { (name, $0) } }
        let cpuBefore = measured.map { cpuSeconds($0.1) }
        let machineBefore = machineTicks()
        let deadline = Date().addingTimeInterval(seconds)
        let perConnection = events / connections
        let results = Results(connections: connections)
        let began = Date()
        let finished = DispatchGroup()
        for worker in 0..<connections {
            finished.enter()
            Thread {
                results.store(worker, drive(port: port, secret: secret, worker: worker, events: perConnection, interval: interval, deadline: deadline))
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
        if nodePID != nil, let before = machineBefore, let after = machineTicks(), after.total > before.total {
            node += String(format: ", machine idle %.0f %%", Double(after.idle - before.idle) / Double(after.total - before.total) * 100)
        }
        if let nodePID, let status = try? String(contentsOfFile: "/proc/\(nodePID)/status", encoding: .utf8) {
            let line = status.split(separator: "\n").first { $0.hasPrefix("VmHWM:") } ?? ""
            node += ", node peak resident memory \(line.dropFirst(6).trimmingCharacters(in: .whitespaces))"
        }
        print("""
            \(latencies.count) events in \(String(format: "%.1f", elapsed)) s over \(connections) connections\(rate.map { " paced at \(Int($0)) events/s" } ?? ""): \
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

    /// The machine's CPU time since boot in clock ticks, all of it (user to steal: the guest
    /// columns are inside user already) and the idle part (idle and waiting for I/O), from the
    /// first line of `/proc/stat`.
    static func machineTicks() -> (total: UInt64, idle: UInt64)? {
        guard let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8), let line = stat.split(separator: "\n").first,
            line.hasPrefix("cpu ")
        else { return nil }
        let ticks = line.split(separator: " ").dropFirst().compactMap { UInt64($0) }
        guard ticks.count >= 5 else { return nil }
        return (ticks.prefix(8).reduce(0, +), ticks[3] + ticks[4])
    }

    /// One connection's requests, one at a time; their latencies in seconds. Each request is
    /// written into one reused buffer and timed by the monotonic clock: the load generator shares
    /// the cores with the node, so what it spends per event is taken from the node's share.
    /// With an `interval`, event `i` is sent no sooner than `i` intervals after the first.
    static func drive(port: UInt16, secret: String, worker: Int, events: Int, interval: UInt64?, deadline: Date) -> [Double] {
        var latencies: [Double] = []
        do {
            let client = try Client(port: port)
            latencies.reserveCapacity(events)
            let start = monotonicNanoseconds()
            let end = start + UInt64(max(0, deadline.timeIntervalSinceNow) * 1e9)
            let head = Array("POST /notifications HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer \(secret)\r\n".utf8)
                + Array("Content-Type: application/vnd.docker.distribution.events.v1+json\r\nContent-Length: ".utf8)
            var body: [UInt8] = []
            var request: [UInt8] = []
            for index in 0..<events {
                if let interval {
                    let due = start + UInt64(index) * interval, now = monotonicNanoseconds()
                    if due > now {
                        var wait = timespec(tv_sec: Int((due - now) / 1_000_000_000), tv_nsec: Int((due - now) % 1_000_000_000))
                        nanosleep(&wait, nil)
                    }
                }
                let sent = monotonicNanoseconds()
                guard sent < end else { break }
                body.removeAll(keepingCapacity: true)
                appendEnvelope(worker: worker, index: index, to: &body)
                request.removeAll(keepingCapacity: true)
                request += head
                appendDecimal(body.count, to: &request)
                request += [13, 10, 13, 10]
                request += body
                let status = try client.exchange(request)
                guard status == 200 else { throw LoadError("status \(status)") }
                latencies.append(Double(monotonicNanoseconds() - sent) / 1e9)
            }
        } catch {
            print("connection \(worker): \(error)")
        }
        return latencies
    }

    static func monotonicNanoseconds() -> UInt64 {
        var now = timespec()
        clock_gettime(CLOCK_MONOTONIC, &now)
        return UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec)
    }

    /// When the load started, as the events' time: a registry stamps events with the time of the
    /// request, and the node clamps times far from the arrival.
    static let started: [UInt8] = {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return Array(formatter.string(from: Date()).utf8)
    }()

    /// One event: a GET by tag of a tag no other event names, served a digest no other event
    /// names (64 hex digits of the worker and index; `%x` would keep only 32 bits).
    static func appendEnvelope(worker: Int, index: Int, to bytes: inout [UInt8]) {
        func name() {
            bytes.append(UInt8(ascii: "w"))
            appendDecimal(worker, to: &bytes)
            bytes.append(UInt8(ascii: "-"))
            appendDecimal(index, to: &bytes)
        }
        bytes += Envelope.beforeID
        name()
        bytes += Envelope.beforeTime
        bytes += started
        bytes += Envelope.beforeDigest
        let digest = UInt64(worker) << 40 | UInt64(index)
        bytes += repeatElement(UInt8(ascii: "0"), count: 48)
        for shift in stride(from: 60, through: 0, by: -4) {
            bytes.append(Envelope.hexDigits[Int(digest >> UInt64(shift) & 0xf)])
        }
        bytes += Envelope.beforeRepository
        appendDecimal(index % 1_000, to: &bytes)
        bytes += Envelope.beforeTag
        name()
        bytes += Envelope.end
    }

    /// The envelope's fixed parts, between its variable ones.
    enum Envelope {
        static let beforeID = Array(#"{"events":[{"id":""#.utf8)
        static let beforeTime = Array(#"","timestamp":""#.utf8)
        static let beforeDigest = Array(#"","action":"pull","target":{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:"#.utf8)
        static let beforeRepository = Array(#"","repository":"load/repo"#.utf8)
        static let beforeTag = Array(#"","tag":""#.utf8)
        static let end = Array(#""},"request":{"method":"GET"}}]}"#.utf8)
        static let hexDigits = Array("0123456789abcdef".utf8)
    }

    static func appendDecimal(_ value: Int, to bytes: inout [UInt8]) {
        if value >= 10 { appendDecimal(value / 10, to: &bytes) }
        bytes.append(UInt8(ascii: "0") + UInt8(value % 10))
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

/// One keep-alive HTTP/1.1 connection to 127.0.0.1 that sends a request and reads one response,
/// into one buffer read in place: the answer's head is scanned as bytes for its end, its status
/// and its `Content-Length`, whatever headers it carries.
final class Client {
    private let socket: Int32
    private var buffer = [UInt8](repeating: 0, count: 65_536)
    /// Bytes of `buffer` received and not yet consumed.
    private var filled = 0

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
    func exchange(_ request: [UInt8]) throws -> Int {
        try request.withUnsafeBytes { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = send(socket, bytes.baseAddress! + offset, bytes.count - offset, 0)
                guard written > 0 else { throw LoadError("send failed") }
                offset += written
            }
        }
        var scanned = 0
        while true {
            if let (status, length) = try response(scanningFrom: &scanned) {
                buffer.withUnsafeMutableBytes { bytes in
                    bytes.baseAddress!.copyMemory(from: bytes.baseAddress! + length, byteCount: filled - length)
                }
                filled -= length
                return status
            }
            guard filled < buffer.count else { throw LoadError("response larger than \(buffer.count) bytes") }
            let received = buffer.withUnsafeMutableBytes { recv(socket, $0.baseAddress! + filled, $0.count - filled, 0) }
            guard received > 0 else { throw LoadError("connection closed") }
            filled += received
        }
    }

    /// The status and whole length of the response at the buffer's start once it is all received;
    /// nil before. `scanned` keeps how far the search for the head's end got.
    private func response(scanningFrom scanned: inout Int) throws -> (status: Int, length: Int)? {
        try buffer.withUnsafeBytes { bytes in
            var headEnd: Int?
            var index = max(scanned, 3)
            while index < filled {
                if bytes[index] == 10, bytes[index - 1] == 13, bytes[index - 2] == 10, bytes[index - 3] == 13 {
                    headEnd = index + 1
                    break
                }
                index += 1
            }
            scanned = index
            guard let headEnd else { return nil }
            guard headEnd > 12, let status = Self.decimal(bytes, 9..<12) else { throw LoadError("no status line") }
            let length = headEnd + (Self.contentLength(bytes, head: 0..<headEnd) ?? 0)
            return filled >= length ? (status, length) : nil
        }
    }

    private static let contentLengthName = Array("content-length:".utf8)

    /// The value of the head's `Content-Length` header, its name compared without case.
    private static func contentLength(_ bytes: UnsafeRawBufferPointer, head: Range<Int>) -> Int? {
        var lineStart = head.lowerBound
        while lineStart < head.upperBound {
            var lineEnd = lineStart
            while lineEnd < head.upperBound, bytes[lineEnd] != 13 { lineEnd += 1 }
            let name = contentLengthName
            if lineEnd - lineStart > name.count, (0..<name.count).allSatisfy({ bytes[lineStart + $0] | 0x20 == name[$0] | 0x20 }) {
                var start = lineStart + name.count
                while start < lineEnd, bytes[start] == UInt8(ascii: " ") { start += 1 }
                return decimal(bytes, start..<lineEnd)
            }
            lineStart = lineEnd + 2
        }
        return nil
    }

    private static func decimal(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>) -> Int? {
        guard !range.isEmpty else { return nil }
        var value = 0
        for index in range {
            guard (48...57).contains(bytes[index]) else { return nil }
            value = value * 10 + Int(bytes[index] - 48)
        }
        return value
    }
}

struct LoadError: Error, CustomStringConvertible {
    let description: String

    init(_ description: String) {
        self.description = description
    }
}
