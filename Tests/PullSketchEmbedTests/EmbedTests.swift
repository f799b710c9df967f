import Foundation
import PullSketchPostgres
import PullSketchReconciler
import PullSketchRedis
import PullSketchStore
import PullSketchTestSupport
import Testing

/// libpullsketch from outside Swift: a C program and Python processes record from many threads
/// into a real Redis, the reconciler writes PostgreSQL, and every count must be exact; a real
/// gunicorn serving a manifest route counts exactly the GETs and HEADs curl sends it.
@Suite(.postgresServer) struct EmbedTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    static let library = builtProduct("libPullSketchEmbed.so")
    static let python = root.appendingPathComponent("Sources/PullSketchEmbed/python")

    /// Redis, a migrated database, and a config.yaml naming them.
    final class Deployment: Sendable {
        let redis: RedisServer
        let database: String
        let config: URL

        init() throws {
            redis = try RedisServer()
            database = try PostgresServer.current!.makeDatabase()
            try Schema.migrate(try PostgresConnection(database))
            config = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-embed-\(UUID().uuidString).yaml")
            try """
                FEATURE_IMAGE_PULL_STATS: true
                PULL_METRICS_REDIS: {host: 127.0.0.1, port: \(redis.port)}
                PULLSKETCH: {merge_interval_ms: 200}
                """.write(to: config, atomically: true, encoding: .utf8)
        }

        deinit { try? FileManager.default.removeItem(at: config) }

        /// Tag rows as `repository tag` → (fetches, checks), once the reconciler has written
        /// `expected`, or after 60 s.
        func reconciled(_ expected: [String: [Int64]]) async throws -> [String: [Int64]] {
            let reconciler = Reconciler(redis: RedisEndpoint(port: redis.port), database: database, shardCount: 4)
            let deadline = ContinuousClock.now + .seconds(60)
            var rows: [String: [Int64]] = [:]
            while ContinuousClock.now < deadline {
                try await reconciler.reconcileOnce()
                rows = [:]
                for row in try PostgresConnection(database).query(
                    "SELECT r.name, t.tag, t.fetches, t.checks FROM tag_stats t JOIN repositories r ON r.id = t.repository_id"
                ).rows {
                    rows["\(row[0]!) \(row[1]!)"] = [Int64(row[2]!)!, Int64(row[3]!)!]
                }
                if rows == expected { break }
                try await Task.sleep(for: .milliseconds(200))
            }
            return rows
        }
    }

    /// What `Tests/Embed/record.c` (and `record.py`) record in process `process`.
    static func expected(process: Int, threads: Int, pulls: Int) -> [String: [Int64]] {
        var rows: [String: [Int64]] = ["embed/c\(process) child": [100, 0]]
        for i in 0..<pulls {
            let key = "embed/c\(process) v\(i % 20)"
            var row = rows[key] ?? [0, 0]
            row[i % 3 == 0 ? 1 : 0] += Int64(threads)
            rows[key] = row
        }
        return rows
    }

    @Test func aCProgramInSeveralProcessesAndThreadsCountsExactlyAndForkedChildrenAreRefused() async throws {
        let deployment = try Deployment()
        let program = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-record-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: program) }
        try ChildProcess.run("/usr/bin/gcc", [
            "-O2", "-Wall", "-Werror", "-o", program.path, Self.root.appendingPathComponent("Tests/Embed/record.c").path,
            "-I", Self.root.appendingPathComponent("Sources/PullSketchEmbed/include").path,
            Self.library.path, "-Wl,-rpath,\(Self.library.deletingLastPathComponent().path)", "-lpthread",
        ])
        let (processes, threads, pulls) = (3, 8, 3_000)
        let config = deployment.config
        try await withThrowingTaskGroup(of: String.self) { group in
            for process in 0..<processes {
                group.addTask {
                    try await onOwnThread { try ChildProcess.run(program.path, [config.path, String(process), String(threads), String(pulls)]) }
                }
            }
            try await group.waitForAll()
        }
        let expected = (0..<processes).reduce(into: [String: [Int64]]()) { $0.merge(Self.expected(process: $1, threads: threads, pulls: pulls)) { a, _ in a } }
        #expect(try await deployment.reconciled(expected) == expected)
    }
}

extension EmbedTests {
    /// A fresh virtual environment with the `pullsketch` package installed from the repository
    /// (its build copies the test build's library and the Swift runtime it links), and `packages`
    /// from PyPI.
    static func environment(_ packages: [String] = []) throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-venv-\(UUID().uuidString)")
        try ChildProcess.run("/usr/bin/python3", ["-m", "venv", folder.path])
        let pip = folder.appendingPathComponent("bin/pip").path
        let build = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-wheel-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: build) }
        // Built from a copy, so parallel tests never share the package's build folder.
        try FileManager.default.copyItem(at: python, to: build)
        try ChildProcess.run(pip, ["install", "--quiet", "--disable-pip-version-check", build.path] + packages,
                             environment: ["PULLSKETCH_LIBRARY": library.path])
        return folder
    }

    @Test func pythonProcessesAndThreadsCountExactlyThroughTheInstalledPackage() async throws {
        let deployment = try Deployment()
        let venv = try await onOwnThread { try Self.environment() }
        defer { try? FileManager.default.removeItem(at: venv) }
        let python = venv.appendingPathComponent("bin/python").path
        // The package carries the library and the Swift runtime; nothing points elsewhere.
        let loaded = try ChildProcess.run(python, ["-c", """
            import pullsketch, os
            pullsketch.Tracker("FEATURE_IMAGE_PULL_STATS: false").close()
            print("\\n".join(sorted({line.split()[-1] for line in open("/proc/self/maps") if "libswiftCore" in line or "libpullsketch" in line})))
            """], environment: ["PULLSKETCH_LIBRARY": ""])
        let libraries = loaded.split(separator: "\n")
        #expect(libraries.contains { $0.hasSuffix("/libswiftCore.so") } && libraries.contains { $0.hasSuffix("/libpullsketch.so") }, "\(loaded)")
        #expect(libraries.allSatisfy { $0.hasPrefix(venv.path) }, "every Swift library from the package: \(loaded)")
        let (processes, threads, pulls) = (3, 4, 2_000)
        let config = deployment.config
        try await withThrowingTaskGroup(of: String.self) { group in
            for process in 0..<processes {
                group.addTask {
                    try await onOwnThread {
                        try ChildProcess.run(python, [Self.root.appendingPathComponent("Tests/Embed/record.py").path, config.path,
                                                      String(process), String(threads), String(pulls)], environment: ["PULLSKETCH_LIBRARY": ""])
                    }
                }
            }
            try await group.waitForAll()
        }
        let expected = (0..<processes).reduce(into: [String: [Int64]]()) { $0.merge(Self.expected(process: $1, threads: threads, pulls: pulls)) { a, _ in a } }
        #expect(try await deployment.reconciled(expected) == expected)
    }

    @Test func gunicornWorkersCountExactlyTheGETsAndHEADsCurlSends() async throws {
        let deployment = try Deployment()
        let venv = try await onOwnThread { try Self.environment(["gunicorn==23.0.0"]) }
        defer { try? FileManager.default.removeItem(at: venv) }
        let port = try freeLoopbackPort()
        // Through a launcher that unblocks every signal: the test runner's threads block SIGTERM,
        // and a child inherits the mask, but gunicorn stops gracefully on SIGTERM.
        let launcher = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv(sys.argv[1], sys.argv[1:])"
        let gunicorn = try ChildProcess(venv.appendingPathComponent("bin/python"), ["-c", launcher, venv.appendingPathComponent("bin/gunicorn").path,
            "--config", Self.python.appendingPathComponent("examples/gunicorn.conf.py").path, "--chdir", Self.python.appendingPathComponent("examples").path,
            "--workers", "3", "--bind", "127.0.0.1:\(port)",
        ], environment: ["PULLSKETCH_CONFIG": deployment.config.path, "PULLSKETCH_LIBRARY": ""],
           log: FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-gunicorn-\(port).log"))
        try waitUntilListening(port: port, timeout: 30)
        let (gets, heads) = (30, 20)
        for index in 0..<(gets + heads) {
            let status = try await onOwnThread {
                try ChildProcess.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}"] + (index < gets ? [] : ["-I"])
                    + ["http://127.0.0.1:\(port)/v2/team/app/manifests/v1"])
            }
            #expect(status == "200")
        }
        // A graceful stop: every worker closes its tracker, merging what it counted.
        try await onOwnThread { gunicorn.terminate() }
        let expected = ["team/app v1": [Int64(gets), Int64(heads)]]
        #expect(try await deployment.reconciled(expected) == expected)
    }
}
