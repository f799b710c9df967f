public import Logging
public import PullSketchCore
import PullSketchPostgres
public import PullSketchStore
public import ServiceLifecycle
import Synchronization

/// Turns Quay's pulls into tracker events: names each repository id from Quay's database and
/// records the pull. Never blocks its caller (a network event loop): a pull whose repository is
/// named already is recorded at once; the others wait in a bounded queue that `run()` resolves
/// with one query per batch of ids. Names are re-read every `refreshInterval`, so a renamed
/// repository's pulls move to its new name; an id Quay does not have is remembered as unknown for
/// the same interval, so unknown ids cost no query each.
///
/// Every name an id has had is stored in `quay_repository_names` before any pull is recorded under
/// it: the projection into Quay's tables sums a Quay repository's statistics over all its names,
/// so a rename loses nothing there.
public final class QuayPullIntake: Service, Sendable {
    /// Most pulls waiting for names; beyond it pulls are dropped and counted.
    public static let queueCapacity = 100_000
    /// Most ids remembered as unknown; a client inventing ids starts the memory over, no more.
    static let unknownCapacity = 100_000
    static let idsPerQuery = 1_000

    private struct State {
        var names: [Int64: RepositoryName] = [:]
        /// Ids Quay's database lacked, with the time to ask again.
        var unknown: [Int64: ContinuousClock.Instant] = [:]
        var waiting: [QuayPull] = []
    }

    private let tracker: PullTracker
    private let quay: BlockingDatabase
    private let statistics: BlockingDatabase
    private let refreshInterval: Duration
    private let state = Mutex(State())
    private let signal: AsyncStream<Void>.Continuation
    private let signals: AsyncStream<Void>
    private let metrics = QuayMetrics()
    private let logger: Logger

    /// `quay` reaches Quay's `repository` and `"user"` tables (read only), `statistics` PullSketch's.
    public init(tracker: PullTracker, quay: BlockingDatabase, statistics: BlockingDatabase, refreshInterval: Duration = .seconds(60), logger: Logger) {
        self.tracker = tracker
        self.quay = quay
        self.statistics = statistics
        self.refreshInterval = refreshInterval
        self.logger = logger
        (signals, signal) = AsyncStream.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    /// Records the pulls whose repositories are named, queues the rest for `run()`.
    public func accept(_ pulls: [QuayPull]) {
        guard !pulls.isEmpty else { return }
        let now = ContinuousClock.now
        var ready: [(QuayPull, RepositoryName)] = []
        var unknown = 0, full = 0, queued = false
        state.withLock { state in
            for pull in pulls {
                if let name = state.names[pull.repositoryID] {
                    ready.append((pull, name))
                } else if let retry = state.unknown[pull.repositoryID], retry > now {
                    unknown += pull.count
                } else if state.waiting.count < Self.queueCapacity {
                    state.waiting.append(pull)
                    queued = true
                } else {
                    full += pull.count
                }
            }
        }
        record(ready)
        if unknown > 0 { metrics.dropped(.unknownRepository, count: unknown) }
        if full > 0 { metrics.dropped(.queueFull, count: full) }
        if queued { signal.yield() }
    }

    /// Names waiting pulls as they arrive and re-reads every known name each `refreshInterval`,
    /// until a graceful shutdown.
    public func run() async throws {
        try? await cancelWhenGracefulShutdown { [self] in
            try await withThrowingDiscardingTaskGroup { group in
                group.addTask {
                    for await _ in self.signals {
                        while await !self.nameWaitingPulls() {
                            try await Task.sleep(for: .seconds(1))
                        }
                    }
                }
                group.addTask {
                    while true {
                        try await Task.sleep(for: self.refreshInterval)
                        await self.refreshNames()
                    }
                }
            }
        }
    }

    /// Pulls that were accepted but wait for a name.
    public var waitingCount: Int {
        state.withLock { $0.waiting.count }
    }

    /// Looks the waiting pulls' ids up and records the pulls; false when Quay's database could not
    /// be read (the pulls stay queued).
    private func nameWaitingPulls() async -> Bool {
        let waiting = state.withLock { state in
            defer { state.waiting.removeAll() }
            return state.waiting
        }
        guard !waiting.isEmpty else { return true }
        let ids = Set(waiting.map(\.repositoryID))
        let found: [Int64: Result<RepositoryName, ValidationError>]
        do {
            found = try await lookUp(Array(ids))
        } catch {
            logger.warning("Quay's database unreachable: pulls wait for their repository names", metadata: ["error": "\(error)"])
            let overflow = state.withLock { state in
                let all = waiting + state.waiting
                state.waiting = Array(all.prefix(Self.queueCapacity))
                return all.dropFirst(Self.queueCapacity).reduce(0) { $0 + $1.count }
            }
            if overflow > 0 { metrics.dropped(.queueFull, count: overflow) }
            metrics.waiting.record(waitingCount)
            return false
        }
        let retry = ContinuousClock.now + refreshInterval
        var ready: [(QuayPull, RepositoryName)] = []
        var unknown = 0, invalid = 0
        state.withLock { state in
            if state.unknown.count + ids.count > Self.unknownCapacity { state.unknown.removeAll() }
            for id in ids {
                switch found[id] {
                case .success(let name)?: state.names[id] = name
                case .failure?, nil: state.unknown[id] = retry
                }
            }
        }
        for pull in waiting {
            switch found[pull.repositoryID] {
            case .success(let name)?: ready.append((pull, name))
            case .failure?: invalid += pull.count
            case nil: unknown += pull.count
            }
        }
        record(ready)
        if unknown > 0 { metrics.dropped(.unknownRepository, count: unknown) }
        if invalid > 0 { metrics.dropped(.invalidRepositoryName, count: invalid) }
        metrics.waiting.record(waitingCount)
        return true
    }

    /// Re-reads the name of every id seen, so renames and deletions in Quay take effect; forgets
    /// unknown ids whose time is up.
    private func refreshNames() async {
        let ids = state.withLock { Array($0.names.keys) }
        do {
            let found = try await lookUp(ids)
            let now = ContinuousClock.now
            state.withLock { state in
                for id in ids {
                    let old = state.names[id]
                    state.names[id] = try? found[id]?.get()
                    if let old, let new = state.names[id], old != new {
                        logger.info("Quay repository renamed", metadata: ["id": "\(id)", "from": "\(old)", "to": "\(new)"])
                    }
                }
                state.unknown = state.unknown.filter { $0.value > now }
            }
        } catch {
            logger.warning("could not refresh Quay repository names", metadata: ["error": "\(error)"])
        }
    }

    /// Quay's `namespace/name` of each id it has, each valid one stored in `quay_repository_names`.
    private func lookUp(_ ids: [Int64]) async throws -> [Int64: Result<RepositoryName, ValidationError>] {
        var names: [Int64: Result<RepositoryName, ValidationError>] = [:]
        for start in stride(from: 0, to: ids.count, by: Self.idsPerQuery) {
            let chunk = Array(ids[start..<min(start + Self.idsPerQuery, ids.count)])
            let rows = try await quay.run { connection in
                try connection.query(
                    """
                    SELECT r.id, n.username || '/' || r.name AS name
                    FROM public.repository r JOIN public."user" n ON n.id = r.namespace_user_id
                    WHERE r.id = ANY($1::bigint[])
                    """,
                    [PostgresArray.literal(chunk)]
                ).namedRows.map { (try $0.decode("id", as: Int64.self), try $0.decode("name", as: String.self)) }
            }
            for (id, name) in rows {
                names[id] = Result { () throws(ValidationError) in try RepositoryName(name) }
            }
        }
        let valid = names.compactMap { id, name in (try? name.get()).map { (id, $0.value) } }
        if !valid.isEmpty {
            _ = try await statistics.run { connection in
                try connection.query(
                    """
                    INSERT INTO quay_repository_names (quay_repository_id, name)
                    SELECT * FROM unnest($1::bigint[], $2::text[]) ON CONFLICT DO NOTHING
                    """,
                    [PostgresArray.literal(valid.map(\.0)), PostgresArray.literal(valid.map(\.1))]
                )
            }
        }
        return names
    }

    private func record(_ pulls: [(QuayPull, RepositoryName)]) {
        var total = 0
        for (pull, name) in pulls {
            let event = pull.event(in: name)
            for _ in 0..<pull.count { tracker.record(event) }
            total += pull.count
        }
        if total > 0 { metrics.pulls.increment(by: total) }
    }
}
