public import PullSketchCore
import PullSketchEvents
public import PullSketchFlusher
public import PullSketchRedis
public import PullSketchNode
public import PullSketchQuay
public import PullSketchReconciler
import Yams

/// Everything a PullSketch process is configured with, every field defaulted. Read from a
/// Quay-style `config.yaml` (`init(yaml:)`), then overridden by environment variables
/// (`applying(environment:)`); docs/operations.md lists every key.
public struct PullSketchConfiguration: Hashable, Sendable {
    /// What counts and how: the feature flag, the counting rule, shards, memory. Every node and
    /// reconciler of a deployment must agree on the rule and the shards.
    public var tracker: TrackerConfiguration
    /// Where the live and sealed batches are. Default `127.0.0.1:6379`, database 0; a Redis Cluster
    /// when `cluster_nodes` lists its nodes.
    public var redis = RedisEndpoint()
    /// Whether `shards` or `stripes` was configured; if not, a cluster gets `clusterShards`.
    private var layoutConfigured = false
    /// The shards and stripes a cluster gets unless configured: 12 shards spread 4/4/4 over the
    /// three masters `redis-cli --cluster create` makes, and each shard's slot can be moved.
    public static let clusterShards = (shards: 12, stripes: 24)
    /// libpq connection string or `postgresql://` URI of the statistics database; empty until
    /// configured.
    public var database = ""
    public var flusher: FlusherConfiguration
    public var reconciler: ReconcilerConfiguration
    /// The HTTP node: listen address, webhook secret, readers. Whether it serves statistics is
    /// the tracker's `isEnabled` (`FEATURE_IMAGE_PULL_STATS`).
    public var node = NodeConfiguration()
    /// Quay's pull-metrics endpoint, its database and the projection into its tables.
    public var quay = QuayConfiguration()

    public init(
        tracker: TrackerConfiguration = TrackerConfiguration(),
        flusher: FlusherConfiguration = FlusherConfiguration(),
        reconciler: ReconcilerConfiguration = ReconcilerConfiguration()
    ) {
        self.tracker = tracker
        self.flusher = flusher
        self.reconciler = reconciler
    }

    /// Reads the keys PullSketch uses from a Quay `config.yaml`; all other keys are ignored.
    /// - `FEATURE_IMAGE_PULL_STATS`: bool
    /// - `PULL_METRICS_REDIS` (falling back to `USER_EVENTS_REDIS`): `host`, `port`, `password`, `username`
    ///   (a Redis 6 ACL user), `db`
    /// - `PULLSKETCH`: `counting_rule` (`resolutions` | `quay`), `hot_capacity`, `tail_names`, `stripes`,
    ///   `core_windows`, `shards`, `sketch_width`, `sketch_depth`, `merge_interval_ms`, `database_url`,
    ///   `reconcile_interval_ms`, `lease_ms`, `reconcile_workers`, `http_host`, `http_port`, `webhook_secret`,
    ///   `max_body_bytes`, `max_event_delay_ms`, `event_id_horizon_ms`, `statement_timeout_ms`,
    ///   `http_idle_timeout_ms`, `max_concurrent_requests`, `metrics_token`, `catalog_queue_capacity`, `forwarded_proto_header`,
    ///   `read_auth` (`tokens` | `none`), `read_tokens` (list of `token` +
    ///   `repositories` patterns), `redis` (PullSketch's own Redis, over `PULL_METRICS_REDIS`, when
    ///   Quay's `PULL_METRICS_REDIS` names PullSketch; `cluster_nodes` for a Redis Cluster), `resp_listen` (`host:port`), `resp_password`, `resp_username`,
    ///   `quay` (`database_url`, `projection`, `names_refresh_ms`), `ignored_user_agents` (list of patterns)
    public init(yaml: String) throws(ConfigurationError) {
        let file: QuayConfigFile
        do {
            file = try YAMLDecoder().decode(QuayConfigFile.self, from: yaml)
        } catch {
            throw ConfigurationError("config.yaml", "\(error)")
        }
        self.init()
        if let enabled = file.featureImagePullStats { tracker.isEnabled = enabled }
        if let redis = file.pullMetricsRedis ?? file.userEventsRedis {
            let key = file.pullMetricsRedis != nil ? "PULL_METRICS_REDIS" : "USER_EVENTS_REDIS"
            if redis.ssl == true {
                throw ConfigurationError("\(key).ssl", "TLS is not supported (Debian's hiredis 0.14 has none); use a TLS proxy on loopback")
            }
            if let host = redis.host { self.redis.host = host }
            try set(\.redis.port, redis.port, key: "\(key).port", valid: 1...65_535)
            if let password = redis.password { self.redis.password = password }
            if let username = redis.username { self.redis.username = username }
            try set(\.redis.database, redis.db, key: "\(key).db", valid: 0...1_000)
        }
        if let section = file.pullSketch {
            if let redis = section.redis {
                if redis.ssl == true { throw ConfigurationError("PULLSKETCH.redis.ssl", "TLS is not supported; use a TLS proxy on loopback") }
                self.redis = RedisEndpoint(host: redis.host ?? "127.0.0.1", password: redis.password, username: redis.username)
                try set(\.redis.port, redis.port, key: "PULLSKETCH.redis.port", valid: 1...65_535)
                try set(\.redis.database, redis.db, key: "PULLSKETCH.redis.db", valid: 0...1_000)
                if let nodes = redis.clusterNodes { self.redis.clusterNodes = try Self.clusterNodes(nodes, key: "PULLSKETCH.redis.cluster_nodes") }
            }
            try apply(section, keyPrefix: "PULLSKETCH.")
        }
    }

    /// This configuration with environment variables applied over it:
    /// `FEATURE_IMAGE_PULL_STATS`, `PULL_METRICS_REDIS_HOST`, `PULL_METRICS_REDIS_PORT`,
    /// `PULL_METRICS_REDIS_PASSWORD`, `PULL_METRICS_REDIS_USERNAME`, `PULL_METRICS_REDIS_DB`, `PULLSKETCH_REDIS_CLUSTER_NODES`
    /// (`host:port,host:port`), `PULLSKETCH_IGNORED_USER_AGENTS` (`pattern,pattern`), and `PULLSKETCH_<KEY>` for every
    /// key of the `PULLSKETCH` section (`PULLSKETCH_HOT_CAPACITY`, ...).
    public func applying(environment: [String: String]) throws(ConfigurationError) -> PullSketchConfiguration {
        var result = self
        if let text = environment["FEATURE_IMAGE_PULL_STATS"] {
            guard let enabled = Bool(text.lowercased()) else {
                throw ConfigurationError("FEATURE_IMAGE_PULL_STATS", "'\(text)' is not true or false")
            }
            result.tracker.isEnabled = enabled
        }
        if let port = try integer(environment, "PULLSKETCH_RESP_PORT"), !(1...65_535).contains(port) {
            throw ConfigurationError("PULLSKETCH_RESP_PORT", "\(port) is outside 1...65535")
        }
        if let host = environment["PULL_METRICS_REDIS_HOST"] { result.redis.host = host }
        try result.set(\.redis.port, try integer(environment, "PULL_METRICS_REDIS_PORT"), key: "PULL_METRICS_REDIS_PORT", valid: 1...65_535)
        if let password = environment["PULL_METRICS_REDIS_PASSWORD"] { result.redis.password = password }
        if let username = environment["PULL_METRICS_REDIS_USERNAME"] { result.redis.username = username }
        try result.set(\.redis.database, try integer(environment, "PULL_METRICS_REDIS_DB"), key: "PULL_METRICS_REDIS_DB", valid: 0...1_000)
        if let text = environment["PULLSKETCH_REDIS_CLUSTER_NODES"] {
            let nodes = text.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            result.redis.clusterNodes = try Self.clusterNodes(nodes, key: "PULLSKETCH_REDIS_CLUSTER_NODES")
        }
        let section = PullSketchSection(
            countingRule: environment["PULLSKETCH_COUNTING_RULE"],
            hotCapacity: try integer(environment, "PULLSKETCH_HOT_CAPACITY"),
            tailNames: try integer(environment, "PULLSKETCH_TAIL_NAMES"),
            stripes: try integer(environment, "PULLSKETCH_STRIPES"),
            coreWindows: try integer(environment, "PULLSKETCH_CORE_WINDOWS"),
            shards: try integer(environment, "PULLSKETCH_SHARDS"),
            sketchWidth: try integer(environment, "PULLSKETCH_SKETCH_WIDTH"),
            sketchDepth: try integer(environment, "PULLSKETCH_SKETCH_DEPTH"),
            mergeIntervalMilliseconds: try integer(environment, "PULLSKETCH_MERGE_INTERVAL_MS"),
            databaseURL: environment["PULLSKETCH_DATABASE_URL"],
            reconcileIntervalMilliseconds: try integer(environment, "PULLSKETCH_RECONCILE_INTERVAL_MS"),
            leaseMilliseconds: try integer(environment, "PULLSKETCH_LEASE_MS"),
            reconcileWorkers: try integer(environment, "PULLSKETCH_RECONCILE_WORKERS"),
            httpHost: environment["PULLSKETCH_HTTP_HOST"],
            httpPort: try integer(environment, "PULLSKETCH_HTTP_PORT"),
            webhookSecret: environment["PULLSKETCH_WEBHOOK_SECRET"],
            maxBodyBytes: try integer(environment, "PULLSKETCH_MAX_BODY_BYTES"),
            maxEventDelayMilliseconds: try integer(environment, "PULLSKETCH_MAX_EVENT_DELAY_MS"),
            eventIDHorizonMilliseconds: try integer(environment, "PULLSKETCH_EVENT_ID_HORIZON_MS"),
            statementTimeoutMilliseconds: try integer(environment, "PULLSKETCH_STATEMENT_TIMEOUT_MS"),
            httpIdleTimeoutMilliseconds: try integer(environment, "PULLSKETCH_HTTP_IDLE_TIMEOUT_MS"),
            maxConcurrentRequests: try integer(environment, "PULLSKETCH_MAX_CONCURRENT_REQUESTS"),
            metricsToken: environment["PULLSKETCH_METRICS_TOKEN"],
            catalogQueueCapacity: try integer(environment, "PULLSKETCH_CATALOG_QUEUE_CAPACITY"),
            forwardedProtoHeader: environment["PULLSKETCH_FORWARDED_PROTO_HEADER"],
            readAuth: environment["PULLSKETCH_READ_AUTH"],
            readTokens: try Self.readTokens(environment["PULLSKETCH_READ_TOKENS"]),
            respListen: environment["PULLSKETCH_RESP_LISTEN"]
                ?? environment["PULLSKETCH_RESP_PORT"].map { "\(result.quay.endpoint?.host ?? "127.0.0.1"):\($0)" },
            respPassword: environment["PULLSKETCH_RESP_PASSWORD"],
            respUsername: environment["PULLSKETCH_RESP_USERNAME"],
            quay: QuaySection(
                databaseURL: environment["PULLSKETCH_QUAY_DATABASE_URL"],
                projection: try boolean(environment, "PULLSKETCH_QUAY_PROJECTION"),
                namesRefreshMilliseconds: try integer(environment, "PULLSKETCH_QUAY_NAMES_REFRESH_MS")
            ),
            ignoredUserAgents: environment["PULLSKETCH_IGNORED_USER_AGENTS"].map { text in
                text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            }
        )
        try result.apply(section, keyPrefix: "PULLSKETCH_")
        return result
    }

    private mutating func apply(_ section: PullSketchSection, keyPrefix: String) throws(ConfigurationError) {
        func key(_ name: String) -> String {
            keyPrefix + (keyPrefix.hasSuffix("_") ? name.uppercased() : name)
        }
        if let text = section.countingRule {
            guard let rule = CountingRule(rawValue: text) else {
                throw ConfigurationError(key("counting_rule"), "'\(text)' is not 'resolutions' or 'quay'")
            }
            tracker.countingRule = rule
        }
        try set(\.tracker.hotCapacity, section.hotCapacity, key: key("hot_capacity"), valid: TrackerConfiguration.hotCapacities)
        try set(\.tracker.tailNameCapacity, section.tailNames, key: key("tail_names"), valid: 0...16_777_216)
        try set(\.tracker.stripeCount, section.stripes, key: key("stripes"), valid: TrackerConfiguration.stripeCounts)
        try set(\.tracker.coreWindowCount, section.coreWindows, key: key("core_windows"), valid: 1...256)
        try set(\.tracker.shardCount, section.shards, key: key("shards"), valid: 1...1_024)
        layoutConfigured = layoutConfigured || section.shards != nil || section.stripes != nil
        try set(\.tracker.sketch.width, section.sketchWidth, key: key("sketch_width"), valid: SketchParameters.widths)
        try set(\.tracker.sketch.depth, section.sketchDepth, key: key("sketch_depth"), valid: SketchParameters.depths)
        try set(\.flusher.mergeInterval, section.mergeIntervalMilliseconds, key: key("merge_interval_ms"), valid: 100...600_000)
        if let url = section.databaseURL { database = url }
        try set(\.reconciler.interval, section.reconcileIntervalMilliseconds, key: key("reconcile_interval_ms"), valid: 100...600_000)
        try set(\.reconciler.leaseDuration, section.leaseMilliseconds, key: key("lease_ms"), valid: 100...3_600_000)
        try set(\.reconciler.workers, section.reconcileWorkers, key: key("reconcile_workers"), valid: 1...64)
        if let host = section.httpHost { node.host = RedisEndpoint.unbracketed(host) }
        try set(\.node.port, section.httpPort, key: key("http_port"), valid: 1...65_535)
        if let secret = section.webhookSecret {
            guard secret.count >= 16 else { throw ConfigurationError(key("webhook_secret"), "shorter than 16 characters") }
            node.webhookSecret = secret
        }
        try set(\.node.maxBodyBytes, section.maxBodyBytes, key: key("max_body_bytes"), valid: 1_024...(64 << 20))
        try set(\.node.maxEventDelay, section.maxEventDelayMilliseconds, key: key("max_event_delay_ms"), valid: 0...604_800_000)
        try set(\.node.eventIDHorizon, section.eventIDHorizonMilliseconds, key: key("event_id_horizon_ms"), valid: 0...86_400_000)
        try set(\.node.statementTimeout, section.statementTimeoutMilliseconds, key: key("statement_timeout_ms"), valid: 100...600_000)
        try set(\.node.idleTimeout, section.httpIdleTimeoutMilliseconds, key: key("http_idle_timeout_ms"), valid: 1_000...3_600_000)
        try set(\.node.maxConcurrentRequests, section.maxConcurrentRequests, key: key("max_concurrent_requests"), valid: 1...100_000)
        try set(\.node.catalogQueueCapacity, section.catalogQueueCapacity, key: key("catalog_queue_capacity"), valid: 1...10_000_000)
        if let patterns = section.ignoredUserAgents {
            do {
                node.ignoredClients = try IgnoredClients(patterns)
            } catch {
                throw ConfigurationError(key("ignored_user_agents"), error.description)
            }
        }
        if let token = section.metricsToken {
            guard token.count >= 16 else { throw ConfigurationError(key("metrics_token"), "shorter than 16 characters") }
            node.metricsToken = token
        }
        if let header = section.forwardedProtoHeader {
            guard HTTPFieldNameCheck.isValid(header) else { throw ConfigurationError(key("forwarded_proto_header"), "'\(header)' is not a header name") }
            node.forwardedProtoHeader = header
        }
        if let tokens = section.readTokens {
            guard tokens.allSatisfy({ $0.token.count >= 16 && !$0.repositories.isEmpty }) else {
                throw ConfigurationError(key("read_tokens"), "every token needs 16 characters or more and at least one repository pattern")
            }
            node.readAuth = .tokens(tokens.map { ReaderToken(token: $0.token, repositories: $0.repositories) })
        }
        switch section.readAuth {
        case nil, "tokens": break
        case "none": node.readAuth = .none
        case let other?: throw ConfigurationError(key("read_auth"), "'\(other)' is not 'tokens' or 'none'")
        }
        if let listen = section.respListen {
            guard let (host, port) = RedisEndpoint.address(listen) else {
                throw ConfigurationError(key("resp_listen"), "'\(listen)' is not host:port")
            }
            var endpoint = quay.endpoint ?? QuayEndpointConfiguration(port: port)
            (endpoint.host, endpoint.port) = (host, port)
            quay.endpoint = endpoint
        }
        if let password = section.respPassword {
            guard !password.isEmpty else { throw ConfigurationError(key("resp_password"), "empty") }
            guard quay.endpoint != nil else { throw ConfigurationError(key("resp_password"), "set without resp_listen") }
            quay.endpoint?.session.password = password
        }
        if let username = section.respUsername {
            guard !username.isEmpty else { throw ConfigurationError(key("resp_username"), "empty") }
            guard quay.endpoint?.session.password != nil else { throw ConfigurationError(key("resp_username"), "set without resp_password") }
            quay.endpoint?.session.username = username
        }
        if let section = section.quay {
            if let url = section.databaseURL { quay.databaseURL = url }
            if let projection = section.projection { quay.projection = projection }
            try set(\.quay.namesRefreshInterval, section.namesRefreshMilliseconds, key: key(keyPrefix.hasSuffix("_") ? "quay_names_refresh_ms" : "quay.names_refresh_ms"), valid: 1_000...86_400_000)
        }
        guard SketchParameters.isDeployable(width: tracker.sketch.width, depth: tracker.sketch.depth) else {
            throw ConfigurationError(
                key("sketch_width"),
                "width × depth is \(tracker.sketch.width * tracker.sketch.depth), above Redis's \(SketchParameters.largestCounterCount) counters"
            )
        }
        if redis.username != nil, redis.password == nil {
            throw ConfigurationError("redis username", "set without a password: AUTH needs both")
        }
        if !redis.clusterNodes.isEmpty {
            guard redis.database == 0 else { throw ConfigurationError("PULLSKETCH.redis.db", "a Redis Cluster has only database 0") }
            if !layoutConfigured { (tracker.shardCount, tracker.stripeCount) = Self.clusterShards }
        }
        guard tracker.stripeCount % tracker.shardCount == 0 else {
            throw ConfigurationError(key("stripes"), "\(tracker.stripeCount) stripes are not a multiple of \(tracker.shardCount) shards")
        }
    }

    /// Cluster nodes as `host:port`, at least one.
    private static func clusterNodes(_ nodes: [String], key: String) throws(ConfigurationError) -> [String] {
        guard !nodes.isEmpty else { throw ConfigurationError(key, "no nodes") }
        for node in nodes where RedisEndpoint.address(node) == nil {
            throw ConfigurationError(key, "'\(node)' is not host:port")
        }
        return nodes
    }

    private mutating func set(_ path: WritableKeyPath<Self, Int>, _ value: Int?, key: String, valid: ClosedRange<Int>) throws(ConfigurationError) {
        guard let value else { return }
        guard valid.contains(value) else { throw ConfigurationError(key, "\(value) is outside \(valid.lowerBound)...\(valid.upperBound)") }
        self[keyPath: path] = value
    }

    /// `token=pattern,pattern;token=pattern`, the environment's form of `read_tokens`.
    private static func readTokens(_ text: String?) throws(ConfigurationError) -> [ReadTokenSection]? {
        guard let text else { return nil }
        return try text.split(separator: ";").map { (entry) throws(ConfigurationError) -> ReadTokenSection in
            let parts = entry.split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { throw ConfigurationError("PULLSKETCH_READ_TOKENS", "expected token=pattern,pattern;…") }
            return ReadTokenSection(token: String(parts[0]), repositories: parts[1].split(separator: ",").map(String.init))
        }
    }

    /// Sets a duration given in milliseconds.
    private mutating func set(_ path: WritableKeyPath<Self, Duration>, _ milliseconds: Int?, key: String, valid: ClosedRange<Int>) throws(ConfigurationError) {
        guard let milliseconds else { return }
        guard valid.contains(milliseconds) else { throw ConfigurationError(key, "\(milliseconds) is outside \(valid.lowerBound)...\(valid.upperBound)") }
        self[keyPath: path] = .milliseconds(milliseconds)
    }

    private func boolean(_ environment: [String: String], _ key: String) throws(ConfigurationError) -> Bool? {
        guard let text = environment[key] else { return nil }
        guard let value = Bool(text.lowercased()) else { throw ConfigurationError(key, "'\(text)' is not true or false") }
        return value
    }

    private func integer(_ environment: [String: String], _ key: String) throws(ConfigurationError) -> Int? {
        guard let text = environment[key] else { return nil }
        guard let value = Int(text) else { throw ConfigurationError(key, "'\(text)' is not a whole number") }
        return value
    }
}

/// The part of a Quay `config.yaml` PullSketch reads.
private struct QuayConfigFile: Decodable {
    var featureImagePullStats: Bool?
    var pullMetricsRedis: RedisSection?
    var userEventsRedis: RedisSection?
    var pullSketch: PullSketchSection?

    enum CodingKeys: String, CodingKey {
        case featureImagePullStats = "FEATURE_IMAGE_PULL_STATS"
        case pullMetricsRedis = "PULL_METRICS_REDIS"
        case userEventsRedis = "USER_EVENTS_REDIS"
        case pullSketch = "PULLSKETCH"
    }
}

private struct RedisSection: Decodable {
    var host: String?
    var port: Int?
    var password: String?
    var username: String?
    var db: Int?
    var ssl: Bool?
    var clusterNodes: [String]?

    enum CodingKeys: String, CodingKey {
        case host, port, password, username, db, ssl
        case clusterNodes = "cluster_nodes"
    }
}

private struct PullSketchSection: Decodable {
    var countingRule: String?
    var hotCapacity: Int?
    var tailNames: Int?
    var stripes: Int?
    var coreWindows: Int?
    var shards: Int?
    var sketchWidth: Int?
    var sketchDepth: Int?
    var mergeIntervalMilliseconds: Int?
    var databaseURL: String?
    var reconcileIntervalMilliseconds: Int?
    var leaseMilliseconds: Int?
    var reconcileWorkers: Int?
    var httpHost: String?
    var httpPort: Int?
    var webhookSecret: String?
    var maxBodyBytes: Int?
    var maxEventDelayMilliseconds: Int?
    var eventIDHorizonMilliseconds: Int?
    var statementTimeoutMilliseconds: Int?
    var httpIdleTimeoutMilliseconds: Int?
    var maxConcurrentRequests: Int?
    var metricsToken: String?
    var catalogQueueCapacity: Int?
    var forwardedProtoHeader: String?
    var readAuth: String?
    var readTokens: [ReadTokenSection]?
    var respListen: String?
    var respPassword: String?
    var respUsername: String?
    var quay: QuaySection?
    var redis: RedisSection?
    var ignoredUserAgents: [String]?

    enum CodingKeys: String, CodingKey {
        case countingRule = "counting_rule"
        case hotCapacity = "hot_capacity"
        case tailNames = "tail_names"
        case stripes
        case coreWindows = "core_windows"
        case shards
        case sketchWidth = "sketch_width"
        case sketchDepth = "sketch_depth"
        case mergeIntervalMilliseconds = "merge_interval_ms"
        case databaseURL = "database_url"
        case reconcileIntervalMilliseconds = "reconcile_interval_ms"
        case leaseMilliseconds = "lease_ms"
        case reconcileWorkers = "reconcile_workers"
        case httpHost = "http_host"
        case httpPort = "http_port"
        case webhookSecret = "webhook_secret"
        case maxBodyBytes = "max_body_bytes"
        case maxEventDelayMilliseconds = "max_event_delay_ms"
        case eventIDHorizonMilliseconds = "event_id_horizon_ms"
        case statementTimeoutMilliseconds = "statement_timeout_ms"
        case httpIdleTimeoutMilliseconds = "http_idle_timeout_ms"
        case maxConcurrentRequests = "max_concurrent_requests"
        case metricsToken = "metrics_token"
        case catalogQueueCapacity = "catalog_queue_capacity"
        case forwardedProtoHeader = "forwarded_proto_header"
        case readAuth = "read_auth"
        case readTokens = "read_tokens"
        case respListen = "resp_listen"
        case respPassword = "resp_password"
        case respUsername = "resp_username"
        case quay
        case redis
        case ignoredUserAgents = "ignored_user_agents"
    }
}

private struct QuaySection: Decodable {
    var databaseURL: String?
    var projection: Bool?
    var namesRefreshMilliseconds: Int?

    enum CodingKeys: String, CodingKey {
        case databaseURL = "database_url"
        case projection
        case namesRefreshMilliseconds = "names_refresh_ms"
    }
}

private struct ReadTokenSection: Decodable {
    var token: String
    var repositories: [String]
}

/// RFC 9110 field names: one or more token characters.
private enum HTTPFieldNameCheck {
    static func isValid(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte | 0x20) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || "!#$%&'*+-.^_`|~".utf8.contains(byte)
        }
    }
}
