import Foundation
import PullSketchCore
import PullSketchEvents
import Testing

@Suite struct IgnoredClientsTests {
    let scanners = try! IgnoredClients(["trivy/*", "*GRYPE*", "clair"])

    @Test func aUserAgentIsMatchedWholeInEitherCaseWithStarsForAnyRun() {
        #expect(scanners.ignores(userAgent: "Trivy/0.48.0 go-containerregistry/v0.16.1"))
        #expect(scanners.ignores(userAgent: "anchore grype/0.74.0"))
        #expect(scanners.ignores(userAgent: "grype"))
        #expect(scanners.ignores(userAgent: "Clair"))
        #expect(!scanners.ignores(userAgent: "clair/4.7"), "a pattern without a star matches the whole user agent only")
        #expect(!scanners.ignores(userAgent: "docker/24.0.7 go/go1.20.10 trivy/0.48"), "trivy/* names the start")
        #expect(!scanners.ignores(userAgent: "containerd/1.7.2"))
        #expect(!scanners.ignores(userAgent: ""))
        #expect(!scanners.ignores(userAgent: nil), "a request without a user agent is counted")
        #expect(!IgnoredClients.none.ignores(userAgent: "trivy/0.48"))
        let stars = try! IgnoredClients(["*a*a*a*a*a*b"])
        #expect(!stars.ignores(userAgent: String(repeating: "a", count: 4_096)), "backtracking stays bounded")
        #expect(stars.ignores(userAgent: String(repeating: "a", count: 4_096) + "b"))
    }

    @Test(arguments: ["", "*", "***", "trivy\n", String(repeating: "a", count: 257)])
    func aPatternThatIgnoresEveryClientOrCannotBeAUserAgentIsRefused(pattern: String) {
        #expect(throws: IgnoredClients.InvalidPattern.self) { try IgnoredClients(["trivy/*", pattern]) }
    }

    /// A scanner's pull is no pull; its pushes still are catalog changes, and other clients count.
    @Test func aNotificationOrDirectPullByAnIgnoredClientIsIgnored() throws {
        func event(action: String, userAgent: String) throws -> NotificationEvent {
            let json = """
                {"id": "e1", "timestamp": "2026-12-06T10:00:00Z", "action": "\(action)",
                 "target": {"mediaType": "application/vnd.oci.image.manifest.v1+json", "repository": "team/app", "tag": "v1",
                            "digest": "sha256:\(String(repeating: "a", count: 64))"},
                 "request": {"method": "GET", "useragent": "\(userAgent)"}}
                """
            return try JSONDecoder().decode(NotificationEvent.self, from: Data(json.utf8))
        }
        #expect(try event(action: "pull", userAgent: "Trivy/0.48.0").ingested(ignoring: scanners) == .ignored)
        guard case .pull = try event(action: "pull", userAgent: "containerd/1.7.2").ingested(ignoring: scanners) else {
            Issue.record("containerd's pull is a pull")
            return
        }
        guard case .pull = try event(action: "pull", userAgent: "Trivy/0.48.0").ingested() else {
            Issue.record("counted when nothing is ignored")
            return
        }
        guard case .catalog = try event(action: "push", userAgent: "Trivy/0.48.0").ingested(ignoring: scanners) else {
            Issue.record("a push is a catalog change whoever sends it")
            return
        }
        let pull = try JSONDecoder().decode(
            DirectPull.self, from: Data(#"{"repository": "team/app", "tag": "v1", "method": "GET", "user_agent": "trivy/0.48.0"}"#.utf8)
        )
        #expect(pull.ingested(receivedAt: .now(), ignoring: scanners) == .ignored)
        let scanned = try #require(
            Data(#"{"pulls": [{"repository": "team/app", "tag": "v1", "method": "GET", "user_agent": "trivy/0.48.0"}]}"#.utf8)
                .withUnsafeBytes { DirectPulls(json: $0) }
        )
        #expect(scanned.pulls.first?.pull == pull, "the node's reader reads user_agent as the decoder does")
    }
}
