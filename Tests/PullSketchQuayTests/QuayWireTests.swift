import Foundation
import PullSketchTestSupport
import Testing

/// Quay's registry wire, replayed by the real `redis` Python package at the versions Quay pins
/// (3.5.3 in v3.16, 7.1.0 now; each in its own virtual environment from PyPI), one new client and
/// connection per pull, against `pullsketch serve` with its Redis endpoint on, `pullsketch
/// reconcile` projecting into Quay's tables, and PullSketch's schema inside the "Quay" database.
@Suite(.postgresServer, .serialized) struct QuayWireTests {
    static let redisPyVersions = ["3.5.3", "7.1.0"]
    static let shapes = ["eval", "evalsha", "hmset", "pipeline"]
    static let password = "quay-resp-password-0123"
    /// The guarded node's ACL user, which Quay names with `PULL_METRICS_REDIS.username`.
    static let username = "quay"
    static let sendPulls = PythonEnvironment.root.appendingPathComponent("Tests/Quay/send_pulls.py").path

    /// Redis, PostgreSQL with Quay's tables, two nodes (one open on database 0, one behind an ACL
    /// user's password) and a reconciler that writes Quay's tables. Everything that blocks (starting
    /// processes, running clients, polling) runs on its own thread (`onOwnThread`).
    final class Stack: Sendable {
        let redis: RedisServer
        let database: String
        let statisticsDatabase: String
        let openNode: (http: Int, resp: Int)
        let guardedNode: (http: Int, resp: Int)
        private let processes: [ChildProcess]
        let files = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-quay-\(UUID().uuidString)")

        /// Starts everything; blocks, so tests make one with `Stack.start`. The nodes' clocks are
        /// shifted by `nodeClockShift` seconds (`ClockShift`), when given.
        private init(namesRefreshMilliseconds: Int, nodeClockShift: Int64?, server: PostgresServer) throws {
            try FileManager.default.createDirectory(at: files, withIntermediateDirectories: true)
            redis = try RedisServer()
            database = try server.makeDatabase()
            statisticsDatabase = database + " options='-csearch_path=pullsketch'"
            try ChildProcess.run("/usr/bin/psql", [database, "-q", "-v", "ON_ERROR_STOP=1", "-c", QuayTables.schema])
            let pullsketch = builtProduct("pullsketch")
            try ChildProcess.run(pullsketch.path, ["migrate", "--database", statisticsDatabase])
            let shared = [
                "PULLSKETCH_DATABASE_URL": statisticsDatabase,
                "PULL_METRICS_REDIS_PORT": String(redis.port),
                "FEATURE_IMAGE_PULL_STATS": "true",
                "PULLSKETCH_COUNTING_RULE": "quay",
                "PULLSKETCH_READ_AUTH": "none",
                "PULLSKETCH_MERGE_INTERVAL_MS": "500",
                "PULLSKETCH_RECONCILE_INTERVAL_MS": "500",
                "PULLSKETCH_QUAY_PROJECTION": "true",
                "PULLSKETCH_QUAY_NAMES_REFRESH_MS": String(namesRefreshMilliseconds),
            ]
            openNode = (try freeLoopbackPort(), try freeLoopbackPort())
            guardedNode = (try freeLoopbackPort(), try freeLoopbackPort())
            var processes: [ChildProcess] = []
            for (node, password) in [(openNode, nil), (guardedNode, QuayWireTests.password)] as [((http: Int, resp: Int), String?)] {
                var environment = shared.merging(["PULLSKETCH_HTTP_PORT": String(node.http), "PULLSKETCH_RESP_PORT": String(node.resp)]) { $1 }
                environment["PULLSKETCH_RESP_PASSWORD"] = password
                environment["PULLSKETCH_RESP_USERNAME"] = password.map { _ in QuayWireTests.username }
                if let nodeClockShift { environment.merge(try ClockShift.environment(seconds: nodeClockShift, buildingInto: files)) { $1 } }
                processes.append(try ChildProcess(pullsketch, ["serve"], environment: environment, log: files.appendingPathComponent("node-\(node.http).log")))
            }
            processes.append(try ChildProcess(pullsketch, ["reconcile"], environment: shared, log: files.appendingPathComponent("reconciler.log")))
            self.processes = processes
            for port in [openNode.http, openNode.resp, guardedNode.http, guardedNode.resp] {
                try waitUntilListening(port: port, timeout: 30)
            }
        }

        static func start(namesRefreshMilliseconds: Int = 60_000, nodeClockShift: Int64? = nil) async throws -> Stack {
            let server = PostgresServer.current!
            return try await onOwnThread { try Stack(namesRefreshMilliseconds: namesRefreshMilliseconds, nodeClockShift: nodeClockShift, server: server) }
        }

        deinit {
            processes.forEach { $0.kill() }
            try? FileManager.default.removeItem(at: files)
        }

        /// Sends `pulls` with redis-py `version` in `shape`, one client per pull.
        func send(_ pulls: [Pull], version: String, shape: String, port: Int, password: String? = nil, username: String? = nil, db: Int = 0) async throws {
            let file = files.appendingPathComponent("pulls-\(UUID().uuidString).jsonl")
            var arguments = [QuayWireTests.sendPulls, "--port", String(port), "--db", String(db), "--shape", shape, file.path]
            if let password { arguments += ["--password", password] }
            if let username { arguments += ["--username", username] }
            let lines = pulls.map(\.json).joined(separator: "\n")
            let sent = try await onOwnThread { [arguments] in
                let python = try PythonEnvironment.python("redis-\(version)", packages: ["redis==\(version)"])
                try Data(lines.utf8).write(to: file)
                return try ChildProcess.run(python.path, arguments)
            }
            #expect(sent.trimmingCharacters(in: .whitespacesAndNewlines) == String(pulls.count))
        }

        /// Rows of a query, columns separated by `|`.
        func sql(_ query: String) async throws -> [String] {
            let database = database
            return try await onOwnThread {
                try ChildProcess.run("/usr/bin/psql", [database, "-At", "-v", "ON_ERROR_STOP=1", "-c", query]).split(separator: "\n").map(String.init)
            }
        }

        /// The statistics API's JSON object at `path` (empty when the answer is not one).
        func api(_ port: Int, _ path: String) async throws -> [String: Any] {
            let text = try await onOwnThread { try ChildProcess.run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(port)/api/v1/repository/\(path)"]) }
            return (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] ?? [:]
        }

        func metrics(_ port: Int) async throws -> String {
            try await onOwnThread { try ChildProcess.run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(port)/metrics"]) }
        }

        /// Polls `condition` until it holds or `seconds` pass; the pipeline needs a merge and a
        /// reconcile pass.
        func eventually(_ seconds: Double = 30, _ condition: () async throws -> Bool) async throws -> Bool {
            let deadline = Date().addingTimeInterval(seconds)
            while Date() < deadline {
                if try await condition() { return true }
                try await Task.sleep(for: .milliseconds(200))
            }
            return try await condition()
        }
    }

    struct Pull {
        var repositoryID: Int
        var tag: String?
        var digest: String
        var timestamp: Int

        var json: String {
            "{\"repository_id\": \(repositoryID), \"tag\": \(tag.map { "\"\($0)\"" } ?? "null"), \"digest\": \"\(digest)\", \"timestamp\": \(timestamp)}"
        }
    }

    static func digest(_ seed: Int) -> String {
        "sha256:" + String(repeating: String(format: "%016x", seed), count: 4)
    }

    static func utc(_ seconds: Int) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyy-MM-dd HH:mm:ss"
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// Quay's registry reports each pull with its own time, clamped to the moment it arrives; a
    /// node whose host clock is 100 days behind takes that moment from Redis's clock, so today's
    /// pull lands in Quay's table as today's.
    @Test func aNodeWhoseClockIsDaysBehindRecordsQuaysPullsAtTheirTime() async throws {
        let stack = try await Stack.start(nodeClockShift: -100 * 86_400)
        let offsetMeasured = try await stack.eventually {
            let line = try await stack.metrics(stack.openNode.http).split(separator: "\n").first { $0.hasPrefix("pullsketch_clock_offset_seconds ") }
            return line.flatMap { Double($0.split(separator: " ")[1]) }.map { abs($0 - 100 * 86_400) < 60 } ?? false
        }
        #expect(offsetMeasured, "the health check measured the node's clock 100 days behind Redis's")
        let now = Int(Date().timeIntervalSince1970)
        try await stack.send([Pull(repositoryID: 10, tag: "today", digest: Self.digest(1), timestamp: now - 5)], version: "7.1.0", shape: "pipeline", port: stack.openNode.resp)
        let expected = "10|today|1|\(Self.utc(now - 5))"
        let landed = try await stack.eventually {
            try await stack.sql("SELECT repository_id, tag_name, tag_pull_count, last_tag_pull_date FROM public.tagpullstatistics") == [expected]
        }
        let rows = try await stack.sql("SELECT repository_id, tag_name, tag_pull_count, last_tag_pull_date FROM public.tagpullstatistics")
        #expect(landed, "\(rows)")
    }

    /// Per run: tag `t` pulled 3 times and tag `u` once, both serving manifest `d1` (4 pulls), and
    /// manifest `d2` pulled twice by digest; every time in the recent past, distinct per pull.
    @Test func everyWireShapeOfEveryPinnedClientCountsExactlyInPullSketchAndQuaysTables() async throws {
        let stack = try await Stack.start()
        let now = Int(Date().timeIntervalSince1970)
        var expectations: [(repositoryID: Int, repository: String, t: String, u: String, d1: String, d2: String)] = []
        var run = 0
        for version in Self.redisPyVersions {
            for shape in Self.shapes {
                for guarded in [false, true] {
                    run += 1
                    let (repositoryID, repository) = run % 2 == 0 ? (10, "acme/web") : (11, "team/api/server")
                    let t = "t\(run)-\(shape)", u = "u\(run)", d1 = Self.digest(run * 2), d2 = Self.digest(run * 2 + 1)
                    let pulls = [
                        Pull(repositoryID: repositoryID, tag: t, digest: d1, timestamp: now - 50),
                        Pull(repositoryID: repositoryID, tag: t, digest: d1, timestamp: now - 40),
                        Pull(repositoryID: repositoryID, tag: t, digest: d1, timestamp: now - 30),
                        Pull(repositoryID: repositoryID, tag: u, digest: d1, timestamp: now - 20),
                        Pull(repositoryID: repositoryID, tag: nil, digest: d2, timestamp: now - 10),
                        Pull(repositoryID: repositoryID, tag: nil, digest: d2, timestamp: now - 5),
                    ]
                    if guarded {
                        try await stack.send(pulls, version: version, shape: shape, port: stack.guardedNode.resp, password: Self.password, username: Self.username, db: 1)
                    } else {
                        try await stack.send(pulls, version: version, shape: shape, port: stack.openNode.resp)
                    }
                    expectations.append((repositoryID, repository, t, u, d1, d2))
                }
            }
        }
        let expectedTags = Set(expectations.flatMap { e in
            ["\(e.repositoryID)|\(e.t)|3|\(Self.utc(now - 30))|\(e.d1)", "\(e.repositoryID)|\(e.u)|1|\(Self.utc(now - 20))|\(e.d1)"]
        })
        let expectedManifests = Set(expectations.flatMap { e in
            ["\(e.repositoryID)|\(e.d1)|4|\(Self.utc(now - 20))", "\(e.repositoryID)|\(e.d2)|2|\(Self.utc(now - 5))"]
        })
        let tagQuery = "SELECT repository_id, tag_name, tag_pull_count, last_tag_pull_date, current_manifest_digest FROM public.tagpullstatistics"
        let manifestQuery = "SELECT repository_id, manifest_digest, manifest_pull_count, last_manifest_pull_date FROM public.manifestpullstatistics"
        let complete = try await stack.eventually {
            let tags = try await Set(stack.sql(tagQuery)), manifests = try await Set(stack.sql(manifestQuery))
            return tags == expectedTags && manifests == expectedManifests
        }
        #expect(complete)
        #expect(try await Set(stack.sql(tagQuery)) == expectedTags)
        #expect(try await Set(stack.sql(manifestQuery)) == expectedManifests)

        for e in expectations {
            let tag = try await stack.api(stack.openNode.http, "\(e.repository)/tag/\(e.t)/pull_statistics")
            #expect(tag["tag_pull_count"] as? Int == 3)
            #expect((tag["last_tag_pull_date"] as? String)?.hasPrefix(Self.utc(now - 30).replacingOccurrences(of: " ", with: "T")) == true)
            #expect(tag["current_manifest_digest"] as? String == e.d1)
            #expect(tag["manifest_pull_count"] as? Int == 4)
            let manifest = try await stack.api(stack.guardedNode.http, "\(e.repository)/manifest/\(e.d2)/pull_statistics")
            #expect(manifest["manifest_pull_count"] as? Int == 2)
            #expect((manifest["last_manifest_pull_date"] as? String)?.hasPrefix(Self.utc(now - 5).replacingOccurrences(of: " ", with: "T")) == true)
        }
        // Nothing was refused along the way.
        for node in [stack.openNode.http, stack.guardedNode.http] {
            let refused = try await stack.metrics(node).split(separator: "\n").filter { $0.hasPrefix("pullsketch_quay_commands_refused_total{") }
            #expect(refused.count == 4 && refused.allSatisfy { $0.hasSuffix(" 0") }, "\(refused)")
        }
    }

    @Test func aWrongPasswordOrUserIsRefusedAndCountsNothing() async throws {
        let stack = try await Stack.start()
        let pull = Pull(repositoryID: 10, tag: "secret", digest: Self.digest(1), timestamp: Int(Date().timeIntervalSince1970))
        await #expect(throws: ChildProcessError.self) {
            try await stack.send([pull], version: "7.1.0", shape: "eval", port: stack.guardedNode.resp, password: "not-the-password", username: Self.username)
        }
        await #expect(throws: ChildProcessError.self, "the right password, given for the default user") {
            try await stack.send([pull], version: "7.1.0", shape: "eval", port: stack.guardedNode.resp, password: Self.password)
        }
        await #expect(throws: ChildProcessError.self) {
            try await stack.send([pull], version: "7.1.0", shape: "eval", port: stack.guardedNode.resp)
        }
        try await Task.sleep(for: .milliseconds(1_500))
        #expect(try await stack.sql("SELECT count(*) FROM public.tagpullstatistics") == ["0"])
        #expect(try await stack.api(stack.openNode.http, "acme/web/tag/secret/pull_statistics")["tag_pull_count"] as? Int == 0)
    }

    @Test func pullsOfRepositoriesQuayDoesNotHaveAreDroppedAndCounted() async throws {
        let stack = try await Stack.start()
        let now = Int(Date().timeIntervalSince1970)
        try await stack.send([Pull(repositoryID: 999, tag: "ghost", digest: Self.digest(9), timestamp: now),
                        Pull(repositoryID: 10, tag: "real", digest: Self.digest(8), timestamp: now)],
                       version: "7.1.0", shape: "eval", port: stack.openNode.resp)
        #expect(try await stack.eventually { try await stack.metrics(stack.openNode.http).contains("pullsketch_quay_pulls_dropped_total{reason=\"unknown_repository\"} 1") })
        #expect(try await stack.eventually { try await stack.sql("SELECT tag_name, tag_pull_count FROM public.tagpullstatistics") == ["real|1"] })
    }

    @Test func aRenamedRepositorysNewPullsGoToItsNewNameAndQuaysRowKeepsTheOldOnes() async throws {
        let stack = try await Stack.start(namesRefreshMilliseconds: 1_000)
        let now = Int(Date().timeIntervalSince1970)
        try await stack.send([Pull(repositoryID: 12, tag: "v1", digest: Self.digest(3), timestamp: now - 2)], version: "7.1.0", shape: "eval", port: stack.openNode.resp)
        #expect(try await stack.eventually { try await stack.api(stack.openNode.http, "team/legacy/tag/v1/pull_statistics")["tag_pull_count"] as? Int == 1 })
        _ = try await stack.sql("UPDATE public.repository SET name = 'modern' WHERE id = 12")
        try await Task.sleep(for: .milliseconds(2_500))  // more than one names refresh
        try await stack.send([Pull(repositoryID: 12, tag: "v1", digest: Self.digest(3), timestamp: now - 1)], version: "7.1.0", shape: "eval", port: stack.openNode.resp)
        #expect(try await stack.eventually { try await stack.api(stack.openNode.http, "team/modern/tag/v1/pull_statistics")["tag_pull_count"] as? Int == 1 })
        #expect(try await stack.api(stack.openNode.http, "team/legacy/tag/v1/pull_statistics")["tag_pull_count"] as? Int == 1)
        #expect(try await stack.eventually { try await stack.sql("SELECT repository_id, tag_name, tag_pull_count FROM public.tagpullstatistics") == ["12|v1|2"] })
        #expect(try await stack.sql("SELECT name FROM pullsketch.quay_repository_names WHERE quay_repository_id = 12 ORDER BY 1") == ["team/legacy", "team/modern"])
    }

    @Test func quaySyncRestoresRowsQuaysGarbageCollectionDeleted() async throws {
        let stack = try await Stack.start()
        let now = Int(Date().timeIntervalSince1970)
        try await stack.send((0..<3).map { Pull(repositoryID: 10, tag: "kept", digest: Self.digest(5), timestamp: now - 10 + $0) },
                       version: "7.1.0", shape: "eval", port: stack.openNode.resp)
        let expected = ["kept|3|\(Self.utc(now - 8))"]
        let query = "SELECT tag_name, tag_pull_count, last_tag_pull_date FROM public.tagpullstatistics"
        #expect(try await stack.eventually { try await stack.sql(query) == expected })
        _ = try await stack.sql("DELETE FROM public.tagpullstatistics; DELETE FROM public.manifestpullstatistics")
        let statisticsDatabase = stack.statisticsDatabase
        let output = try await onOwnThread {
            try ChildProcess.run(builtProduct("pullsketch").path, ["quay", "sync"], environment: ["PULLSKETCH_DATABASE_URL": statisticsDatabase])
        }
        #expect(output.contains("wrote 1 tagpullstatistics rows and 1 manifestpullstatistics rows"))
        #expect(try await stack.sql(query) == expected)
        #expect(try await stack.sql("SELECT manifest_pull_count FROM public.manifestpullstatistics") == ["3"])
    }

    @Test func malformedAndHostileProtocolGetsAnErrorAndTheConnectionClosed() async throws {
        let stack = try await Stack.start()
        let port = stack.openNode.resp
        for (input, message) in [
            ("*1\r\n$536870912\r\n", "-ERR Protocol error: invalid bulk length\r\n"),
            ("*99999999\r\n", "-ERR Protocol error: invalid multibulk length\r\n"),
            ("*1\r\n+PING\r\n", "-ERR Protocol error: expected '$', got '+'\r\n"),
        ] {
            let (reply, closed) = try await onOwnThread { try exchange(port: port, Array(input.utf8), timeout: 60) }
            #expect(String(decoding: reply, as: UTF8.self) == message)
            #expect(closed)
        }
        // An endless argument is refused once it passes the command limit, not buffered.
        let endless = Array("*2\r\n$4\r\nECHO\r\n$1048576\r\n".utf8) + [UInt8](repeating: 0x61, count: 3 << 20)
        let (reply, closed) = try await onOwnThread { try exchange(port: port, endless, timeout: 60) }
        #expect(String(decoding: reply, as: UTF8.self).hasPrefix("-ERR Protocol error"))
        #expect(closed)
        // Inline commands and a pipeline of commands on one connection, as redis-cli sends them.
        let (answers, _) = try await onOwnThread { try exchange(port: port, Array("PING\r\nECHO hi\r\nGET x\r\nQUIT\r\n".utf8), timeout: 60) }
        #expect(String(decoding: answers, as: UTF8.self).hasPrefix("+PONG\r\n$2\r\nhi\r\n-ERR unknown command 'get'"))
        #expect(String(decoding: answers, as: UTF8.self).hasSuffix("+OK\r\n"))
        // The node still takes pulls afterwards.
        try await stack.send([Pull(repositoryID: 10, tag: "after", digest: Self.digest(4), timestamp: Int(Date().timeIntervalSince1970))],
                       version: "3.5.3", shape: "eval", port: port)
        #expect(try await stack.eventually { try await stack.sql("SELECT tag_pull_count FROM public.tagpullstatistics") == ["1"] })
        #expect(try await stack.metrics(stack.openNode.http).contains("pullsketch_quay_protocol_errors_total 4"))
    }
}
