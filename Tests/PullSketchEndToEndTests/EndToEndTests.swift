import Foundation
import PullSketchTestSupport
import Testing

/// The whole stack as an operator runs it: `docker-registry` sending notifications to a
/// `pullsketch serve` process, Redis, `pullsketch reconcile`, PostgreSQL — real processes on their
/// own loopback ports, default merge and reconcile intervals — with skopeo and curl as clients.
@Suite(.postgresServer) struct EndToEndTests {
    static let secret = "end-to-end-secret-0123456789"
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// A running stack and its clients.
    final class Stack {
        let redis: RedisServer
        let database: String
        let nodePort: Int
        let node: ChildProcess
        let reconciler: ChildProcess
        let registry: RegistryServer
        let registryUser: RegistryServer.User?
        /// What `pullsketch` commands of the stack run with.
        let environment: [String: String]
        let images = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-images-\(UUID().uuidString)")

        /// `nodeEnvironment` is added to the node's own (a clock shifted with `scripts/clock-shift.c`).
        init(registryDirectory: URL? = nil, registryUser: RegistryServer.User? = nil, nodeEnvironment: [String: String] = [:]) throws {
            redis = try RedisServer(appendOnly: true)
            nodePort = try freeLoopbackPort()
            database = try PostgresServer.current!.makeDatabase()
            environment = [
                "PULLSKETCH_DATABASE_URL": database,
                "PULL_METRICS_REDIS_PORT": String(redis.port),
                "PULLSKETCH_HTTP_PORT": String(nodePort),
                "PULLSKETCH_WEBHOOK_SECRET": EndToEndTests.secret,
                "PULLSKETCH_READ_AUTH": "none",
                "FEATURE_IMAGE_PULL_STATS": "true",
            ]
            let pullsketch = builtProduct("pullsketch")
            // migrate reads the same deployment configuration from a file, as an operator's deploy step would.
            let config = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-\(UUID().uuidString).yaml")
            try Data("PULLSKETCH:\n  database_url: '\(database)'\n".utf8).write(to: config)
            defer { try? FileManager.default.removeItem(at: config) }
            try ChildProcess.run(pullsketch.path, ["migrate", "--config", config.path], environment: [:])
            let logs = FileManager.default.temporaryDirectory
            node = try ChildProcess(
                pullsketch, ["serve"], environment: environment.merging(nodeEnvironment) { $1 }, log: logs.appendingPathComponent("pullsketch-node-\(nodePort).log")
            )
            reconciler = try ChildProcess(pullsketch, ["reconcile"], environment: environment, log: logs.appendingPathComponent("pullsketch-reconciler-\(nodePort).log"))
            try waitUntilListening(port: nodePort, timeout: 30)
            self.registryUser = registryUser
            registry = try RegistryServer(
                notificationURL: "http://127.0.0.1:\(nodePort)/notifications", secret: EndToEndTests.secret, directory: registryDirectory, user: registryUser
            )
        }

        deinit {
            try? FileManager.default.removeItem(at: images)
        }

        /// Builds an OCI layout with `scripts/sample-image` and pushes it to `repository:tag`.
        func push(_ name: String, to reference: String, platforms: [String] = ["linux/amd64"]) throws {
            let layout = images.appendingPathComponent(name).path
            try ChildProcess.run("/bin/bash", [EndToEndTests.root.appendingPathComponent("scripts/sample-image").path, layout, name] + platforms)
            try ChildProcess.run("/usr/bin/skopeo", ["copy", "-q", "--all", "--dest-tls-verify=false", "oci:\(layout):latest", "docker://127.0.0.1:\(registry.port)/\(reference)"])
        }

        /// `skopeo copy` from the registry: a real pull by tag or digest; of an image index, the
        /// index and then the manifest of `architecture` (the machine's by default).
        func pull(_ reference: String, architecture: String? = nil) throws {
            try FileManager.default.createDirectory(at: images, withIntermediateDirectories: true)
            let target = images.appendingPathComponent("pulled-\(UUID().uuidString)").path
            let credentials = registryUser.map { ["--src-creds", "\($0.name):\($0.password)"] } ?? []
            let platform = architecture.map { ["--override-arch", $0] } ?? []
            try ChildProcess.run(
                "/usr/bin/skopeo",
                platform + ["copy", "-q", "--src-tls-verify=false"] + credentials + ["docker://127.0.0.1:\(registry.port)/\(reference)", "dir:\(target)"]
            )
        }

        /// `curl -I` of a manifest by tag, as containerd checks a tag.
        func head(_ repository: String, _ tag: String) throws {
            let accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
            let status = try ChildProcess.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-I", "-H", "Accept: \(accept)",
                "http://127.0.0.1:\(registry.port)/v2/\(repository)/manifests/\(tag)"])
            #expect(status == "200")
        }

        /// A scanner's `GET` of a manifest by tag (`User-Agent: Trivy/…`).
        func scan(_ repository: String, _ tag: String) throws {
            let accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json"
            let status = try ChildProcess.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "Accept: \(accept)",
                "-A", "Trivy/0.48.0 go-containerregistry/v0.16.1", "http://127.0.0.1:\(registry.port)/v2/\(repository)/manifests/\(tag)"])
            #expect(status == "200")
        }

        /// Runs SQL on the stack's database with psql.
        func sql(_ statement: String) throws {
            try ChildProcess.run("/usr/bin/psql", [database, "-q", "-v", "ON_ERROR_STOP=1", "-c", statement])
        }

        func api(_ path: String) throws -> [String: Any] {
            let text = try ChildProcess.run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(nodePort)/api/v1/repository/\(path)"])
            return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
        }
    }

    /// What a key must show: counters, and the window its last pull happened in.
    struct Expected {
        var fetches = 0
        var checks = 0
        var count = 0
        var lastPull: ClosedRange<Date>?
    }

    @Test func pullsThroughARealRegistryShowUpExactlyWithinFifteenSeconds() async throws {
        let stack = try Stack(nodeEnvironment: ["PULLSKETCH_IGNORED_USER_AGENTS": "trivy/*"])
        try stack.push("app-one", to: "team/app:v1")
        try stack.push("app-two", to: "team/app:v2")
        try stack.push("multi", to: "team/multi:v1", platforms: ["linux/amd64", "linux/arm64"])
        let appV1 = try stack.registry.digest(repository: "team/app", tag: "v1")
        let appV2 = try stack.registry.digest(repository: "team/app", tag: "v2")
        let index = try stack.registry.digest(repository: "team/multi", tag: "v1")
        let platforms = try platformDigests(JSONSerialization.jsonObject(with: stack.registry.blob(index)))
        let amd64 = try #require(platforms["amd64"]), arm64 = try #require(platforms["arm64"])

        func timed(_ body: () throws -> Void) rethrows -> ClosedRange<Date> {
            let start = Date().addingTimeInterval(-1)
            try body()
            return start...Date().addingTimeInterval(1)
        }
        // N = 3 pulls by tag, M = 2 by digest, K = 4 HEAD by tag, and one multi-arch pull by tag;
        // a scanner's pulls by tag, which the node is told to ignore, count nowhere.
        for _ in 0..<2 { try stack.scan("team/app", "v1") }
        var last = try timed { try stack.pull("team/app:v1") }
        for _ in 0..<2 { last = try timed { try stack.pull("team/app:v1") } }
        let appV1Last = last
        for _ in 0..<2 { last = try timed { try stack.pull("team/app@\(appV2)") } }
        let appV2Last = last
        let multiPull = try timed { try stack.pull("team/multi:v1") }
        for _ in 0..<4 { last = try timed { try stack.head("team/multi", "v1") } }
        let multiHead = last

        let tags: [String: Expected] = [
            "team/app/tag/v1": Expected(fetches: 3, count: 3, lastPull: appV1Last),
            "team/app/tag/v2": Expected(),
            "team/multi/tag/v1": Expected(fetches: 1, checks: 4, count: 5, lastPull: multiHead),
        ]
        let manifests: [String: Expected] = [
            "team/app/manifest/\(appV1)": Expected(fetches: 3, count: 3, lastPull: appV1Last),
            "team/app/manifest/\(appV2)": Expected(fetches: 2, count: 2, lastPull: appV2Last),
            "team/multi/manifest/\(index)": Expected(fetches: 1, count: 1, lastPull: multiPull),
            "team/multi/manifest/\(amd64)": Expected(fetches: 1, count: 1, lastPull: multiPull),
            "team/multi/manifest/\(arm64)": Expected(),
        ]
        let pulledAt = Date()
        var mismatches: [String] = []
        while true {
            mismatches = try tags.compactMap { path, expected in
                check(try stack.api("\(path)/pull_statistics"), expected, prefix: "tag_", path)
            } + manifests.compactMap { path, expected in
                check(try stack.api("\(path)/pull_statistics"), expected, prefix: "", path)
            }
            if mismatches.isEmpty || Date().timeIntervalSince(pulledAt) > 15 { break }
            try await Task.sleep(for: .milliseconds(250))
        }
        #expect(mismatches == [], "not visible within 15 s")
        #expect(try stack.api("team/multi/tag/v1/pull_statistics")["current_manifest_digest"] as? String == index)

        // Pushing v1 anew moves its current digest and keeps its statistics.
        try stack.push("app-three", to: "team/app:v1")
        let retargeted = try stack.registry.digest(repository: "team/app", tag: "v1")
        try await eventually {
            let body = try stack.api("team/app/tag/v1/pull_statistics")
            return body["current_manifest_digest"] as? String == retargeted && body["tag_pull_count"] as? Int == 3
        }
        // Pruning, as if everything had been pushed 100 days ago: v2 (pulled only by digest) and v4
        // (only resolved with HEAD by tag) are in use; v5, never requested, is a candidate.
        try stack.push("app-four", to: "team/app:v4")
        try stack.push("app-five", to: "team/app:v5")
        try stack.head("team/app", "v4")
        let appV4 = try stack.registry.digest(repository: "team/app", tag: "v4")
        let appV5 = try stack.registry.digest(repository: "team/app", tag: "v5")
        try await eventually {
            let body = try stack.api("team/app/tag/v4/pull_statistics")
            return body["last_tag_used_date"] is String && body["last_manifest_used_date"] is String
        }
        #expect(try stack.api("team/app/manifest/\(appV4)/pull_statistics")["manifest_pull_count"] as? Int == 0, "a HEAD by tag is no pull of the manifest")
        try await eventually { try stack.api("team/app/tag/v5/pull_statistics")["pushed_at"] is String }
        try stack.sql(
            """
            UPDATE catalog_tags SET pushed_at = now() - interval '100 days'; UPDATE catalog_manifests SET pushed_at = now() - interval '100 days';
            UPDATE manifest_stats SET pushed_at = now() - interval '100 days' WHERE pushed_at IS NOT NULL;
            """
        )
        let candidates = { try stack.api("team/app/prune_candidates?not_pulled_days=30")["candidates"] as? [[String: Any]] ?? [] }
        #expect(try candidates().compactMap { $0["tag_name"] as? String } == ["v5"])
        // PullSketch has counted for minutes, not 30 days: the dry run says its history is short.
        let dryRun = try stack.api("team/app/prune_candidates?not_pulled_days=30")
        #expect(dryRun["history_complete"] as? Bool == false)
        let dates = ISO8601DateFormatter()
        dates.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        let knownSince = try #require((dryRun["pulls_known_since"] as? String).flatMap(dates.date(from:)))
        #expect(knownSince > Date(timeIntervalSinceNow: -3_600), "since the stack's first batch")
        #expect(try stack.api("team/app/prune_candidates?not_pulled_days=0")["history_complete"] as? Bool == true)
        let untagged = try stack.api("team/app/prune_candidates?not_pulled_days=30")["manifest_candidates"] as? [[String: Any]] ?? []
        #expect(!untagged.contains { [appV1, appV2, appV4, appV5].contains($0["manifest_digest"] as? String) }, "tagged manifests are not garbage")
        // Deleting v5's manifest deletes the tag: it leaves the pruning candidates.
        try ChildProcess.run("/usr/bin/curl", ["-s", "-X", "DELETE", "http://127.0.0.1:\(stack.registry.port)/v2/team/app/manifests/\(appV5)"])
        try await eventually { try candidates().isEmpty }

        // The UI lists the repository's tags, rendered by a real browser.
        let dom = try ChildProcess.run("/usr/bin/chromium", [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--user-data-dir=\(stack.images.appendingPathComponent("chromium").path)",
            "--dump-dom", "http://127.0.0.1:\(stack.nodePort)/repository/team/app",
        ])
        #expect(dom.contains("<code>v1</code>") && dom.contains("<code>v4</code>") && !dom.contains("<code>v5</code>"))
        #expect(stack.node.isRunning && stack.reconciler.isRunning)
    }

    /// The platform → digest map of an image index.
    func platformDigests(_ index: Any) -> [String: String] {
        let manifests = (index as? [String: Any])?["manifests"] as? [[String: Any]] ?? []
        return Dictionary(uniqueKeysWithValues: manifests.compactMap { manifest in
            guard let platform = manifest["platform"] as? [String: Any], let architecture = platform["architecture"] as? String,
                let digest = manifest["digest"] as? String
            else { return nil }
            return (architecture, digest)
        })
    }

    /// nil when `body` shows `expected` exactly; otherwise what differs.
    func check(_ body: [String: Any], _ expected: Expected, prefix: String, _ path: String) -> String? {
        let countKey = prefix.isEmpty ? "manifest_pull_count" : "tag_pull_count"
        let dateKey = prefix.isEmpty ? "last_manifest_pull_date" : "last_tag_pull_date"
        let fetchesKey = prefix.isEmpty ? "fetches" : "tag_fetches", checksKey = prefix.isEmpty ? "checks" : "tag_checks"
        let actual = (body[fetchesKey] as? Int, body[checksKey] as? Int, body[countKey] as? Int)
        guard actual == (expected.fetches, expected.checks, expected.count) else {
            return "\(path): fetches/checks/count \(String(describing: actual)), expected \((expected.fetches, expected.checks, expected.count))"
        }
        let date = (body[dateKey] as? String).flatMap { try? Date($0, strategy: .iso8601.year().month().day().time(includingFractionalSeconds: true)) }
        switch (expected.lastPull, date) {
        case (nil, nil): return nil
        case (let window?, let date?) where window.contains(date): return nil
        default: return "\(path): last pulled \(body[dateKey] ?? "null"), expected within \(String(describing: expected.lastPull))"
        }
    }

    /// Polls `condition` for up to `seconds` (the freshness the stack promises, by default).
    func eventually(within seconds: Double = 15, _ condition: () throws -> Bool) async throws {
        let deadline = Date().addingTimeInterval(seconds)
        while try !condition() {
            try #require(Date() < deadline, "not within \(seconds) s")
            try await Task.sleep(for: .milliseconds(250))
        }
    }
}
