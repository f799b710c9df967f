import PullSketchCore
import Synchronization

/// The time a node records and decides by: its host's clock, moved by how far that clock is from
/// Redis's when the health check last measured them a second or more apart. Every node and
/// reconciler meets at the same Redis, so a node whose clock is wrong still dates an event's
/// arrival, and clamps the event's time, by the clock the others use; a node days behind can no
/// longer record today's pulls as days old, which would make a dry run offer tags in use.
final class NodeClock: Sendable {
    private let offset = Atomic<Int64>(0)

    /// Redis's clock minus this host's, in milliseconds.
    var offsetMilliseconds: Int64 { offset.load(ordering: .relaxed) }

    func now() -> Timestamp {
        Timestamp(millisecondsSinceEpoch: Timestamp.now().millisecondsSinceEpoch &+ offsetMilliseconds)
    }

    /// Takes a new measurement of Redis's clock minus this host's.
    func measured(offsetMilliseconds: Int64) {
        offset.store(offsetMilliseconds, ordering: .relaxed)
    }
}
