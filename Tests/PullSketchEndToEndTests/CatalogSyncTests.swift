import Foundation
import PullSketchTestSupport
import Testing

/// `pullsketch catalog sync` against a real `docker-registry` whose tags were pushed before
/// PullSketch was deployed: a first registry, notifying nobody, takes the pushes; the stack's
/// registry then serves the same storage, behind basic authentication, and notifies the node.
extension EndToEndTests {
    static let user = RegistryServer.User(name: "sync", password: "sync-password-42")

    /// The registry's history: `repositories` repositories, each with two images and `tags` tags
    /// (every third on the second image); returns repository → tag → digest.
    func pushHistory(into storage: URL, repositories: Int, tags: Int) throws -> [String: [String: String]] {
        let old = try RegistryServer(notificationURL: "http://127.0.0.1:9/nobody", secret: Self.secret, directory: storage, user: Self.user)
        let images = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-history-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: images) }
        let credentials = "\(Self.user.name):\(Self.user.password)"
        var expected: [String: [String: String]] = [:]
        for image in ["first", "second"] {
            let layout = images.appendingPathComponent(image).path
            try ChildProcess.run("/bin/bash", [Self.root.appendingPathComponent("scripts/sample-image").path, layout, image])
            for index in 0..<repositories {
                try ChildProcess.run("/usr/bin/skopeo", [
                    "copy", "-q", "--dest-tls-verify=false", "--dest-creds", credentials, "oci:\(layout):latest",
                    "docker://127.0.0.1:\(old.port)/history/app\(index):\(image)",
                ])
            }
        }
        for index in 0..<repositories {
            let repository = "history/app\(index)"
            let digests = try ["first", "second"].map { try old.digest(repository: repository, tag: $0) }
            expected[repository] = ["first": digests[0], "second": digests[1]]
            for tag in 0..<tags {
                let digest = digests[tag % 3 == 0 ? 1 : 0]
                let manifest = images.appendingPathComponent("manifest-\(digest)")
                if !FileManager.default.fileExists(atPath: manifest.path) { try old.blob(digest).write(to: manifest) }
                // A new tag for an existing manifest, as `docker tag` + `docker push` makes it.
                let status = try ChildProcess.run("/usr/bin/curl", [
                    "-s", "-o", "/dev/null", "-w", "%{http_code}", "-u", credentials, "-X", "PUT",
                    "-H", "Content-Type: application/vnd.oci.image.manifest.v1+json", "--data-binary", "@\(manifest.path)",
                    "http://127.0.0.1:\(old.port)/v2/\(repository)/manifests/v\(tag)",
                ])
                try #require(status == "201", "PUT tag v\(tag): \(status)")
                expected[repository]!["v\(tag)"] = digest
            }
        }
        return expected
    }

    @Test func catalogSyncFindsEveryTagOfARealRegistryResumesAndNeverCountsItsOwnRequests() async throws {
        let storage = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-history-registry-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: storage) }
        let expected = try pushHistory(into: storage, repositories: 3, tags: 110)
        let stack = try Stack(registryDirectory: storage, registryUser: Self.user)
        let secrets = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-sync-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: secrets, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: secrets) }
        let password = secrets.appendingPathComponent("password"), wrong = secrets.appendingPathComponent("wrong")
        try Data(Self.user.password.utf8).write(to: password)
        try Data("not-the-password".utf8).write(to: wrong)
        let checkpoint = secrets.appendingPathComponent("checkpoint.json")
        let pullsketch = builtProduct("pullsketch").path
        func sync(_ passwordFile: URL) throws -> String {
            try ChildProcess.run(pullsketch, [
                "catalog", "sync", "--registry", "http://127.0.0.1:\(stack.registry.port)", "--username", Self.user.name,
                "--password-file", passwordFile.path, "--page-size", "7", "--requests-per-second", "500", "--checkpoint", checkpoint.path,
            ], environment: stack.environment)
        }

        let unkeepable = #expect(throws: ChildProcessError.self, "a pace no clock can keep is refused") {
            try ChildProcess.run(pullsketch, [
                "catalog", "sync", "--registry", "http://127.0.0.1:\(stack.registry.port)", "--requests-per-second", "1e-300",
            ], environment: stack.environment)
        }
        #expect(unkeepable?.output.contains("--requests-per-second must be within 0.001...100000") == true, "a clear error, not a crash")
        #expect(throws: ChildProcessError.self, "a wrong password is refused") { try sync(wrong) }
        #expect(try stack.catalog().isEmpty, "a refused sync writes nothing")

        let output = try sync(password)
        #expect(output.contains("3 repositories, \(3 * 112) tags, 0 skipped"), "\(output)")
        let catalog = try stack.catalog()
        #expect(catalog == expected, "every tag, with the digest it points at, through pages of 7")

        // Resuming after the second repository syncs only the third; a second run changes nothing.
        try Data(#"{"source":"http://127.0.0.1:\#(stack.registry.port)","position":"history/app1"}"#.utf8).write(to: checkpoint)
        #expect(try sync(password).contains("1 repositories, 112 tags"))
        #expect(try stack.catalog() == catalog)

        // The sync's HEADs reached the node as pulls and were not counted: a real pull sent after
        // them is the only one.
        try stack.pull("history/app0:v1")
        // Not a freshness check (the other test makes it): allow for a loaded machine.
        try await eventually(within: 60) { (try stack.api("history/app0/tag/v1/pull_statistics")["tag_pull_count"] as? Int) == 1 }
        let pulled = try ChildProcess.run("/usr/bin/psql", [stack.database, "-Atc", "SELECT count(*) FROM tag_stats WHERE pull_count > 0"])
        #expect(pulled.trimmingCharacters(in: .whitespacesAndNewlines) == "1")

        // Never-pulled tags are known: the repository page lists them and a dry run offers them by
        // their push time (the time the sync saw them).
        let page = try stack.api("history/app2/pull_statistics?sort=name&limit=500")
        #expect((page["tags"] as? [[String: Any]])?.count == 112)
        let html = try ChildProcess.run("/usr/bin/curl", ["-s", "http://127.0.0.1:\(stack.nodePort)/repository/history/app2?limit=500"])
        #expect(html.components(separatedBy: "<span class=\"never\">never</span>").count - 1 >= 2 * 112, "every tag in the UI, never pulled or used")
        let candidates = try stack.api("history/app2/prune_candidates?not_pulled_days=0")
        #expect((candidates["candidates"] as? [[String: Any]])?.count == 112)
    }
}

extension EndToEndTests.Stack {
    /// Live catalog tags: repository → tag → digest.
    func catalog() throws -> [String: [String: String]] {
        let text = try ChildProcess.run("/usr/bin/psql", [database, "-AtF", " ", "-c", """
            SELECT r.name, c.tag, c.digest FROM catalog_tags c JOIN repositories r ON r.id = c.repository_id WHERE c.deleted_at IS NULL
            """])
        var result: [String: [String: String]] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: " ").map(String.init)
            result[parts[0], default: [:]][parts[1]] = parts[2]
        }
        return result
    }
}
