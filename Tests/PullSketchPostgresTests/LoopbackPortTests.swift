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
}
