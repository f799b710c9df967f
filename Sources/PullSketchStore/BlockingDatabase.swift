public import PullSketchPostgres
import PullSketchBlocking
import Synchronization

/// PostgreSQL for async code: a few blocking libpq connections, each owned by an actor on its own
/// `BlockingExecutor`, so no event-loop or cooperative thread ever waits on the database. Statements
/// go to the connections in turn. A connection that broke reconnects on its next statement.
public final class BlockingDatabase: Sendable {
    private let lanes: [Lane]
    private let next = Atomic<UInt>(0)

    /// Opens `connections` connections with `connectionString`.
    public init(_ connectionString: String, connections: Int = 4) throws {
        lanes = try (0..<max(1, connections)).map { index in
            try Lane(connection: PostgresConnection(connectionString), label: "pullsketch.database.\(index)")
        }
    }

    /// Runs `body` with one of the connections, on that connection's executor.
    public func run<Value: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> Value) async throws -> Value {
        try await lanes[Int(next.wrappingAdd(1, ordering: .relaxed).oldValue % UInt(lanes.count))].run(body)
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
