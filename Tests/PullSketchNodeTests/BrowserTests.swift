import Foundation
import Hummingbird
import PullSketchNode
import PullSketchTestSupport
import ServiceLifecycle
import Testing

/// The UI in real headless Chromium (Debian's `chromium`): a live node on a free loopback port
/// (`read_auth: none`: headless Chromium cannot present a token; sign-in is covered by
/// `ReadAPITests`), pages loaded and their DOM read back after rendering.
@Suite(.postgresServer) struct BrowserTests {
    /// Serves the fixture's node on a free loopback port while `body` runs with its base URL.
    func serving(_ fixture: NodeFixture, _ body: (String) async throws -> Void) async throws {
        // Port 0: the kernel picks a free port when the server binds; the server reports it.
        let (bound, reportPort) = AsyncStream.makeStream(of: Int.self)
        let application = Application(
            router: fixture.node.router(), configuration: .init(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in reportPort.yield(channel.localAddress?.port ?? 0) }
        )
        // Detached: a child task would hold the suite's PostgreSQL (a task-local) past the suite's end.
        let server = Task.detached { try await application.runService() }
        defer { server.cancel() }
        var ports = bound.makeAsyncIterator()
        let port = try #require(await ports.next())
        try await body("http://127.0.0.1:\(port)")
    }

    @Test func theTagsPageShowsCountsAndFollowsItsSortLinks() async throws {
        let fixture = try ReadAPITests().seeded(readAuth: ReadAuth.none)
        try await serving(fixture) { base in try await checkTagsPage(base) }
    }

    func checkTagsPage(_ base: String) async throws {
        let byName = try await chromium(["--dump-dom", "\(base)/repository/team/app?sort=name&order=asc"])
        #expect(rows(byName) == ["v1", "v2", "v3"])
        #expect(byName.contains(">1.7K<") && byName.contains(">10K+<") && byName.contains("≈ ±40"))
        #expect(byName.contains(">never<"), "a tag never pulled says so")
        #expect(byName.contains("pulls known from <span title=\"2026-11-01T00:00:00.000Z\">"), "and since when pulls are known")
        #expect(byName.contains("title=\"2026-11-22T07:00:00.000Z\""), "last used: the manifest's use by digest, after the tag's last pull")
        let link = try #require(byName.firstMatch(of: /href="(\?sort=last_pulled[^"]*)"/)?.1, "no sort link for last pulled")
        let byLastPull = try await chromium(["--dump-dom", "\(base)/repository/team/app\(link.replacingOccurrences(of: "&amp;", with: "&"))"])
        #expect(rows(byLastPull) == ["v2", "v1", "v3"], "most recently pulled first, never pulled last")
        let screenshot = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-ui-\(UUID().uuidString).png")
        defer { try? FileManager.default.removeItem(at: screenshot) }
        _ = try await chromium(["--screenshot=\(screenshot.path)", "--window-size=1100,520", "\(base)/repository/team/app"])
        #expect(try keepScreenshot(screenshot, as: "ui.png"))
        let manifest = try await chromium(["--dump-dom", "\(base)/repository/team/app/manifest/\(ReadAPITests.digest)"])
        #expect(manifest.matches(of: /<td><code>(v\d)<\/code><\/td>/).map { String($0.1) } == ["v1", "v2", "v3"], "the tags pointing at it")
        #expect(manifest.contains("Last pulled by tag") && manifest.contains("<code>v2</code>"))
        #expect(manifest.matches(of: />never</).count == 1, "v3 was never pulled; the manifest's own times do not leak into its row")
        _ = try await chromium(["--screenshot=\(screenshot.path)", "--window-size=1100,560", "\(base)/repository/team/app/manifest/\(ReadAPITests.digest)"])
        #expect(try keepScreenshot(screenshot, as: "manifest.png"))
    }

    @Test func theTagsPagePagesThroughTenThousandTags() async throws {
        let fixture = try NodeFixture(readAuth: ReadAuth.none)
        _ = try fixture.sql("""
            WITH r AS (INSERT INTO repositories (name) VALUES ('big/app') RETURNING id),
            c AS (INSERT INTO catalog_tags (repository_id, tag, digest, pushed_at)
                SELECT id, 'v' || lpad(n::text, 5, '0'), 'sha256:' || lpad(to_hex(n), 64, '0'), '2026-01-01T00:00:00Z'
                FROM r, generate_series(0, 9999) n RETURNING 1)
            INSERT INTO tag_stats (repository_id, tag, fetches, pull_count, last_pulled_at, last_used_at)
            SELECT id, 'v' || lpad(n::text, 5, '0'), n, n, '2026-11-01T00:00:00Z'::timestamptz + n * interval '1 minute',
                '2026-11-01T00:00:00Z'::timestamptz + n * interval '1 minute'
            FROM r, generate_series(0, 9999) n
            """)
        try await serving(fixture) { base in
            var page = try await chromium(["--dump-dom", "\(base)/repository/big/app?sort=name&order=asc&limit=100"])
            #expect(rows(page) == (0..<100).map { String(format: "v%05d", $0) })
            #expect(page.contains("Tags 1–100 of 10000") && page.contains("page 1 of 100 · 10000 tags"))
            for expected in 2...3 {
                let next = try #require(page.firstMatch(of: /href="([^"]*)" rel="next"/)?.1, "no next link on page \(expected - 1)")
                page = try await chromium(["--dump-dom", "\(base)/repository/big/app\(next.replacingOccurrences(of: "&amp;", with: "&"))"])
                #expect(rows(page) == ((expected - 1) * 100..<expected * 100).map { String(format: "v%05d", $0) })
            }
            let last = try #require(page.firstMatch(of: /href="([^"]*)">last</)?.1)
            page = try await chromium(["--dump-dom", "\(base)/repository/big/app\(last.replacingOccurrences(of: "&amp;", with: "&"))"])
            #expect(rows(page) == (9_900..<10_000).map { String(format: "v%05d", $0) } && page.contains("page 100 of 100"))
            #expect(page.firstMatch(of: /rel="next"/) == nil, "the last page has no next")
            let byCount = try await chromium(["--dump-dom", "\(base)/repository/big/app?sort=pull_count&page=2&limit=50"])
            #expect(rows(byCount) == (9_900..<9_950).reversed().map { String(format: "v%05d", $0) }, "the sort holds across pages")
        }
    }

    /// The tag names of the table's rows, in order.
    func rows(_ html: String) -> [String] {
        html.matches(of: /<td><code>([^<]+)<\/code><\/td>/).map { String($0.1) }
    }

    /// Runs headless Chromium with a fresh profile and returns what it printed; on a thread of its
    /// own, so the waiting never holds a thread the node being loaded needs.
    func chromium(_ arguments: [String]) async throws -> String {
        try await onOwnThread { try Self.runChromium(arguments) }
    }

    static func runChromium(_ arguments: [String]) throws -> String {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.environment["PULLSKETCH_CHROMIUM"] ?? "/usr/bin/chromium")
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile.path)",
        ] + arguments
        let output = try OutputFile()  // not a pipe: see `ChildProcess.run`
        process.standardOutput = output.handle
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        return output.text
    }

}
