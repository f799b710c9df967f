public import PullSketchPostgres
import Dispatch
import PullSketchBlocking
import Synchronization

/// PostgreSQL for async code: a few blocking libpq connections, each owned by an actor on its own
/// `BlockingExecutor`, so no event-loop or cooperative thread ever waits on the database.
///
/// A statement goes to an idle connection; when none is idle it joins a waiting line, at most
/// `acquireTimeout`, then fails with `DatabaseUnavailable.busy` — one slow query never holds up the
/// others queued behind it. A connection that finishes a statement takes the next one from the line
/// itself, on its own thread: a busy cooperative pool delays only the delivery of results, never
/// the next statement. Every statement runs under the session's `statement_timeout`, so a query
/// the database cannot finish in time is cancelled (SQLSTATE 57014) instead of holding its
/// connection. A body that met a broken connection (the database restarted) runs once more on the
/// reconnected connection before its error reaches the caller.
public final class BlockingDatabase: Sendable {
    private let lanes: [Lane]
    private let line: WaitingLine
    private let acquireTimeout: Duration
    /// Where waits for a connection end: a serial queue, so a thread of its own. Not a sleeping task,
    /// nor `DispatchQueue.global()`: on Linux both wait for a thread of the cooperative pool, and
    /// while busy tasks hold it a waiter sat past its limit (5 s for a 100 ms timer, measured).
    private static let timers = DispatchQueue(label: "pullsketch.database.timeouts")

    /// What every session is set to unless `settings` says otherwise: no JIT compilation. Each
    /// statement reads one repository's rows or writes a chunk, and compiling one whose estimate
    /// crosses `jit_above_cost` (a dry run over a repository's rows as written) took 25–30 ms and
    /// saved less (docs/decisions.md, thirty-second part).
    public static let sessionDefaults = ["jit": "off"]

    /// Opens `connections` connections with `connectionString`; every statement may run for at most
    /// `statementTimeout`, and a statement waits at most `acquireTimeout` for an idle connection.
    /// `settings` are further session settings, over `sessionDefaults`.
    public init(
        _ connectionString: String, connections: Int = 4, statementTimeout: Duration = .seconds(5), acquireTimeout: Duration = .seconds(2),
        settings: [String: String] = [:]
    ) throws {
        let milliseconds = statementTimeout.components.seconds * 1_000 + statementTimeout.components.attoseconds / 1_000_000_000_000_000
        let settings = Self.sessionDefaults.merging(settings) { $1 }.merging(["statement_timeout": String(max(1, milliseconds))]) { $1 }
        let count = max(1, connections)
        let line = WaitingLine(lanes: count)
        lanes = try (0..<count).map { index in
            try Lane(
                connection: PostgresConnection(connectionString, settings: settings),
                index: index, line: line, label: "pullsketch.database.\(index)"
            )
        }
        self.line = line
        self.acquireTimeout = acquireTimeout
    }

    /// Runs `body` with an idle connection, on that connection's executor; once more if the
    /// connection turned out to be broken.
    public func run<Value: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> Value) async throws -> Value {
        let id = line.nextID()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                let statement = Statement(
                    id: id,
                    run: { connection in
                        continuation.resume(
                            with: Result {
                                do {
                                    return try body(connection)
                                } catch let error as PostgresError where error.kind == .connection {
                                    return try body(connection)
                                }
                            })
                    },
                    fail: { continuation.resume(throwing: $0) }
                )
                if let index = line.submit(statement) {
                    let lane = lanes[index]
                    // Straight onto the connection's thread, without waiting for a cooperative one.
                    Task.immediate { await lane.serve(statement) }
                } else {
                    let components = acquireTimeout.components
                    let nanoseconds = Int(components.seconds) * 1_000_000_000 + Int(components.attoseconds / 1_000_000_000)
                    Self.timers.asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [line] in
                        line.withdraw(id)?.fail(DatabaseUnavailable.busy)
                    }
                }
            }
        } onCancel: {
            line.withdraw(id)?.fail(CancellationError())
        }
    }

    /// One connection, reachable only through the actor that owns it.
    private actor Lane {
        private let connection: PostgresConnection
        private let index: Int
        private let line: WaitingLine
        private nonisolated let executor: BlockingExecutor
        nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

        init(connection: PostgresConnection, index: Int, line: WaitingLine, label: String) {
            self.connection = connection
            self.index = index
            self.line = line
            executor = BlockingExecutor(label: label)
        }

        /// Runs `first`, then every statement that waits for a connection, until none is left.
        func serve(_ first: Statement) {
            var next: Statement? = first
            while let statement = next {
                statement.run(connection)
                next = line.next(for: index)
            }
        }
    }
}

/// A caller's body bound to its continuation: run it with a connection, or fail it unrun.
private struct Statement: Sendable {
    let id: UInt64
    let run: @Sendable (PostgresConnection) -> Void
    let fail: @Sendable (any Error) -> Void
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

/// The indices of idle connections, and the statements waiting for one in arrival order.
private final class WaitingLine: Sendable {
    private struct State {
        var idle: [Int]
        var waiting: [Statement] = []
        var lastID: UInt64 = 0
    }

    private let state: Mutex<State>

    init(lanes: Int) {
        state = Mutex(State(idle: Array(0..<lanes)))
    }

    func nextID() -> UInt64 {
        state.withLock { state in
            state.lastID += 1
            return state.lastID
        }
    }

    /// The idle connection that runs `statement` now, or nil once it waits in line.
    func submit(_ statement: Statement) -> Int? {
        state.withLock { state in
            if let index = state.idle.popLast() { return index }
            state.waiting.append(statement)
            return nil
        }
    }

    /// The statement that connection `index` runs next, or nil once the connection is idle.
    func next(for index: Int) -> Statement? {
        state.withLock { state in
            guard !state.waiting.isEmpty else {
                state.idle.append(index)
                return nil
            }
            return state.waiting.removeFirst()
        }
    }

    /// Takes statement `id` out of the line, if it still waits there.
    func withdraw(_ id: UInt64) -> Statement? {
        state.withLock { state in
            guard let position = state.waiting.firstIndex(where: { $0.id == id }) else { return nil }
            return state.waiting.remove(at: position)
        }
    }
}
