import PullSketchPostgres
import PullSketchStore
import PullSketchTestSupport
import Synchronization
import Testing

@Suite(.postgresServer) struct BlockingDatabaseTests {
    @Test func aStatementWaitsForAnIdleConnectionOnlySoLongAndOneThatRunsTooLongIsCancelled() async throws {
        let database = try BlockingDatabase(
            try PostgresServer.current!.makeDatabase(), connections: 1, statementTimeout: .seconds(3), acquireTimeout: .milliseconds(200)
        )
        let started = Flag()
        let slow = Task {
            try await database.run {
                started.set()
                _ = try $0.query("SELECT pg_sleep(10)")
            }
        }
        while !started.isSet { try await Task.sleep(for: .milliseconds(10)) }  // the one connection is taken
        await #expect(throws: DatabaseUnavailable.busy) { try await database.run { try $0.query("SELECT 1") } }
        let error = await #expect(throws: PostgresError.self) { try await slow.value }
        #expect(error.map { DatabaseUnavailable($0) } == .timedOut, "cancelled by statement_timeout: \(String(describing: error))")
        #expect(try await database.run { try $0.query("SELECT 1").rows } == [["1"]], "the connection serves again")
    }
}

/// Set once, read from any task.
private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}
