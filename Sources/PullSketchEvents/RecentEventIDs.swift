import CXXHash
import Synchronization

/// An event id as its 128-bit XXH3 hash: 16 bytes however long the id a sender makes up (two ids
/// colliding is a 2⁻¹²⁸-scale chance per pair).
public struct EventFingerprint: Hashable, Sendable {
    public let low: UInt64
    public let high: UInt64

    public init(_ id: String) {
        var id = id
        let hash = id.withUTF8 { XXH3_128bits($0.baseAddress, $0.count) }
        (low, high) = (hash.low64, hash.high64)
    }

    /// Appends the hash as 32 lowercase hex digits, `high` first.
    public func appendHex(to bytes: inout [UInt8]) {
        for word in [high, low] {
            for shift in stride(from: 60, through: 0, by: -4) {
                let digit = UInt8(truncatingIfNeeded: word >> UInt64(shift)) & 0xF
                bytes.append(digit < 10 ? UInt8(ascii: "0") + digit : UInt8(ascii: "a") + digit - 10)
            }
        }
    }
}

/// The ids of the last `capacity` events, to count a redelivered event once (delivery is
/// at-least-once). Oldest ids are forgotten first. Ids are kept as their `EventFingerprint`, so
/// memory is 16 bytes an id however long the ids.
public final class RecentEventIDs: Sendable {
    /// How many ids a node remembers unless configured otherwise.
    public static let defaultCapacity = 100_000

    private struct State {
        var members: Set<EventFingerprint> = []
        var order: [EventFingerprint] = []
        var next = 0
    }

    private let capacity: Int
    private let state = Mutex(State())

    public init(capacity: Int = defaultCapacity) {
        self.capacity = max(1, capacity)
    }

    /// Remembers `id`; false when it was already remembered.
    public func insert(_ id: String) -> Bool {
        insert(EventFingerprint(id))
    }

    /// Remembers an id by its fingerprint; false when it was already remembered.
    public func insert(_ fingerprint: EventFingerprint) -> Bool {
        state.withLock { state in
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
