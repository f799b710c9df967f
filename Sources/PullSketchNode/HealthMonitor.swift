import Logging
import Prometheus
import PullSketchBlocking
import PullSketchCore
import PullSketchRedis
import PullSketchStore
public import ServiceLifecycle
import Synchronization

/// Whether Redis and PostgreSQL answer, PostgreSQL with every migration this build has, checked in
/// the background every interval, so `/healthz` answers at once from the latest result and a
/// server that hangs stalls only the check. A result older than three intervals counts as
/// unavailable: a check that never returns is a failure too.
/// Redis is asked its `TIME` too, which sets the node's clock (`NodeClock`) by Redis's.
public final class HealthMonitor: Service, Sendable {
    /// What the last check found, and when.
    struct Status: Sendable {
        var redis = false
        var postgres = false
        var checkedAt: ContinuousClock.Instant?
    }

    private let probe: Probe
    private let interval: Duration
    private let latest = Mutex(Status())
    private let clock: NodeClock
    private let clockOffset: Gauge
    private let logger: Logger

    /// A host clock this far from Redis's is set by it (and logged): farther than network delay
    /// and NTP's usual error explain. Nearer, the node keeps its own, free of measuring jitter.
    static let clockOffsetToAdopt: Int64 = 1_000

    init(redis: RedisEndpoint, database: BlockingDatabase, clock: NodeClock, clockOffset: Gauge, interval: Duration = .seconds(5), logger: Logger) {
        probe = Probe(redis: redis, database: database)
        self.clock = clock
        self.clockOffset = clockOffset
        self.interval = interval
        self.logger = logger
    }

    public func run() async throws {
        await cancelWhenGracefulShutdown { [self] in
            while !Task.isCancelled {
                await check()
                try? await Task.sleep(for: interval)
            }
        }
    }

    /// Checks both now and keeps the result; logs what changed, with the error.
    public func check() async {
        let (redis, postgres, offset) = await probe.check()
        if let offset { adopt(offset) }
        let now = ContinuousClock.now
        let previous = latest.withLock { status in
            defer { status = Status(redis: redis == nil, postgres: postgres == nil, checkedAt: now) }
            return status
        }
        for (name, error, wasUp) in [("redis", redis, previous.redis), ("postgres", postgres, previous.postgres)] {
            if let error, wasUp || previous.checkedAt == nil {
                logger.error("health check failed", metadata: ["service": "\(name)", "error": "\(error)"])
            } else if error == nil, !wasUp, previous.checkedAt != nil {
                logger.info("health check passes again", metadata: ["service": "\(name)"])
            }
        }
    }

    /// Sets the node's clock by Redis's when the two are a second or more apart, and says so when
    /// that starts, changes by a second or more, or ends.
    private func adopt(_ offset: Int64) {
        clockOffset.set(Double(offset) / 1_000)
        let adopted = abs(offset) >= Self.clockOffsetToAdopt ? offset : 0
        let previous = clock.offsetMilliseconds
        clock.measured(offsetMilliseconds: adopted)
        if adopted != 0, previous == 0 || abs(adopted - previous) >= Self.clockOffsetToAdopt {
            logger.warning(
                "this host's clock differs from redis's: events are dated and clamped by redis's clock",
                metadata: ["redis_minus_host_ms": "\(offset)"]
            )
        } else if adopted == 0, previous != 0 {
            logger.info("this host's clock agrees with redis's again", metadata: ["redis_minus_host_ms": "\(offset)"])
        }
    }

    /// The latest result; both unavailable before the first check and when it is stale.
    var status: Status {
        let status = latest.withLock { $0 }
        guard let checkedAt = status.checkedAt, ContinuousClock.now - checkedAt <= interval * 3 else { return Status() }
        return status
    }

    /// The checks themselves, on their own executor: a Redis that never replies holds this actor,
    /// nothing else.
    private actor Probe {
        private let redis: RedisEndpoint
        private let database: BlockingDatabase
        private nonisolated let executor = BlockingExecutor(label: "pullsketch.health")
        nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }

        init(redis: RedisEndpoint, database: BlockingDatabase) {
            self.redis = redis
            self.database = database
        }

        /// The error of each check, nil when it answered, and Redis's clock minus this host's
        /// (in milliseconds, against the middle of the round trip) when Redis told its `TIME`.
        /// `PING` says whether Redis answers, so a server that refuses `TIME` is still up.
        func check() async -> (redis: String?, postgres: String?, clockOffset: Int64?) {
            var redisError: String?
            var clockOffset: Int64?
            do {
                let connection = try connectRedis(redis)
                let sent = Timestamp.now().millisecondsSinceEpoch
                let replies = try connection.pipeline([["PING"], ["TIME"]].map { $0.map { Array($0.utf8) } })
                let received = Timestamp.now().millisecondsSinceEpoch
                if case .error(let message) = replies[0] { throw RedisError(.server, message) }
                if case .array(let parts) = replies[1], parts.count == 2, case .bulk(let seconds) = parts[0], case .bulk(let micros) = parts[1],
                    let whole = Int64(String(decoding: seconds, as: UTF8.self)), let fraction = Int64(String(decoding: micros, as: UTF8.self))
                {
                    clockOffset = whole * 1_000 + fraction / 1_000 - (sent + (received - sent) / 2)
                }
            } catch {
                redisError = "\(error)"
            }
            var postgresError: String?
            do {
                try await database.run { try Schema.requireCurrent($0) }
            } catch {
                postgresError = "\(error)"
            }
            return (redisError, postgresError, clockOffset)
        }
    }
}
