import Foundation
import PullSketchTestSupport
import Testing

/// What any client of the registry can send, and the registry passes on to PullSketch.
extension EndToEndTests {
    /// A client may send the registry any `User-Agent`, and distribution forwards it in the pull's
    /// notification, JSON-escaped. One of odd characters — a tab, quotes and backslashes, a line
    /// separator, an emoji, a byte that is not UTF-8 — is read, and its pull counts. One of most of
    /// a megabyte, of `<` that the encoder writes as six bytes each, makes an envelope over
    /// `max_body_bytes`; answered with a 4xx, it would be delivered again forever and every
    /// notification behind it would wait: one request would stop all counting. It is dropped.
    @Test func aClientsUserAgentNeverStopsTheRegistrysNotifications() async throws {
        let stack = try Stack()
        try stack.push("app-one", to: "team/app:v1")
        try FileManager.default.createDirectory(at: stack.images, withIntermediateDirectories: true)
        func get(userAgent: [UInt8]) throws {
            let header = stack.images.appendingPathComponent("user-agent-\(UUID().uuidString)")
            try Data(Array("User-Agent: ".utf8) + userAgent + [UInt8(ascii: "\n")]).write(to: header)
            let status = try ChildProcess.run("/usr/bin/curl", [
                "-s", "-o", "/dev/null", "-w", "%{http_code}", "-H", "@\(header.path)",
                "-H", "Accept: application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json",
                "http://127.0.0.1:\(stack.registry.port)/v2/team/app/manifests/v1",
            ])
            #expect(status == "200", "the registry serves it")
        }
        try get(userAgent: Array("odd\t\"quoted\" \\back\\slash\u{2028}\u{1F433} ".utf8) + [0xFF, 0xFE] + Array("/1".utf8))
        try get(userAgent: Array(repeating: UInt8(ascii: "<"), count: 400_000))
        try stack.pull("team/app:v1")
        try await eventually(within: 30) { try stack.api("team/app/tag/v1/pull_statistics")["tag_pull_count"] as? Int == 2 }
        #expect(stack.node.isRunning)
    }
}
