public import Foundation

/// A real CNCF distribution registry (Debian's `docker-registry`) on a free loopback port, storage
/// in a temporary directory, deletes enabled, sending notifications to `notificationURL` with a
/// bearer secret.
public final class RegistryServer: @unchecked Sendable {
    public let port: Int
    public let directory: URL
    private let process: ChildProcess

    public init(notificationURL: String, secret: String) throws {
        port = try freeLoopbackPort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-registry-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let config = directory.appendingPathComponent("config.yml")
        try """
            version: 0.1
            log:
              level: warn
            storage:
              filesystem:
                rootdirectory: \(directory.appendingPathComponent("data").path)
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)
            notifications:
              endpoints:
                - name: pullsketch
                  url: \(notificationURL)
                  headers:
                    Authorization: [Bearer \(secret)]
                  timeout: 1s
                  threshold: 10
                  backoff: 1s
            """.write(to: config, atomically: true, encoding: .utf8)
        let binary = ProcessInfo.processInfo.environment["PULLSKETCH_DOCKER_REGISTRY"] ?? "/usr/bin/docker-registry"
        process = try ChildProcess(URL(fileURLWithPath: binary), ["serve", config.path], log: directory.appendingPathComponent("registry.log"))
        try waitUntilListening(port: port, timeout: 20)
    }

    deinit {
        process.kill()
        try? FileManager.default.removeItem(at: directory)
    }

    /// The digest a tag points at, read from the registry's storage (an API call would be a pull).
    public func digest(repository: String, tag: String) throws -> String {
        let link = directory.appendingPathComponent("data/docker/registry/v2/repositories/\(repository)/_manifests/tags/\(tag)/current/link")
        return try String(contentsOf: link, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// A stored blob's bytes (a manifest's JSON, say), read from storage.
    public func blob(_ digest: String) throws -> Data {
        let hex = String(digest.dropFirst("sha256:".count))
        return try Data(contentsOf: directory.appendingPathComponent("data/docker/registry/v2/blobs/sha256/\(hex.prefix(2))/\(hex)/data"))
    }
}
