import CXXHash
import Synchronization

/// The ids of the last `capacity` events, to count a redelivered event once (delivery is
/// at-least-once). Oldest ids are forgotten first. Ids are kept as their 128-bit XXH3 hash, so
/// memory is 16 bytes an id however long the ids a sender makes up (two ids colliding is a
/// 2⁻¹²⁸-scale chance per pair).
public final class RecentEventIDs: Sendable {
    /// How many ids a node remembers unless configured otherwise.
    public static let defaultCapacity = 100_000

    private struct Fingerprint: Hashable {
        var low: UInt64
        var high: UInt64

        init(_ id: String) {
            var id = id
            let hash = id.withUTF8 { XXH3_128bits($0.baseAddress, $0.count) }
            (low, high) = (hash.low64, hash.high64)
        }
    }

    private struct State {
        var members: Set<Fingerprint> = []
        var order: [Fingerprint] = []
        var next = 0
    }

    private let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = defaultCapacity) {
        self.capacity = max(1, capacity)
    }

    /// Remembers `id`; false when it was already remembered.
    public func insert(_ id: String) -> Bool {
        let fingerprint = Fingerprint(id)
        return state.withLock { state in
            guard state.members.insert(fingerprint).inserted else { return false }
            if state.order.count < capacity {
                state.order.append(fingerprint)
            } else {
                state.members.remove(state.order[state.next])
                state.order[state.next] = fingerprint
                state.next = (state.next + 1) % capacity
            }
            return true
        }
    }
}
