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
    /// says why (`startOnFreePort` moves a new server to another port on that answer).
    @Test func aRedisWhosePortIsTakenFailsAtOnceSayingSo() throws {
        // Bound and not listening, as in the CI runs that failed: nothing answers there, so only
        // the server's exit can end the wait.
        let holder = try LoopbackPortHolder()
        let began = Date()
        #expect {
            _ = try RedisServer(port: holder.port)
        } throws: { error in
            "\(error)".contains("Address already in use")
        }
        #expect(Date().timeIntervalSince(began) < 10)
    }

    /// A first start that finds its port taken runs again on other free ports, up to five times;
    /// any other failure is not retried.
    @Test func aNewServerMovesToAnotherPortWhileItsPortIsTaken() throws {
        let holder = try LoopbackPortHolder()
        // Taken twice (a Redis on the held port), then started: two other ports handed over.
        var ports = [holder.port]
        try startOnFreePort({
            if ports.count < 3 { _ = try RedisServer(port: holder.port) }
        }, moveTo: { ports.append($0) })
        #expect(ports.count == 3 && Set(ports).count == 3)

        var attempts = 0
        #expect(throws: (any Error).self) {
            try startOnFreePort({
                attempts += 1
                _ = try RedisServer(port: holder.port)
            }, moveTo: { _ in })
        }
        #expect(attempts == 5)

        attempts = 0
        #expect(throws: POSIXError.self) {
            try startOnFreePort({
                attempts += 1
                throw POSIXError(.EACCES)
            }, moveTo: { _ in })
        }
        #expect(attempts == 1)
    }
}
