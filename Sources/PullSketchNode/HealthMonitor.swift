import Logging
import PullSketchBlocking
import PullSketchRedis
import PullSketchStore
public import ServiceLifecycle
import Synchronization

/// Whether Redis and PostgreSQL answer, checked in the background every interval, so `/healthz`
/// answers at once from the latest result and a server that hangs stalls only the check. A result
/// older than three intervals counts as unavailable: a check that never returns is a failure too.
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
    private let logger: Logger

    init(redis: RedisEndpoint, database: BlockingDatabase, interval: Duration = .seconds(5), logger: Logger) {
        probe = Probe(redis: redis, database: database)
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
        let (redis, postgres) = await probe.check()
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

        /// The error of each check, nil when it answered.
        func check() async -> (redis: String?, postgres: String?) {
            var redisError: String?
            do {
                _ = try connectRedis(redis).command(["PING"])
            } catch {
                redisError = "\(error)"
            }
            var postgresError: String?
            do {
                _ = try await database.run { try $0.query("SELECT 1") }
            } catch {
                postgresError = "\(error)"
            }
            return (redisError, postgresError)
        }
    }
}
