import Foundation
import PullSketchPostgres
import PullSketchStore
import PullSketchTestSupport
import Synchronization
import Testing

@Suite(.postgresServer) struct BlockingDatabaseTests {
    @Test func aStatementThatRunsTooLongIsCancelledAndTheConnectionServesOn() async throws {
        let database = try BlockingDatabase(try PostgresServer.current!.makeDatabase(), connections: 1, statementTimeout: .milliseconds(500))
        let error = await #expect(throws: PostgresError.self) { try await database.run { try $0.query("SELECT pg_sleep(5)") } }
        #expect(error.map { DatabaseUnavailable($0) } == .timedOut, "cancelled by statement_timeout: \(String(describing: error))")
        #expect(try await database.run { try $0.query("SELECT 1").rows } == [["1"]])
    }

    /// Sessions compile no statement (`jit` off), after a reconnection too, unless the caller sets it.
    @Test func sessionsRunWithoutJITUnlessTheCallerSetsIt() async throws {
        let url = try PostgresServer.current!.makeDatabase()
        let database = try BlockingDatabase(url, connections: 1)
        #expect(try await database.run { try $0.query("SHOW jit").rows } == [["off"]])
        _ = try? await database.run { try $0.query("SELECT pg_terminate_backend(pg_backend_pid())") }
        #expect(try await database.run { try $0.query("SHOW jit").rows } == [["off"]])
        let chosen = try BlockingDatabase(url, connections: 1, settings: ["jit": "on"])
        #expect(try await chosen.run { try $0.query("SHOW jit").rows } == [["on"]])
    }

    /// A statement waits for an idle connection only so long, even while busy tasks hold every
    /// cooperative thread: a timer on `DispatchQueue.global()` waited for those threads too (on
    /// Linux they are one pool). Afterwards the connection serves again.
    @Test func aStatementWaitsForAnIdleConnectionOnlySoLongEvenWhileEveryCooperativeThreadIsBusy() async throws {
        let url = try PostgresServer.current!.makeDatabase()
        let database = try BlockingDatabase(url, connections: 1, statementTimeout: .seconds(60), acquireTimeout: .milliseconds(200))
        let started = Counter()
        let slow = Task {
            try await database.run {
                started.add()
                _ = try $0.query("SELECT pg_sleep(60)")
            }
        }
        while started.count == 0 { try await Task.sleep(for: .milliseconds(10)) }  // the one connection is taken
        let answered = Counter()
        // On a thread of its own, so that the answer reaches the waiting task without a cooperative one.
        let waiting = Task(executorPreference: CPUBoundLane()) {
            defer { answered.add() }
            _ = try await database.run { try $0.query("SELECT 1") }
        }
        let spinnersTimedOut = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<ProcessInfo.processInfo.activeProcessorCount {
                group.addTask {
                    let deadline = ContinuousClock.now + .seconds(60)
                    while answered.count == 0 && ContinuousClock.now < deadline { sched_yield() }
                    return answered.count == 0
                }
            }
            return await group.reduce(false) { $0 || $1 }
        }
        #expect(!spinnersTimedOut, "no answer within 60 s while the cooperative threads were busy")
        await #expect(throws: DatabaseUnavailable.busy) { try await waiting.value }
        let cancel = "SELECT pg_cancel_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND query = 'SELECT pg_sleep(60)'"
        try await onOwnThread { _ = try PostgresConnection(url).query(cancel) }
        await #expect(throws: PostgresError.self) { try await slow.value }
        #expect(try await database.run { try $0.query("SELECT 1").rows } == [["1"]], "the connection serves again")
    }

    /// A connection that finished a statement hands itself to the next one in line on its own
    /// thread: were it to wait for a cooperative thread, a busy pool would leave the line waiting
    /// past `acquireTimeout` (reads answered 503 on a node whose pool was busy).
    @Test func statementsInLineRunWhileEveryCooperativeThreadIsBusy() async throws {
        let database = try BlockingDatabase(try PostgresServer.current!.makeDatabase(), connections: 1, acquireTimeout: .seconds(5))
        let submitted = Counter()
        let ran = Counter()
        let reads = (0..<4).map { _ in
            Task {
                submitted.add()  // nothing suspends between here and the statement joining the line
                try await database.run { connection in
                    _ = try connection.query("SELECT pg_sleep(0.2)")
                    ran.add()
                }
            }
        }
        while submitted.count < reads.count { try await Task.sleep(for: .milliseconds(10)) }
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<ProcessInfo.processInfo.activeProcessorCount {
                group.addTask {
                    // Runnable, so the thread stays taken, yet yielding the core to the connection.
                    let deadline = ContinuousClock.now + .seconds(15)
                    while ran.count < reads.count && ContinuousClock.now < deadline { sched_yield() }
                }
            }
        }
        for read in reads { try await read.value }
        #expect(ran.count == reads.count)
    }
}

/// Counted from any thread.
private final class Counter: Sendable {
    private let value = Atomic<Int>(0)

    func add() { value.add(1, ordering: .releasing) }
    var count: Int { value.load(ordering: .acquiring) }
}
