import PullSketchPostgres
import PullSketchStore
import PullSketchTestSupport
import Synchronization
import Testing

@Suite(.postgresServer) struct BlockingDatabaseTests {
    @Test func aStatementWaitsForAnIdleConnectionOnlySoLong() async throws {
        let url = try PostgresServer.current!.makeDatabase()
        let database = try BlockingDatabase(url, connections: 1, statementTimeout: .seconds(60), acquireTimeout: .milliseconds(200))
        let started = Flag()
        let slow = Task {
            try await database.run {
                started.set()
                _ = try $0.query("SELECT pg_sleep(60)")
            }
        }
        while !started.isSet { try await Task.sleep(for: .milliseconds(10)) }  // the one connection is taken
        await #expect(throws: DatabaseUnavailable.busy) { try await database.run { try $0.query("SELECT 1") } }
        let cancel = "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query = 'SELECT pg_sleep(60)'"
        try await onOwnThread { _ = try PostgresConnection(url).query(cancel) }
        await #expect(throws: PostgresError.self) { try await slow.value }
        #expect(try await database.run { try $0.query("SELECT 1").rows } == [["1"]], "the connection serves again")
    }

    @Test func aStatementThatRunsTooLongIsCancelledAndTheConnectionServesOn() async throws {
        let database = try BlockingDatabase(try PostgresServer.current!.makeDatabase(), connections: 1, statementTimeout: .milliseconds(500))
        let error = await #expect(throws: PostgresError.self) { try await database.run { try $0.query("SELECT pg_sleep(5)") } }
        #expect(error.map { DatabaseUnavailable($0) } == .timedOut, "cancelled by statement_timeout: \(String(describing: error))")
        #expect(try await database.run { try $0.query("SELECT 1").rows } == [["1"]])
    }
}

/// Set once, read from any task.
private final class Flag: Sendable {
    private let value = Atomic<Bool>(false)

    func set() { value.store(true, ordering: .releasing) }
    var isSet: Bool { value.load(ordering: .acquiring) }
}
