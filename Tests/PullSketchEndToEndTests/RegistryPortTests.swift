import Foundation
import PullSketchTestSupport
import Testing

/// The test registry's start when its port is taken, as PostgreSQL's and Redis's are tested in
/// `LoopbackPortTests`: `docker-registry` exits at once, the wait for it ends then and says why
/// (in Go's words, lower case), and `startOnFreePort` moves a new registry to another port on it.
@Suite struct RegistryPortTests {
    @Test func aRegistryWhosePortIsTakenFailsAtOnceAndANewOneMovesOn() throws {
        let holder = try LoopbackPortHolder()
        let began = Date()
        #expect {
            _ = try RegistryServer(port: holder.port, notificationURL: "http://127.0.0.1:9/nobody", secret: "unused")
        } throws: { error in
            "\(error)".contains("address already in use")
        }
        #expect(Date().timeIntervalSince(began) < 10)

        var ports = [holder.port]
        var registry: RegistryServer?
        try startOnFreePort({
            registry = try RegistryServer(port: ports.last!, notificationURL: "http://127.0.0.1:9/nobody", secret: "unused")
        }, moveTo: { ports.append($0) })
        #expect(ports.count == 2)
        #expect(registry?.port == ports.last)
    }
}
