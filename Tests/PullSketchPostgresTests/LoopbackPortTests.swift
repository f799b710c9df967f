import Foundation
import PullSketchTestSupport
import Testing

/// The test servers' ports: suites start their servers at once, so two of them must never be
/// handed the same port (a PostgreSQL was, between its port's choice and its bind after `initdb`).
@Suite struct LoopbackPortTests {
    @Test func freeLoopbackPortNeverHandsOutAPortTwice() async throws {
        // 500 picks from about 22,000 ports: drawn at random, two would agree with a probability
        // of 99.6 %.
        let ports = try await withThrowingTaskGroup(of: [Int].self) { group in
            for _ in 0..<5 {
                group.addTask { try (0..<100).map { _ in try freeLoopbackPort() } }
            }
            return try await group.reduce(into: []) { $0 += $1 }
        }
        #expect(ports.count == 500)
        #expect(Set(ports).count == ports.count)
    }

    /// A server whose port is taken exits; waiting for it to listen ends then, not after 30 s, and
    /// says why (a new server tries another free port on that answer).
    @Test func aRedisWhosePortIsTakenFailsAtOnceSayingSo() throws {
        // The port held by a socket bound to it and not listening, as in the CI runs that failed:
        // nothing answers there, so only the server's exit can end the wait.
        let port = try freeLoopbackPort()
        let holder = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(holder) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(holder, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        try #require(bound == 0)
        let began = Date()
        #expect {
            _ = try RedisServer(port: port)
        } throws: { error in
            "\(error)".contains("Address already in use")
        }
        #expect(Date().timeIntervalSince(began) < 10)
    }
}
