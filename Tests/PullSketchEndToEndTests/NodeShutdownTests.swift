import Foundation
import PullSketchTestSupport
import Testing

/// A node stopped while notifications still arrive, as in a rolling deploy.
@Suite(.postgresServer) struct NodeShutdownTests {
    static let secret = "shutdown-secret-0123456789"

    /// Sends envelopes of one pull and one push, each of a tag of its own, on 4 keep-alive
    /// connections until the node refuses connections; writes the tags answered 200, one per line.
    static let sender = """
        import hashlib, http.client, json, sys, threading, time, uuid
        port, secret, output = int(sys.argv[1]), sys.argv[2], sys.argv[3]
        accepted, lock = [], threading.Lock()
        def event(action, tag, method):
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime()) + ".000000000Z"
            return {"id": str(uuid.uuid4()), "timestamp": stamp, "action": action, "request": {"method": method},
                    "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "size": 500, "repository": "shutdown/app",
                               "tag": tag, "digest": "sha256:" + hashlib.sha256(tag.encode()).hexdigest()}}
        def send(worker):
            index = 0
            while True:
                try:
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    while True:
                        tag = f"w{worker}-{index}"
                        index += 1
                        body = json.dumps({"events": [event("pull", tag, "GET"), event("push", "pushed-" + tag, "PUT")]})
                        connection.request("POST", "/notifications", body, {"Authorization": "Bearer " + secret,
                                           "Content-Type": "application/vnd.docker.distribution.events.v1+json"})
                        response = connection.getresponse()
                        response.read()
                        if response.status == 200:
                            with lock:
                                accepted.append(tag)
                except ConnectionRefusedError:
                    return
                except (http.client.HTTPException, OSError):
                    continue
        threads = [threading.Thread(target=send, args=(worker,)) for worker in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with open(output, "w") as file:
            file.write("".join(tag + "\\n" for tag in accepted))
        """

    /// SIGTERM while requests arrive: the node stops taking them first, then writes its catalog
    /// changes and merges its window, so every pull and push it answered 200 reaches PostgreSQL.
    @Test func aNodeStoppedWhileNotificationsArriveKeepsEverythingItAccepted() async throws {
        let redis = try RedisServer(appendOnly: true)
        let nodePort = try freeLoopbackPort()
        let database = try PostgresServer.current!.makeDatabase()
        let environment = [
            "PULLSKETCH_DATABASE_URL": database, "PULL_METRICS_REDIS_PORT": String(redis.port), "PULLSKETCH_HTTP_PORT": String(nodePort),
            "PULLSKETCH_WEBHOOK_SECRET": Self.secret, "PULLSKETCH_READ_AUTH": "none", "FEATURE_IMAGE_PULL_STATS": "true",
        ]
        let pullsketch = builtProduct("pullsketch")
        try ChildProcess.run(pullsketch.path, ["migrate"], environment: environment)
        let logs = FileManager.default.temporaryDirectory
        // Through a launcher that unblocks every signal: the test runner's threads block SIGTERM,
        // and a child inherits the mask.
        let launcher = "import os, signal, sys; signal.pthread_sigmask(signal.SIG_SETMASK, []); os.execv(sys.argv[1], sys.argv[1:])"
        let node = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/python3"), ["-c", launcher, pullsketch.path, "serve"], environment: environment,
            log: logs.appendingPathComponent("pullsketch-shutdown-node-\(nodePort).log")
        )
        let reconciler = try ChildProcess(pullsketch, ["reconcile"], environment: environment, log: logs.appendingPathComponent("pullsketch-shutdown-reconciler-\(nodePort).log"))
        try waitUntilListening(port: nodePort, timeout: 30)
        let output = logs.appendingPathComponent("pullsketch-shutdown-accepted-\(nodePort).txt")
        defer { try? FileManager.default.removeItem(at: output) }
        let sender = try ChildProcess(
            URL(fileURLWithPath: "/usr/bin/python3"), ["-c", Self.sender, String(nodePort), Self.secret, output.path],
            log: logs.appendingPathComponent("pullsketch-shutdown-sender-\(nodePort).log")
        )
        try await Task.sleep(for: .seconds(2))
        try await onOwnThread { node.terminate(timeout: 60) }
        try await waitFor("the sender to stop once the node is gone") { !sender.isRunning }
        let accepted = try String(contentsOf: output, encoding: .utf8).split(separator: "\n").map(String.init)
        #expect(accepted.count > 100, "requests answered before the stop")
        func stored(_ query: String) throws -> Set<String> {
            Set(try ChildProcess.run("/usr/bin/psql", [database, "-At", "-c", query]).split(separator: "\n").map(String.init))
        }
        func missing() throws -> (pulls: Set<String>, pushes: Set<String>) {
            let pulls = try stored("SELECT t.tag FROM tag_stats t JOIN repositories r ON r.id = t.repository_id WHERE r.name = 'shutdown/app' AND t.pull_count = 1")
            let pushes = try stored("SELECT tag FROM catalog_tags WHERE tag LIKE 'pushed-%'")
            return (Set(accepted).subtracting(pulls), Set(accepted.map { "pushed-" + $0 }).subtracting(pushes))
        }
        // The bound only ends a failing run: the reconciler writes within seconds.
        let deadline = ContinuousClock.now + .seconds(120)
        while try missing() != ([], []), ContinuousClock.now < deadline {
            try await Task.sleep(for: .milliseconds(200))
        }
        let (pulls, pushes) = try missing()
        #expect(pulls.isEmpty, "\(pulls.count) of \(accepted.count) accepted pulls not counted, e.g. \(pulls.sorted().prefix(3))")
        #expect(pushes.isEmpty, "\(pushes.count) of \(accepted.count) accepted pushes not in the catalog, e.g. \(pushes.sorted().prefix(3))")
        extendLifetime(reconciler)
        extendLifetime(redis)
    }
}
