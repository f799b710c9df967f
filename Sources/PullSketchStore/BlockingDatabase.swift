public import PullSketchPostgres
import Dispatch
import PullSketchBlocking
import Synchronization

/// PostgreSQL for async code: a few blocking libpq connections, each owned by an actor on its own
/// `BlockingExecutor`, so no event-loop or cooperative thread ever waits on the database.
///
/// A statement goes to an idle connection; when none is idle it waits for one, at most
/// `acquireTimeout`, then fails with `DatabaseUnavailable.busy` — one slow query never holds up the
/// others queued behind it. Every statement runs under the session's `statement_timeout`, so a
/// query the database cannot finish in time is cancelled (SQLSTATE 57014) instead of holding its
/// connection. A body that met a broken connection (the database restarted) runs once more on the
/// reconnected connection before its error reaches the caller.
public final class BlockingDatabase: Sendable {
    private let lanes: [Lane]
    private let idle: IdleLanes
    private let acquireTimeout: Duration

    /// Opens `connections` connections with `connectionString`; every statement may run for at most
    /// `statementTimeout`, and a statement waits at most `acquireTimeout` for an idle connection.
    /// `settings` are further session settings (`jit: off`).
    public init(
        _ connectionString: String, connections: Int = 4, statementTimeout: Duration = .seconds(5), acquireTimeout: Duration = .seconds(2),
        settings: [String: String] = [:]
    ) throws {
        let milliseconds = statementTimeout.components.seconds * 1_000 + statementTimeout.components.attoseconds / 1_000_000_000_000_000
        let settings = settings.merging(["statement_timeout": String(max(1, milliseconds))]) { $1 }
        lanes = try (0..<max(1, connections)).map { index in
            try Lane(
                connection: PostgresConnection(connectionString, settings: settings),
                label: "pullsketch.database.\(index)"
            )
        }
        idle = IdleLanes(count: lanes.count)
        self.acquireTimeout = acquireTimeout
    }

    /// Runs `body` with an idle connection, on that connection's executor; once more if the
    /// connection turned out to be broken.
    public func run<Value: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> Value) async throws -> Value {
        let index = try await idle.acquire(timeout: acquireTimeout)
        defer { idle.release(index) }
        do {
            return try await lanes[index].run(body)
        } catch let error as PostgresError where error.kind == .connection {
            return try await lanes[index].run(body)
        }
    }

    /// One connection, reachable only through the actor that owns it.
    private actor Lane {
        private let connection: PostgresConnection
        private nonisolated let executor: BlockingExecutor
        nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

        init(connection: PostgresConnection, label: String) {
            self.connection = connection
            executor = BlockingExecutor(label: label)
        }

        func run<Value: Sendable>(_ body: @Sendable (PostgresConnection) throws -> Value) throws -> Value {
            try body(connection)
        }
    }
}

/// Why the database did not answer a read; the node turns it into a 503 with `Retry-After`.
public enum DatabaseUnavailable: Error, Hashable, Sendable, CustomStringConvertible {
    /// Every connection stayed busy for the acquire timeout.
    case busy
    /// The statement ran longer than `statement_timeout` and was cancelled.
    case timedOut
    /// The database could not be reached.
    case unreachable

    /// What `error` means for a reader, when it means the database is unavailable.
    public init?(_ error: any Error) {
        if let unavailable = error as? DatabaseUnavailable {
            self = unavailable
        } else if let error = error as? PostgresError, error.kind == .connection {
            self = .unreachable
        } else if let error = error as? PostgresError, error.sqlState == "57014" {
            self = .timedOut
        } else {
            return nil
        }
    }

    public var description: String {
        switch self {
        case .busy: "every database connection is busy"
        case .timedOut: "the query took longer than the statement timeout and was cancelled"
        case .unreachable: "the database cannot be reached"
        }
    }
}

/// The indices of idle connections, and the callers waiting for one in arrival order.
private final class IdleLanes: Sendable {
    private struct State {
        var idle: [Int]
        var waiters: [(id: UInt64, continuation: CheckedContinuation<Int, any Error>)] = []
        var nextID: UInt64 = 0
    }

    private let state: Mutex<State>

    init(count: Int) {
        state = Mutex(State(idle: Array(0..<count)))
    }

    func acquire(timeout: Duration) async throws -> Int {
        if let index = state.withLock({ $0.idle.popLast() }) { return index }
        let id = state.withLock { state in
            state.nextID += 1
            return state.nextID
        }
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let ready = state.withLock { state -> Int? in
                    if let index = state.idle.popLast() { return index }
                    state.waiters.append((id, continuation))
                    return nil
                }
                if let ready { return continuation.resume(returning: ready) }
                // A Dispatch timer, not a task: it fires on time however busy the task pool is.
                let components = timeout.components
                let nanoseconds = Int(components.seconds) * 1_000_000_000 + Int(components.attoseconds / 1_000_000_000)
                DispatchQueue.global().asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
                    removeWaiter(id)?.resume(throwing: DatabaseUnavailable.busy)
                }
            }
        } onCancel: {
            removeWaiter(id)?.resume(throwing: CancellationError())
        }
    }

    func release(_ index: Int) {
        let waiter = state.withLock { state in
            guard !state.waiters.isEmpty else {
                state.idle.append(index)
                return nil as CheckedContinuation<Int, any Error>?
            }
            return state.waiters.removeFirst().continuation
        }
        waiter?.resume(returning: index)
    }

    private func removeWaiter(_ id: UInt64) -> CheckedContinuation<Int, any Error>? {
        state.withLock { state in
            guard let position = state.waiters.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiters.remove(at: position).continuation
        }
    }
}
