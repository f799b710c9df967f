import Foundation
import PullSketchTestSupport
import Testing

/// A multi-platform image through the real registry: skopeo pushes an image index and its
/// platform manifests, and pulls the index by tag, then one platform manifest by digest.
extension EndToEndTests {
    @Test func anImageIndexIsInUseWhileAnyPlatformManifestIsAndEachPlatformIsCountedExactly() async throws {
        let stack = try Stack()
        try stack.push("multi-arch", to: "team/multi:v1", platforms: ["linux/amd64", "linux/arm64"])
        let index = try stack.registry.digest(repository: "team/multi", tag: "v1")
        let platforms = try platformDigests(JSONSerialization.jsonObject(with: stack.registry.blob(index)))
        let amd64 = try #require(platforms["amd64"]), arm64 = try #require(platforms["arm64"])
        let indexPath = "team/multi/manifest/\(index)/pull_statistics"
        func listed() throws -> [String: [String: Any]] {
            let rows = try stack.api(indexPath)["platforms"] as? [[String: Any]] ?? []
            return Dictionary(rows.map { ($0["manifest_digest"] as? String ?? "", $0) }, uniquingKeysWith: { first, _ in first })
        }

        // The push event's references link the index to its platform manifests at once; their
        // platforms are unknown until the index is read.
        try await eventually(within: 60) { try Set(listed().keys) == [amd64, arm64] }
        #expect(try listed().values.allSatisfy { $0["platform"] is NSNull })
        // A catalog sync reads the index and names the platforms (its GET is no pull).
        try ChildProcess.run(
            builtProduct("pullsketch").path, ["catalog", "sync", "--registry", "http://127.0.0.1:\(stack.registry.port)"], environment: stack.environment
        )
        #expect(try listed()[amd64]?["platform"] as? String == "linux/amd64")
        #expect(try listed()[arm64]?["platform"] as? String == "linux/arm64")
        #expect(try stack.api("team/multi/manifest/\(arm64)/pull_statistics")["index_digests"] as? [String] == [index])

        // Pulls by tag resolve the index, then the platform's manifest by digest: 2 for amd64 and
        // 3 for arm64; one more of arm64 by its digest alone.
        for _ in 0..<2 { try stack.pull("team/multi:v1", architecture: "amd64") }
        for _ in 0..<3 { try stack.pull("team/multi:v1", architecture: "arm64") }
        try stack.pull("team/multi@\(arm64)")
        try await eventually(within: 60) {
            let rows = try listed(), indexPulls = try stack.api(indexPath)["total_pull_count"] as? Int
            return rows[amd64]?["total_pull_count"] as? Int == 2 && rows[arm64]?["total_pull_count"] as? Int == 4 && indexPulls == 5
        }
        #expect(try listed().values.allSatisfy { $0["exact"] as? Bool == true })
        #expect(try stack.api("team/multi/tag/v1/pull_statistics")["tag_pull_count"] as? Int == 5)

        // Everything pushed and used 100 days ago except the arm64 manifest: the tag and its index
        // are in use through it, and no platform manifest is ever offered on its own.
        try stack.sql("""
            UPDATE catalog_tags SET pushed_at = now() - interval '100 days';
            UPDATE catalog_manifests SET pushed_at = now() - interval '100 days';
            UPDATE manifest_stats SET pushed_at = now() - interval '100 days' WHERE pushed_at IS NOT NULL;
            UPDATE tag_stats SET last_used_at = now() - interval '100 days', last_pulled_at = now() - interval '100 days';
            UPDATE manifest_stats SET last_used_at = now() - interval '100 days', last_pulled_at = now() - interval '100 days'
                WHERE digest <> '\(arm64)';
            """)
        let dryRun = { try stack.api("team/multi/prune_candidates?not_pulled_days=30") }
        #expect(try (dryRun()["candidates"] as? [[String: Any]])?.isEmpty == true, "the index is in use while arm64 is")
        #expect(try (dryRun()["manifest_candidates"] as? [[String: Any]])?.isEmpty == true)
        // Once arm64 is idle too, the tag goes, saying why, and its platform manifests go with it.
        try stack.sql("UPDATE manifest_stats SET last_used_at = now() - interval '100 days' WHERE digest = '\(arm64)'")
        let candidates = try dryRun()["candidates"] as? [[String: Any]] ?? []
        #expect(candidates.compactMap { $0["tag_name"] as? String } == ["v1"])
        #expect((candidates.first?["reasons"] as? [String])?.contains { $0.contains("platform manifests") } == true)
        #expect(try (dryRun()["manifest_candidates"] as? [[String: Any]])?.isEmpty == true)

        // The manifest page lists the platforms, each with its pulls.
        let dom = try ChildProcess.run("/usr/bin/chromium", [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--user-data-dir=\(stack.images.appendingPathComponent("chromium").path)",
            "--dump-dom", "http://127.0.0.1:\(stack.nodePort)/repository/team/multi/manifest/\(index)",
        ])
        #expect(dom.contains("id=\"manifest-platforms\"") && dom.contains("<code>linux/amd64</code>") && dom.contains("<code>linux/arm64</code>"))
        let screenshot = stack.images.appendingPathComponent("index.png")
        try ChildProcess.run("/usr/bin/chromium", [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
            "--user-data-dir=\(stack.images.appendingPathComponent("chromium").path)", "--screenshot=\(screenshot.path)",
            "--window-size=1100,640", "http://127.0.0.1:\(stack.nodePort)/repository/team/multi/manifest/\(index)",
        ])
        #expect(try keepScreenshot(screenshot, as: "index.png"))
    }
}
