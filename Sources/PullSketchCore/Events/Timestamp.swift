#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A point in time as milliseconds since the Unix epoch, UTC. Every time PullSketch stores is one
/// of these; there is no local time anywhere.
public struct Timestamp: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var millisecondsSinceEpoch: Int64

    public init(millisecondsSinceEpoch: Int64) {
        self.millisecondsSinceEpoch = millisecondsSinceEpoch
    }

    /// The current wall-clock time (`CLOCK_REALTIME`, which is UTC).
    public static func now() -> Timestamp {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return Timestamp(millisecondsSinceEpoch: Int64(time.tv_sec) * 1000 + Int64(time.tv_nsec) / 1_000_000)
    }

    /// The earliest representable time, used as "never".
    public static let distantPast = Timestamp(millisecondsSinceEpoch: .min)

    /// This time moved into [`received` − `maximumDelay`, `received`] (whole seconds of delay): how
    /// an event's reported time is bounded by its arrival, so a sender's clock can neither date a
    /// pull far into the past nor pin it in the future.
    public func clamped(toArrival received: Timestamp, maximumDelay: Duration) -> Timestamp {
        let delay = maximumDelay.components.seconds.multipliedReportingOverflow(by: 1_000)
        let earliest = delay.overflow ? Int64.min : received.millisecondsSinceEpoch.subtractingReportingOverflow(delay.partialValue).partialValue
        return Timestamp(millisecondsSinceEpoch: min(max(millisecondsSinceEpoch, earliest), received.millisecondsSinceEpoch))
    }

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool {
        lhs.millisecondsSinceEpoch < rhs.millisecondsSinceEpoch
    }

    public var description: String { "\(millisecondsSinceEpoch)ms" }
}
