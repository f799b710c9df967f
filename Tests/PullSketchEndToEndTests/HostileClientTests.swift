import Foundation
import PullSketchTestSupport
import Testing

/// What any client of the registry can send, and the registry passes on to PullSketch.
extension EndToEndTests {
    /// A client may send the registry a `User-Agent` of most of a megabyte, and distribution
    /// forwards it in the pull's notification, JSON-escaped: a `<` becomes six bytes. An envelope
    /// over `max_body_bytes` answered with a 4xx is delivered again forever, and every notification
    /// behind it waits: one request would stop all counting.
    @Test func aMegabyteUserAgentDoesNotStopTheRegistrysNotifications() async throws {
        let stack = try Stack()
        try stack.push("app-one", to: "team/app:v1")
        try FileManager.default.createDirectory(at: stack.images, withIntermediateDirectories: true)
        let header = stack.images.appendingPathComponent("user-agent-header")
        try Data(("User-Agent: " + String(repeating: "<", count: 400_000) + "\n").utf8).write(to: header)
        let status = try ChildProcess.run("/usr/bin/curl", [
            "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "@\(header.path)",
            "-H", "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
            "http://127.0.0.1:\(stack.registry.port)/v2/team/app/manifests/v1",
        ])
        #expect(status == "200", "the registry serves it")
        try stack.pull("team/app:v1")
        try await eventually(within: 30) { try stack.api("team/app/tag/v1/pull_statistics")["tag_pull_count"] as? Int == 1 }
        #expect(stack.node.isRunning)
    }
}
