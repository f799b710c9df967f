public import Foundation

/// A real CNCF distribution registry (Debian's `docker-registry`) on a free loopback port, storage
/// in a temporary directory (or `directory`, kept when the registry stops, so a second registry
/// can serve what a first one stored), deletes enabled, sending notifications to
/// `notificationURL` with a bearer secret and the manifests' references; with `user`, clients must sign in with it (basic
/// authentication against an htpasswd file).
public final class RegistryServer: @unchecked Sendable {
    /// Chosen again only while the first start finds its port taken (`startOnFreePort`).
    public private(set) var port: Int
    public let directory: URL
    private let ownsDirectory: Bool
    private var process: ChildProcess?

    public struct User: Sendable {
        public var name: String
        public var password: String

        public init(name: String, password: String) {
            self.name = name
            self.password = password
        }
    }

    /// What the registry wrote, standard output and standard error together.
    public var log: URL { process!.log }

    /// Starts a registry on `port` (default: a free one, and another while the first start finds
    /// it taken: `startOnFreePort`); with `logFormatter` (`text` or `json`), it logs every request
    /// to its application log too (level `info`), as well as to its access log.
    public init(
        port: Int? = nil, notificationURL: String, secret: String, directory: URL? = nil, user: User? = nil, logFormatter: String? = nil
    ) throws {
        self.port = try port ?? freeLoopbackPort()
        ownsDirectory = directory == nil
        self.directory = directory ?? FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-registry-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: self.directory, withIntermediateDirectories: true)
        let start = { try self.start(notificationURL: notificationURL, secret: secret, user: user, logFormatter: logFormatter) }
        if port == nil {
            try startOnFreePort(start, moveTo: { self.port = $0 })
        } else {
            try start()
        }
    }

    /// Writes the configuration for `port` and starts the registry; throws with its log's last
    /// lines when it does not listen (a registry whose port is taken exits at once).
    private func start(notificationURL: String, secret: String, user: User?, logFormatter: String?) throws {
        var auth = ""
        if let user {
            // distribution reads bcrypt hashes only; glibc's crypt makes them ($2b$), at the lowest
            // cost (16 rounds), since the registry checks the password on every request.
            let hash = try ChildProcess.run("/usr/bin/python3", [
                "-W", "ignore", "-c", "import crypt, sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))",
                user.password,
            ])
            let file = directory.appendingPathComponent("htpasswd-\(port)")
            try "\(user.name):\(hash.trimmingCharacters(in: .whitespacesAndNewlines))\n".write(to: file, atomically: true, encoding: .utf8)
            auth = """
                auth:
                  htpasswd:
                    realm: pullsketch-test
                    path: \(file.path)
                """
        }
        let config = directory.appendingPathComponent("config-\(port).yml")
        try """
            version: 0.1
            log:
              level: \(logFormatter == nil ? "warn" : "info")
              formatter: \(logFormatter ?? "text")
            storage:
              filesystem:
                rootdirectory: \(directory.appendingPathComponent("data").path)
              delete:
                enabled: true
            http:
              addr: 127.0.0.1:\(port)
            notifications:
              events:
                # Push events of image indexes name their platform manifests.
                includereferences: true
              endpoints:
                - name: pullsketch
                  url: \(notificationURL)
                  headers:
                    Authorization: [Bearer \(secret)]
                  timeout: 1s
                  threshold: 10
                  backoff: 1s
            \(auth)
            """.write(to: config, atomically: true, encoding: .utf8)
        let binary = ProcessInfo.processInfo.environment["PULLSKETCH_DOCKER_REGISTRY"] ?? "/usr/bin/docker-registry"
        let process = try ChildProcess(URL(fileURLWithPath: binary), ["serve", config.path], log: directory.appendingPathComponent("registry-\(port).log"))
        do {
            try waitUntilListening(port: port, timeout: 20, while: { process.isRunning })
        } catch {
            process.kill()
            throw ChildProcessError(command: "docker-registry on port \(port)", output: "not listening (20 s at most); its log's last lines:\n" + lastLines(of: process.log))
        }
        self.process = process
    }

    deinit {
        process?.kill()
        if ownsDirectory { try? FileManager.default.removeItem(at: directory) }
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
