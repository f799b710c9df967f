import PullSketchConfig
import PullSketchCore
import PullSketchNode
import PullSketchReconciler
import PullSketchRedis
import PullSketchTestSupport
import Testing

@Suite struct PullSketchConfigurationTests {
    @Test func defaultsAreDocumented() {
        let configuration = PullSketchConfiguration()
        #expect(configuration.tracker.isEnabled == false)
        #expect(configuration.redis == RedisEndpoint(host: "127.0.0.1", port: 6379, database: 0))
        #expect(configuration.database == "")
        #expect(configuration.flusher.mergeInterval == .seconds(2))
        #expect(configuration.reconciler == ReconcilerConfiguration(interval: .seconds(5), leaseDuration: .seconds(15), workers: 1))
    }

    @Test func readsAQuayConfigYAMLAndIgnoresOtherKeys() throws {
        let configuration = try PullSketchConfiguration(yaml: """
            SERVER_HOSTNAME: quay.example.com
            FEATURE_IMAGE_PULL_STATS: true
            USER_EVENTS_REDIS: {host: events.internal, port: 6380}
            PULL_METRICS_REDIS:
              host: metrics.internal
              port: 6390
              password: secret
              db: 3
            PULLSKETCH:
              counting_rule: quay
              hot_capacity: 1000
              tail_names: 4096
              shards: 2
              stripes: 4
              core_windows: 2
              merge_interval_ms: 500
              database_url: postgresql://stats@db.internal/pullsketch
              reconcile_interval_ms: 2500
              lease_ms: 30000
              reconcile_workers: 3
            """)
        #expect(configuration.tracker.isEnabled)
        #expect(configuration.tracker.countingRule == .quayAuditLog)
        #expect(configuration.tracker.hotCapacity == 1_000 && configuration.tracker.tailNameCapacity == 4_096)
        #expect(configuration.tracker.shardCount == 2 && configuration.tracker.stripeCount == 4)
        #expect(configuration.tracker.coreWindowCount == 2)
        #expect(configuration.redis == RedisEndpoint(host: "metrics.internal", port: 6390, password: "secret", database: 3))
        #expect(configuration.flusher.mergeInterval == .milliseconds(500))
        #expect(configuration.database == "postgresql://stats@db.internal/pullsketch")
        #expect(configuration.reconciler.interval == .milliseconds(2_500))
        #expect(configuration.reconciler.leaseDuration == .seconds(30))
        #expect(configuration.reconciler.workers == 3)
    }

    @Test func readsTheNodeSettings() throws {
        let configuration = try PullSketchConfiguration(yaml: """
            FEATURE_IMAGE_PULL_STATS: true
            PULLSKETCH:
              http_port: 9090
              webhook_secret: 0123456789abcdef0123
              read_tokens:
                - {token: reader-0123456789abcdef, repositories: ["team/*"]}
            """)
        #expect(configuration.node.port == 9090 && configuration.tracker.isEnabled)
        #expect(configuration.node.webhookSecret == "0123456789abcdef0123")
        #expect(configuration.node.readAuth == .tokens([ReaderToken(token: "reader-0123456789abcdef", repositories: ["team/*"])]))
        let open = try configuration.applying(environment: ["PULLSKETCH_READ_AUTH": "none", "FEATURE_IMAGE_PULL_STATS": "false"])
        #expect(open.node.readAuth == .none && !open.tracker.isEnabled)
        let fromEnvironment = try PullSketchConfiguration().applying(environment: ["PULLSKETCH_READ_TOKENS": "reader-0123456789abcdef=team/*,ci/*"])
        #expect(fromEnvironment.node.readAuth == .tokens([ReaderToken(token: "reader-0123456789abcdef", repositories: ["team/*", "ci/*"])]))
    }

    @Test func fallsBackToUserEventsRedis() throws {
        let configuration = try PullSketchConfiguration(yaml: "USER_EVENTS_REDIS: {host: events.internal, port: 6380}")
        #expect(configuration.redis.host == "events.internal")
        #expect(configuration.redis.port == 6380)
    }

    @Test func environmentOverridesTheFile() throws {
        let file = try PullSketchConfiguration(yaml: "FEATURE_IMAGE_PULL_STATS: true\nPULL_METRICS_REDIS: {host: a, port: 1}")
        let configuration = try file.applying(environment: [
            "FEATURE_IMAGE_PULL_STATS": "false",
            "PULL_METRICS_REDIS_PORT": "7000",
            "PULLSKETCH_SKETCH_WIDTH": "8192",
            "PULLSKETCH_COUNTING_RULE": "resolutions",
            "PULLSKETCH_DATABASE_URL": "host=127.0.0.1 dbname=stats",
            "PULLSKETCH_LEASE_MS": "1000",
            "PULLSKETCH_RECONCILE_WORKERS": "2",
        ])
        #expect(configuration.database == "host=127.0.0.1 dbname=stats")
        #expect(configuration.reconciler.leaseDuration == .seconds(1))
        #expect(configuration.reconciler.workers == 2)
        #expect(!configuration.tracker.isEnabled)
        #expect(configuration.redis.host == "a" && configuration.redis.port == 7000)
        #expect(configuration.tracker.sketch.width == 8_192)
    }

    @Test func readsTheQuaySettingsAndPullSketchsOwnRedisOverPullMetricsRedis() throws {
        let configuration = try PullSketchConfiguration(yaml: """
            PULL_METRICS_REDIS: {host: pullsketch.internal, port: 6380, password: quay-side, db: 1}
            PULLSKETCH:
              redis: {host: redis.internal, port: 6379}
              resp_listen: 0.0.0.0:6380
              resp_password: resp-secret
              quay: {database_url: "host=quaydb dbname=quay", projection: true, names_refresh_ms: 5000}
            """)
        #expect(configuration.redis == RedisEndpoint(host: "redis.internal", port: 6379))
        let endpoint = try #require(configuration.quay.endpoint)
        #expect(endpoint.host == "0.0.0.0" && endpoint.port == 6380 && endpoint.session.password == "resp-secret")
        #expect(configuration.quay.databaseURL == "host=quaydb dbname=quay" && configuration.quay.projection)
        #expect(configuration.quay.namesRefreshInterval == .seconds(5))
        #expect(PullSketchConfiguration().quay.endpoint == nil && !PullSketchConfiguration().quay.projection)

        let overridden = try configuration.applying(environment: [
            "PULLSKETCH_RESP_PORT": "7000", "PULLSKETCH_QUAY_PROJECTION": "false", "PULLSKETCH_QUAY_NAMES_REFRESH_MS": "2000",
        ])
        #expect(overridden.quay.endpoint?.host == "0.0.0.0" && overridden.quay.endpoint?.port == 7000)
        #expect(overridden.quay.endpoint?.session.password == "resp-secret")
        #expect(!overridden.quay.projection && overridden.quay.namesRefreshInterval == .seconds(2))
        let fromEnvironment = try PullSketchConfiguration().applying(environment: ["PULLSKETCH_RESP_PORT": "6380", "PULLSKETCH_RESP_PASSWORD": "pw"])
        #expect(fromEnvironment.quay.endpoint?.host == "127.0.0.1" && fromEnvironment.quay.endpoint?.session.password == "pw")
        #expect(fromEnvironment.quay.endpoint?.session.username == "default", "AUTH <password> names the default user")
        let aclUser = try PullSketchConfiguration(yaml: "PULLSKETCH: {resp_listen: '127.0.0.1:6380', resp_password: pw, resp_username: quay}")
        #expect(aclUser.quay.endpoint?.session.username == "quay")
        #expect(try fromEnvironment.applying(environment: ["PULLSKETCH_RESP_USERNAME": "quay"]).quay.endpoint?.session.username == "quay")
    }

    @Test func aRedisClusterIsReadWithItsNodesAndGetsTwelveShardsUnlessTold() throws {
        let cluster = try PullSketchConfiguration(yaml: """
            PULLSKETCH:
              redis: {host: redis-0.internal, port: 7000, cluster_nodes: ['redis-0.internal:7000', 'redis-1.internal:7000']}
            """)
        #expect(cluster.redis.clusterNodes == ["redis-0.internal:7000", "redis-1.internal:7000"])
        #expect(cluster.tracker.shardCount == 12 && cluster.tracker.stripeCount == 24)
        let told = try PullSketchConfiguration(yaml: "PULLSKETCH: {shards: 4, stripes: 8, redis: {cluster_nodes: ['a:1']}}")
        #expect(told.tracker.shardCount == 4 && told.tracker.stripeCount == 8)
        let fromEnvironment = try PullSketchConfiguration().applying(environment: ["PULLSKETCH_REDIS_CLUSTER_NODES": "10.0.0.1:7000, 10.0.0.2:7000"])
        #expect(fromEnvironment.redis.clusterNodes == ["10.0.0.1:7000", "10.0.0.2:7000"] && fromEnvironment.tracker.shardCount == 12)
        #expect(PullSketchConfiguration().tracker.shardCount == 4, "a single Redis keeps 4 shards")
    }

    /// A Redis 6 ACL user is read beside its password, from the file and from the environment.
    @Test func aRedisACLUserIsReadBesideItsPassword() throws {
        let file = try PullSketchConfiguration(yaml: "PULLSKETCH: {redis: {host: r, password: pw, username: pullsketch}}")
        #expect(file.redis == RedisEndpoint(host: "r", password: "pw", username: "pullsketch"))
        #expect(file.redis.authentication == ["AUTH", "pullsketch", "pw"] && RedisEndpoint(password: "pw").authentication == ["AUTH", "pw"])
        let quay = try PullSketchConfiguration(yaml: "PULL_METRICS_REDIS: {host: r, password: pw, username: metrics}")
        #expect(quay.redis.username == "metrics")
        let environment = try PullSketchConfiguration().applying(environment: ["PULL_METRICS_REDIS_USERNAME": "u", "PULL_METRICS_REDIS_PASSWORD": "p"])
        #expect(environment.redis.authentication == ["AUTH", "u", "p"])
        #expect(throws: ConfigurationError.self) { try PullSketchConfiguration(yaml: "PULLSKETCH: {redis: {username: pullsketch}}") }
    }

    /// An IPv6 address is read in brackets, as addresses are usually written, or bare, as Redis
    /// Cluster names its nodes; the host is kept bare, as a socket takes it.
    @Test func anIPv6AddressIsReadInBracketsOrBare() throws {
        let configuration = try PullSketchConfiguration(yaml: "PULLSKETCH: {resp_listen: '[::1]:6380', redis: {cluster_nodes: ['[::1]:7000', '::1:7001']}}")
        #expect(configuration.quay.endpoint?.host == "::1" && configuration.quay.endpoint?.port == 6380)
        #expect(configuration.redis.clusterNodes == ["[::1]:7000", "::1:7001"])
        let bare = try PullSketchConfiguration().applying(environment: ["PULLSKETCH_RESP_LISTEN": "::1:6381", "PULLSKETCH_HTTP_HOST": "[::1]"])
        #expect(bare.quay.endpoint?.host == "::1" && bare.quay.endpoint?.port == 6381 && bare.node.host == "::1")
        #expect(RedisEndpoint.address("[::1]:7000")! == ("::1", 7000) && RedisEndpoint.address("::1:7001")! == ("::1", 7001))
        #expect(RedisEndpoint.address("[fe80::1%eth0]:7000")! == ("fe80::1%eth0", 7000))
    }

    @Test(arguments: [
        ("PULLSKETCH: {redis: {db: 2, cluster_nodes: ['a:7000']}}", "PULLSKETCH.redis.db"),
        ("PULLSKETCH: {redis: {cluster_nodes: []}}", "PULLSKETCH.redis.cluster_nodes"),
        ("PULLSKETCH: {redis: {cluster_nodes: ['no-port']}}", "PULLSKETCH.redis.cluster_nodes"),
        ("PULLSKETCH: {redis: {cluster_nodes: [':7000']}}", "PULLSKETCH.redis.cluster_nodes"),
        ("PULL_METRICS_REDIS: {host: a, ssl: true}", "PULL_METRICS_REDIS.ssl"),
        ("PULLSKETCH: {resp_listen: 6380}", "PULLSKETCH.resp_listen"),
        ("PULLSKETCH: {resp_listen: 'host:99999'}", "PULLSKETCH.resp_listen"),
        ("PULLSKETCH: {resp_listen: '[]:6380'}", "PULLSKETCH.resp_listen"),
        ("PULLSKETCH: {resp_password: pw}", "PULLSKETCH.resp_password"),
        ("PULLSKETCH: {resp_listen: '127.0.0.1:6380', resp_username: quay}", "PULLSKETCH.resp_username"),
        ("PULLSKETCH: {resp_listen: '127.0.0.1:6380', resp_password: pw, resp_username: ''}", "PULLSKETCH.resp_username"),
        ("PULLSKETCH: {redis: {host: a, ssl: true}}", "PULLSKETCH.redis.ssl"),
        ("PULLSKETCH: {quay: {names_refresh_ms: 10}}", "PULLSKETCH.quay.names_refresh_ms"),
        ("PULL_METRICS_REDIS: {port: 70000}", "PULL_METRICS_REDIS.port"),
        ("PULLSKETCH: {counting_rule: sometimes}", "PULLSKETCH.counting_rule"),
        ("PULLSKETCH: {shards: 3}", "PULLSKETCH.stripes"),
        ("PULLSKETCH: {sketch_depth: 0}", "PULLSKETCH.sketch_depth"),
        ("PULLSKETCH: {reconcile_workers: 65}", "PULLSKETCH.reconcile_workers"),
        ("PULLSKETCH: {sketch_width: 67108864, sketch_depth: 3}", "PULLSKETCH.sketch_width"),
        ("FEATURE_IMAGE_PULL_STATS: [1, 2]", "config.yaml"),
        ("PULLSKETCH: {webhook_secret: short}", "PULLSKETCH.webhook_secret"),
        ("PULLSKETCH: {read_auth: maybe}", "PULLSKETCH.read_auth"),
        ("PULLSKETCH: {read_tokens: [{token: reader-0123456789abcdef, repositories: []}]}", "PULLSKETCH.read_tokens"),
        ("PULLSKETCH: {ignored_user_agents: ['trivy/*', '**']}", "PULLSKETCH.ignored_user_agents"),
        ("PULLSKETCH: {ignored_user_agents: ['']}", "PULLSKETCH.ignored_user_agents"),
    ])
    func badFileValuesAreRefusedByKey(yaml: String, key: String) {
        #expect {
            try PullSketchConfiguration(yaml: yaml)
        } throws: { error in
            (error as? ConfigurationError)?.key == key
        }
    }

    @Test(arguments: [
        ("FEATURE_IMAGE_PULL_STATS", "yes please"),
        ("PULL_METRICS_REDIS_DB", "one"),
        ("PULLSKETCH_MERGE_INTERVAL_MS", "5"),
        ("PULLSKETCH_HOT_CAPACITY", "-1"),
        ("PULLSKETCH_CORE_WINDOWS", "0"),
        ("PULLSKETCH_RECONCILE_INTERVAL_MS", "10"),
        ("PULLSKETCH_LEASE_MS", "forever"),
        ("PULLSKETCH_RECONCILE_WORKERS", "0"),
        ("PULLSKETCH_RESP_PORT", "0"),
        ("PULLSKETCH_RESP_PORT", "redis"),
        ("PULLSKETCH_QUAY_PROJECTION", "perhaps"),
        ("PULLSKETCH_REDIS_CLUSTER_NODES", "a:7000,b"),
        ("PULLSKETCH_IGNORED_USER_AGENTS", "trivy/*,,grype/*"),
    ])
    func badEnvironmentValuesAreRefusedByKey(key: String, value: String) {
        #expect {
            try PullSketchConfiguration().applying(environment: [key: value])
        } throws: { error in
            (error as? ConfigurationError)?.key == key
        }
    }

    /// A developer's shell configured for a local node must not reach the programs the tests
    /// start: its variables would override their configuration files.
    @Test func theTestsProgramsDoNotInheritADeploymentsConfiguration() throws {
        let shell = [
            "PATH": "/usr/bin", "PULLSKETCH_POSTGRES_BIN": "/opt/postgres/bin", "PULL_METRICS_REDIS_PORT": "16379",
            "PULLSKETCH_DATABASE_URL": "host=elsewhere", "FEATURE_IMAGE_PULL_STATS": "false", "USER_EVENTS_REDIS_HOST": "elsewhere",
        ]
        let started = ChildProcess.environment(["PULLSKETCH_LIBRARY": ""], inheriting: shell)
        #expect(started == ["PATH": "/usr/bin", "PULLSKETCH_POSTGRES_BIN": "/opt/postgres/bin", "PULLSKETCH_LIBRARY": ""])
        #expect(try PullSketchConfiguration().applying(environment: started) == PullSketchConfiguration())
        #expect(try PullSketchConfiguration().applying(environment: shell) != PullSketchConfiguration(), "the shell's variables do configure")
    }
}

/// Configuration files as an operator might mistype them: every mutation of a full file is read or
/// refused with a message, never a crash.
@Suite struct ConfigurationFuzzTests {
    @Test func theFullExampleIsReadAsWritten() throws {
        let configuration = try PullSketchConfiguration(yaml: String(decoding: try corpus("config")[0], as: UTF8.self))
        #expect(configuration.node.statementTimeout == .seconds(3) && configuration.node.idleTimeout == .seconds(20))
        #expect(configuration.node.maxConcurrentRequests == 64 && configuration.node.metricsToken == "metrics-token-0123456789")
        #expect(configuration.node.forwardedProtoHeader == "X-Forwarded-Proto")
        #expect(configuration.node.ignoredClients.patterns == ["trivy/*", "*grype*"])
        let fromEnvironment = try PullSketchConfiguration().applying(environment: ["PULLSKETCH_IGNORED_USER_AGENTS": "Trivy/*, clair*"])
        #expect(fromEnvironment.node.ignoredClients.patterns == ["Trivy/*", "clair*"])
    }

    @Test func mutatedFilesAreReadOrRefusedWithAMessage() throws {
        var mutator = Mutator(seed: 19, corpus: try corpus("config"))
        var (read, refused) = (0, 0)
        for _ in 0..<800 {
            let text = String(decoding: mutator.next().prefix(64 << 10), as: UTF8.self)
            do {
                _ = try PullSketchConfiguration(yaml: text)
                read += 1
            } catch {
                #expect(!error.description.isEmpty)
                refused += 1
            }
        }
        #expect(read > 0 && refused > 0, "read \(read), refused \(refused)")
    }

    @Test func aBadHeaderNameOrAShortMetricsTokenIsRefused() {
        #expect(throws: ConfigurationError.self) { try PullSketchConfiguration(yaml: "PULLSKETCH: {forwarded_proto_header: 'X Forwarded'}") }
        #expect(throws: ConfigurationError.self) { try PullSketchConfiguration(yaml: "PULLSKETCH: {metrics_token: short}") }
    }
}
