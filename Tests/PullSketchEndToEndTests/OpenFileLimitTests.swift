import Foundation
import PullSketchTestSupport
import Testing

/// A node's connections against the limit on open files it was started with.
@Suite(.postgresServer) struct OpenFileLimitTests {
    /// A node started with a soft limit of 64 open files keeps 200 connections open at once and
    /// answers each: it raises its soft limit to the hard one as it starts. Without that it stops
    /// accepting at about 40, and the rest wait in the listen backlog.
    @Test func aNodeAnswersMoreConnectionsThanTheSoftLimitItStartedWith() async throws {
        var limit = rlimit()
        try #require(getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit) == 0)
        try #require(limit.rlim_max >= 1_024, "the hard limit on open files allows what this test opens")
        let redis = try RedisServer()
        let nodePort = try freeLoopbackPort()
        let environment = [
            "PULLSKETCH_DATABASE_URL": try PostgresServer.current!.makeDatabase(), "PULL_METRICS_REDIS_PORT": String(redis.port),
            "PULLSKETCH_HTTP_PORT": String(nodePort), "PULLSKETCH_WEBHOOK_SECRET": "open-files-secret-0123456789", "PULLSKETCH_READ_AUTH": "none",
        ]
        let pullsketch = builtProduct("pullsketch")
        try ChildProcess.run(pullsketch.path, ["migrate"], environment: environment)
        let log = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-open-files-\(nodePort).log")
        defer { try? FileManager.default.removeItem(at: log) }
        let node = try ChildProcess(
            URL(fileURLWithPath: "/bin/sh"), ["-c", "ulimit -Sn 64 && exec \"$0\" serve", pullsketch.path], environment: environment, log: log
        )
        try waitUntilListening(port: nodePort, timeout: 30)
        // A bound for a loaded machine. It spans two idle timeouts (30 s): without the raise, the
        // connections the node closes as idle let a few dozen more in, never all 200.
        let answered = try await onOwnThread { try Self.answeredConnections(port: nodePort, count: 200, within: 60) }
        node.kill()
        let output = try String(contentsOf: log, encoding: .utf8)
        #expect(answered == 200, "\(output)")
    }

    /// Opens `count` keep-alive connections to `port`, sends a health check on each, keeps them
    /// all open, and returns how many were answered within `seconds`.
    static func answeredConnections(port: Int, count: Int, within seconds: Double) throws -> Int {
        let connections = (0..<count).map { _ in socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }
        defer { connections.forEach { close($0) } }
        let request = Array("GET /healthz HTTP/1.1\r\nHost: node\r\n\r\n".utf8)
        for connection in connections {
            guard connectLoopback(connection, port: port) else { throw POSIXError(.ECONNREFUSED) }
            _ = request.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        var waiting = Set(connections)
        var buffer = [UInt8](repeating: 0, count: 4_096)
        let deadline = Date().addingTimeInterval(seconds)
        while !waiting.isEmpty, Date() < deadline {
            var polled = waiting.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            guard poll(&polled, nfds_t(polled.count), 500) >= 0 else { continue }
            for entry in polled where entry.revents != 0 {
                let read = recv(entry.fd, &buffer, buffer.count, 0)
                if read > 0, buffer.starts(with: "HTTP/1.1 ".utf8) { waiting.remove(entry.fd) }
            }
        }
        return count - waiting.count
    }
}
