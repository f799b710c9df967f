import PullSketchPostgres
import PullSketchStore
import PullSketchTestSupport
import Testing

@Suite(.postgresServer) struct BlockingDatabaseTests {
    @Test func aStatementWaitsForAnIdleConnectionOnlySoLongAndOneThatRunsTooLongIsCancelled() async throws {
        let database = try BlockingDatabase(
            try PostgresServer.current!.makeDatabase(), connections: 1, statementTimeout: .seconds(1), acquireTimeout: .milliseconds(300)
        )
        let slow = Task { try await database.run { _ = try $0.query("SELECT pg_sleep(3)") } }
        try await Task.sleep(for: .milliseconds(100))
        await #expect(throws: DatabaseUnavailable.busy) { try await database.run { try $0.query("SELECT 1") } }
        let error = await #expect(throws: PostgresError.self) { try await slow.value }
        #expect(error.map { DatabaseUnavailable($0) } == .timedOut, "cancelled by statement_timeout: \(String(describing: error))")
        #expect(try await database.run { try $0.query("SELECT 1").rows } == [["1"]], "the connection serves again")
    }
}
