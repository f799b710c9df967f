import Foundation
import PullSketchCore
import PullSketchEvents
import PullSketchHistory
import PullSketchStore
import PullSketchTestSupport
import Testing

/// `pullsketch import --file` of distribution's own logs: its access log and its application log's
/// `response completed` lines, as text or JSON.
extension HistoryImportTests {
    static let digestD = "sha256:" + String(repeating: "d", count: 64)

    func pulls(in lines: String, ignoring clients: IgnoredClients = .none) async throws -> HistoryChunk {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-registry-log-\(UUID().uuidString).log")
        defer { try? FileManager.default.removeItem(at: file) }
        try Data(lines.utf8).write(to: file)
        return try #require(try await LogFileSource(path: file.path, chunkSize: 100_000, ignoring: clients).chunk(0))
    }

    /// Pulls by an ignored client are not imported, wherever an entry names its user agent: the
    /// access log's last quoted field (escaped quotes in it and in the referer), the application
    /// log's `http.request.useragent` in text or JSON, a pull's `user_agent`, a notification's
    /// `request.useragent`, a Quay audit entry's `user-agent` and extended logging's `user_agent`,
    /// and the `user-agent` of Quay's `logentry3` rows.
    @Test func pullsByIgnoredClientsAreNotImported() async throws {
        let scanners = try IgnoredClients(["trivy/*"])
        let access = try await pulls(in: """
            127.0.0.1 - - [06/Dec/2026:15:03:26 +0000] "GET /v2/team/app/manifests/v1 HTTP/1.1" 200 401 "" "Trivy/0.48.0 go-containerregistry/v0.16.1"
            127.0.0.1 - - [06/Dec/2026:15:03:27 +0000] "GET /v2/team/app/manifests/v1 HTTP/1.1" 200 401 "https://x/\\"trivy/\\"" "skopeo/1.9.3"
            127.0.0.1 - - [06/Dec/2026:15:03:28 +0000] "GET /v2/team/app/manifests/v1 HTTP/1.1" 200 401 "" "trivy/\\"1\\" (linux)"

            """, ignoring: scanners)
        #expect(access.pulls == [try pull(.tag(try TagName("v1")), .get, at: "2026-12-06T15:03:27Z")] && access.ignored == 2)
        let application = try await pulls(in: """
            time="2026-12-06T15:03:26.1Z" level=info msg="response completed" http.request.method=GET http.request.uri=/v2/team/app/manifests/v1 http.request.useragent="Trivy/0.48.0 go-containerregistry" http.response.status=200
            time="2026-12-06T15:03:27.1Z" level=info msg="response completed" http.request.method=GET http.request.uri=/v2/team/app/manifests/v1 http.request.useragent=containerd/1.7 http.response.status=200
            {"time":"2026-12-06T15:03:28.1Z","level":"info","msg":"response completed","http.request.method":"HEAD","http.request.uri":"/v2/team/app/manifests/v1","http.request.useragent":"trivy/0.48","http.response.status":200}

            """, ignoring: scanners)
        #expect(application.pulls == [try pull(.tag(try TagName("v1")), .get, at: "2026-12-06T15:03:27.1Z")] && application.ignored == 2)
        let json = try await pulls(in: """
            {"repository": "team/app", "tag": "v1", "method": "GET", "time": "2026-12-06T15:03:26Z", "user_agent": "trivy/0.48"}
            {"repository": "team/app", "tag": "v1", "method": "GET", "time": "2026-12-06T15:03:27Z", "user_agent": "skopeo/1.9"}
            {"events": [{"id": "e1", "timestamp": "2026-12-06T15:03:28Z", "action": "pull", "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "team/app", "tag": "v1", "digest": "\(Self.digestD)"}, "request": {"method": "GET", "useragent": "Trivy/0.48"}}]}
            {"kind": "pull_repo", "datetime": "2026-12-06T15:03:29Z", "metadata": {"namespace": "team", "repo": "app", "tag": "v1", "user-agent": "Trivy/0.48"}}
            {"kind": "pull_repo", "datetime": "2026-12-06T15:03:30Z", "user_agent": "trivy/0.48", "metadata": {"namespace": "team", "repo": "app", "tag": "v1"}}

            """, ignoring: scanners)
        #expect(json.pulls == [try pull(.tag(try TagName("v1")), .get, at: "2026-12-06T15:03:27Z")] && json.ignored == 4)

        // Quay's own table: every pull by digest in the synthetic history names `containerd`.
        let quay = try BlockingDatabase(try Self.quay(rows: 2_000).database, connections: 1)
        func digestPulls(ignoring clients: IgnoredClients) async throws -> Int {
            let chunk = try #require(try await QuayLogSource.open(quay, chunkSize: 2_000, ignoring: clients).chunk(0))
            return chunk.pulls.count { if case .digest = $0.reference { true } else { false } }
        }
        #expect(try await digestPulls(ignoring: .none) > 300)
        #expect(try await digestPulls(ignoring: try IgnoredClients(["containerd"])) == 0)
    }

    func pull(_ reference: ManifestReference, _ method: ManifestRequestMethod, at time: String) throws -> PullEvent {
        PullEvent(repository: try RepositoryName("team/app"), reference: reference, method: method, time: try #require(RFC3339.parse(time)))
    }

    /// A file with the access log counts by it alone: the application log's line for the same
    /// request is not counted again. Blobs, pushes and errors are no pulls; a line naming an
    /// invalid repository or an unreadable time says so. Lines come as log collectors keep them:
    /// after a CRI log file's prefix, journald's, and inside Docker's `json-file` objects.
    @Test func theAccessLogCountsManifestRequestsAndItsTwinInTheApplicationLogIsIgnored() async throws {
        let chunk = try await pulls(in: """
            127.0.0.1 - - [06/Dec/2026:15:03:26 +0000] "GET /v2/team/app/manifests/v1 HTTP/1.1" 200 401 "" "skopeo/1.9.3"
            2026-12-06T15:03:26.122Z stderr F time="2026-12-06T15:03:26.121890123Z" level=info msg="response completed" http.request.method=GET http.request.uri=/v2/team/app/manifests/v1 http.response.status=200
            Dec 06 15:03:27 registry docker-registry[812]: 10.0.0.7 - alice [06/Dec/2026:16:03:27 +0100] "HEAD /v2/team/app/manifests/v1?ns=docker.io HTTP/1.1" 200 401 "" "containerd/1.7"
            {"log":"10.0.0.7 - - [06/Dec/2026:15:03:28 +0000] \\"GET /v2/team/app/manifests/sha256%3A\(String(repeating: "d", count: 64)) HTTP/1.1\\" 200 401 \\"\\" \\"containerd/1.7\\"\\n","stream":"stdout","time":"2026-12-06T15:03:28.2Z"}
            10.0.0.7 - - [06/Dec/2026:15:03:28 +0000] "GET /v2/team/app/blobs/\(Self.digestD) HTTP/1.1" 200 1024 "" "containerd/1.7"
            127.0.0.1 - - [06/Dec/2026:15:03:29 +0000] "PUT /v2/team/app/manifests/v2 HTTP/1.1" 201 0 "" "skopeo/1.9.3"
            127.0.0.1 - - [06/Dec/2026:15:03:29 +0000] "GET /v2/team/app/manifests/nope HTTP/1.1" 404 94 "" "curl/7.88.1"
            time="2026-12-06T15:03:29.1Z" level=info msg="listening on 127.0.0.1:5000" go.version=go1.19.8
            127.0.0.1 - - [06/Dec/2026:15:03:30 +0000] "GET /v2/Team/App/manifests/v1 HTTP/1.1" 200 401 "" "curl/7.88.1"
            127.0.0.1 - - [06/Foo/2026:15:03:30 +0000] "GET /v2/team/app/manifests/v1 HTTP/1.1" 200 401 "" "curl/7.88.1"
            127.0.0.1 - - [06/Dec/2026:15:03:30 +0000] "GET /v2/team/app/manifests/-v1 HTTP/1.1" 200 401 "" "curl/7.88.1"
            a line from elsewhere

            """)
        #expect(chunk.pulls == [
            try pull(.tag(try TagName("v1")), .get, at: "2026-12-06T15:03:26Z"),
            try pull(.tag(try TagName("v1")), .head, at: "2026-12-06T15:03:27Z"),
            try pull(.digest(try Digest(Self.digestD)), .get, at: "2026-12-06T15:03:28Z"),
        ])
        #expect(chunk.ignored == 5 && chunk.invalid == 4, "\(chunk.invalidExamples)")
        #expect(chunk.invalidExamples == [
            "line 9: a registry log line: invalid repository 'Team/App'",
            "line 10: a registry log line: time '06/Foo/2026:15:03:30 +0000' cannot be read",
            "line 11: a registry log line: invalid tag '-v1'",
        ], "the first three are kept; line 12, from elsewhere, is the fourth")
    }

    /// With the access log turned off, the application log's lines count, text and JSON alike (after
    /// a CRI prefix, inside Docker's `json-file` object), to the millisecond; its error lines, a
    /// line cut short and a path that cannot be decoded count nothing.
    @Test func withoutAnAccessLogTheApplicationLogCountsInTextOrJSON() async throws {
        let chunk = try await pulls(in: """
            2026-12-06T15:03:48.042Z stderr F time="2026-12-06T15:03:48.041184824Z" level=info msg="response completed" http.request.method=GET http.request.uri=/v2/team/app/manifests/v1 http.request.useragent=skopeo/1.9.3 http.response.status=200 http.response.written=401
            time="2026-12-06T15:03:48.097Z" level=error msg="response completed with error" err.code="manifest unknown" http.request.method=GET http.request.uri=/v2/team/app/manifests/nope http.response.status=404
            {"log":"{\\"http.request.method\\":\\"HEAD\\",\\"http.request.uri\\":\\"/v2/team/app/manifests/sha256%3A\(String(repeating: "d", count: 64))\\",\\"http.response.status\\":200,\\"level\\":\\"info\\",\\"msg\\":\\"response completed\\",\\"time\\":\\"2026-12-06T16:03:49.5+01:00\\"}\\n","stream":"stderr","time":"2026-12-06T15:03:49.6Z"}
            {"level":"info","msg":"listening on 127.0.0.1:5000","time":"2026-12-06T15:03:47Z"}
            time="2026-12-06T15:03:50Z" level=info msg="response completed" http.request.uri="/v2/team/app/manifests/v1 http.response.status=200
            time="2026-12-06T15:03:51Z" level=info msg="response completed" http.request.method=GET http.request.uri="/v2/team/app/manifests/v%ZZ1" http.response.status=200

            """)
        #expect(chunk.pulls == [
            try pull(.tag(try TagName("v1")), .get, at: "2026-12-06T15:03:48.041Z"),
            try pull(.digest(try Digest(Self.digestD)), .head, at: "2026-12-06T15:03:49.5Z"),
        ])
        #expect(chunk.ignored == 2)
        #expect(chunk.invalidExamples == [
            "line 5: neither a JSON object PullSketch reads nor a line of the registry's logs",
            "line 6: a registry log line: path '/v2/team/app/manifests/v%ZZ1' cannot be decoded",
        ])
    }

    /// A file read a MiB at a time: lines across the buffer's ends come out whole, in order, the
    /// last one without its newline too.
    @Test func linesAcrossTheReadersBufferComeOutWholeAndInOrder() async throws {
        let count = 3_000
        let lines = (0..<count).map { index in
            let padding = String(repeating: "x", count: index % 997 * 2)
            return "10.0.0.1 - - [06/Dec/2026:15:03:26 +0000] \"GET /v2/team/app/manifests/v\(index) HTTP/1.1\" 200 401 \"\(padding)\" \"curl\""
        }
        let chunk = try await pulls(in: lines.joined(separator: "\n"))
        #expect(chunk.positions == count && chunk.invalid == 0)
        #expect(chunk.pulls.map(\.reference) == (0..<count).map { .tag(try! TagName("v\($0)")) })
    }

    /// A real `docker-registry` logging at `info`, its standard output and error in one file as
    /// `kubectl logs` shows them; skopeo pushes and pulls, curl checks by tag and fetches by digest.
    /// Imported whole, its application log alone, and as Docker and journald keep it (each copy
    /// naming its own repository): each request counts once every way.
    @Test func aRegistrysOwnLogIsImportedWithEachManifestRequestOnce() async throws {
        let (log, digest) = try await onOwnThread(Self.registryTraffic)
        func lines(naming repository: String) -> [String] {
            log.split(separator: "\n").map { $0.replacingOccurrences(of: "/v2/team/app/", with: "/v2/team/\(repository)/") }
        }
        func docker(_ line: String) throws -> String {
            String(decoding: try JSONSerialization.data(withJSONObject: ["log": line + "\n", "stream": "stdout", "time": "2026-12-06T15:03:26Z"]), as: UTF8.self)
        }
        let variants = [
            ("whole", lines(naming: "whole").joined(separator: "\n")),
            ("application", lines(naming: "application").filter { $0.hasPrefix("time=") }.joined(separator: "\n")),
            ("json-file", try lines(naming: "json-file").map(docker).joined(separator: "\n")),
            ("journald", lines(naming: "journald").map { "Dec 06 15:03:26 registry docker-registry[812]: \($0)" }.joined(separator: "\n")),
        ]
        let deployment = try Deployment()
        let cutover = Timestamp(millisecondsSinceEpoch: Int64(Date().timeIntervalSince1970 * 1_000) + 60_000)
        for (name, text) in variants {
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-\(name)-\(UUID().uuidString).log")
            defer { try? FileManager.default.removeItem(at: file) }
            try Data(text.utf8).write(to: file)
            let result = try await deployment.importing(try LogFileSource(path: file.path), cutover: cutover).run()
            #expect(result.invalid == 0, "\(name): \(result.invalidExamples)")
        }
        let stored = try deployment.rows()
        for (name, _) in variants {
            #expect(stored["tag|team/\(name)|v1"]?.count == 5, "\(name): 2 GETs and 3 HEADs by tag; \(stored)")
            #expect(stored["manifest|team/\(name)|\(digest)"]?.count == 1, "\(name): one GET by digest")
        }
        #expect(stored.count == 2 * variants.count, "\(stored)")
    }

    /// Runs the registry and its clients (blocking: on a thread of its own) and returns the
    /// registry's log and the pushed manifest's digest.
    @Sendable static func registryTraffic() throws -> (log: String, digest: String) {
        let registry = try RegistryServer(notificationURL: "http://127.0.0.1:9/unused", secret: "unused", logFormatter: "text")
        let images = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-log-images-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: images) }
        let address = "127.0.0.1:\(registry.port)"
        let sampleImage = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/sample-image").standardized
        try ChildProcess.run("/bin/bash", [sampleImage.path, images.appendingPathComponent("app").path, "app"])
        try ChildProcess.run("/usr/bin/skopeo", ["copy", "-q", "--dest-tls-verify=false", "oci:\(images.appendingPathComponent("app").path):latest", "docker://\(address)/team/app:v1"])
        let digest = try registry.digest(repository: "team/app", tag: "v1")
        for pull in 0..<2 {
            try ChildProcess.run("/usr/bin/skopeo", ["copy", "-q", "--src-tls-verify=false", "docker://\(address)/team/app:v1", "dir:\(images.appendingPathComponent("pulled-\(pull)").path)"])
        }
        let accept = "Accept: application/vnd.oci.image.manifest.v1+json"
        for _ in 0..<3 { try ChildProcess.run("/usr/bin/curl", ["-sf", "-o", "/dev/null", "-I", "-H", accept, "http://\(address)/v2/team/app/manifests/v1"]) }
        try ChildProcess.run("/usr/bin/curl", ["-sf", "-o", "/dev/null", "-H", accept, "http://\(address)/v2/team/app/manifests/\(digest.replacingOccurrences(of: ":", with: "%3A"))"])
        _ = try? ChildProcess.run("/usr/bin/curl", ["-sf", "-o", "/dev/null", "http://\(address)/v2/team/app/manifests/missing"])
        return (try String(contentsOf: registry.log, encoding: .utf8), digest)
    }
}
