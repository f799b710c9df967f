import Synchronization

/// The ids of the last `capacity` events, to count a redelivered event once (delivery is
/// at-least-once). Oldest ids are forgotten first.
public final class RecentEventIDs: Sendable {
    /// How many ids a node remembers unless configured otherwise.
    public static let defaultCapacity = 100_000

    private struct State {
        var members: Set<String> = []
        var order: [String] = []
        var next = 0
    }

    private let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = defaultCapacity) {
        self.capacity = max(1, capacity)
    }

    /// Remembers `id`; false when it was already remembered.
    public func insert(_ id: String) -> Bool {
        state.withLock { state in
            guard state.members.insert(id).inserted else { return false }
            if state.order.count < capacity {
                state.order.append(id)
            } else {
                state.members.remove(state.order[state.next])
                state.order[state.next] = id
                state.next = (state.next + 1) % capacity
            }
            return true
        }
    }
}
