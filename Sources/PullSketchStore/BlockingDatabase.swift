import Dispatch
import Synchronization
public import PullSketchPostgres

/// PostgreSQL for async code: a few blocking libpq connections, each used on its own serial
/// queue, so no event-loop or cooperative thread ever waits on the database. A connection that
/// broke reconnects on its next statement.
public final class BlockingDatabase: Sendable {
    private let lanes: [Lane]
    private let next = Atomic<UInt>(0)

    /// Opens `connections` connections with `connectionString`.
    public init(_ connectionString: String, connections: Int = 4) throws {
        lanes = try (0..<max(1, connections)).map { index in
            Lane(connection: try PostgresConnection(connectionString), queue: DispatchQueue(label: "pullsketch.database.\(index)"))
        }
    }

    /// Runs `body` with one of the connections, off the caller's thread.
    public func run<Value: Sendable>(_ body: @escaping @Sendable (PostgresConnection) throws -> Value) async throws -> Value {
        let lane = lanes[Int(next.wrappingAdd(1, ordering: .relaxed).oldValue % UInt(lanes.count))]
        return try await withCheckedThrowingContinuation { continuation in
            lane.queue.async { continuation.resume(with: Result { try body(lane.connection) }) }
        }
    }

    /// A connection with the queue it is used on; `@unchecked`: only ever touched on that queue.
    private struct Lane: @unchecked Sendable {
        let connection: PostgresConnection
        let queue: DispatchQueue
    }
}
