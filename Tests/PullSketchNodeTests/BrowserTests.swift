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
    @Test func theTagsPageShowsCountsAndFollowsItsSortLinks() async throws {
        let fixture = try ReadAPITests().seeded(readAuth: ReadAuth.none)
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
        let base = "http://127.0.0.1:\(port)"
        let byName = try chromium(["--dump-dom", "\(base)/repository/team/app?sort=name&order=asc"])
        #expect(rows(byName) == ["v1", "v2", "v3"])
        #expect(byName.contains(">1.7K<") && byName.contains(">10K+<") && byName.contains("≈ ±40"))
        #expect(byName.contains(">never<"), "a tag never pulled says so")
        #expect(byName.contains("title=\"2026-11-22T07:00:00.000Z\""), "last used: the manifest's use by digest, after the tag's last pull")
        let link = try #require(byName.firstMatch(of: /href="(\?sort=last_pulled[^"]*)"/)?.1, "no sort link for last pulled")
        let byLastPull = try chromium(["--dump-dom", "\(base)/repository/team/app\(link.replacingOccurrences(of: "&amp;", with: "&"))"])
        #expect(rows(byLastPull) == ["v2", "v1", "v3"], "most recently pulled first, never pulled last")
        let screenshot = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-ui-\(UUID().uuidString).png")
        _ = try chromium(["--screenshot=\(screenshot.path)", "--window-size=1100,520", "\(base)/repository/team/app"])
        let png = try Data(contentsOf: screenshot)
        #expect(png.starts(with: [0x89, 0x50, 0x4E, 0x47]) && png.count > 5_000)
        if let keep = ProcessInfo.processInfo.environment["PULLSKETCH_SCREENSHOT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(at: screenshot, to: URL(fileURLWithPath: keep))
        }
    }

    /// The tag names of the table's rows, in order.
    func rows(_ html: String) -> [String] {
        html.matches(of: /<td><code>([^<]+)<\/code><\/td>/).map { String($0.1) }
    }

    /// Runs headless Chromium with a fresh profile and returns what it printed.
    func chromium(_ arguments: [String]) throws -> String {
        let profile = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-chromium-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: profile) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.environment["PULLSKETCH_CHROMIUM"] ?? "/usr/bin/chromium")
        process.arguments = [
            "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(profile.path)",
        ] + arguments
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return String(decoding: data, as: UTF8.self)
    }

}
