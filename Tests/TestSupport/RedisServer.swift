public import Foundation

/// A real `redis-server` on a free loopback port with its data in a temporary directory, for one
/// test. Stopped (and its directory removed) when the value is released.
public final class RedisServer: @unchecked Sendable {
    /// Chosen again only while the first start finds its port taken (`startOnFreePort`).
    public private(set) var port: Int
    public let directory: URL
    private let appendOnly: Bool
    private let password: String?
    private let options: [String]
    private var process: Process?

    /// Starts a server on `port` (default: a free one); `appendOnly` turns on AOF with
    /// `appendfsync everysec`, as production runs; `password` makes it require AUTH; `options` are
    /// more command-line settings (`--cluster-enabled yes`, …).
    public init(port: Int? = nil, appendOnly: Bool = false, password: String? = nil, options: [String] = []) throws {
        self.port = try port ?? freeLoopbackPort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-redis-\(UUID().uuidString)")
        self.appendOnly = appendOnly
        self.password = password
        self.options = options
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        if port == nil {
            try startOnFreePort(start, moveTo: { self.port = $0 })
        } else {
            try start()
        }
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts (or restarts) the server on the same port and directory, and waits until it answers.
    public func start() throws {
        try start(appendOnly: appendOnly)
    }

    private func start(appendOnly: Bool) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.environment["PULLSKETCH_REDIS_SERVER"] ?? "/usr/bin/redis-server")
        process.arguments = [
            "--bind", "127.0.0.1", "--port", String(port), "--dir", directory.path, "--save", "",
            "--appendonly", appendOnly ? "yes" : "no", "--appendfsync", "everysec",
        ] + (password.map { ["--requirepass", $0] } ?? []) + options
        // A log, not the test runner's descriptors: a server outliving a crashed test binary would
        // hold them open, and the runner would wait for their end forever instead of reporting.
        let log = directory.appendingPathComponent("redis.log")
        _ = FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        defer { try? output.close() }
        process.standardOutput = output
        process.standardError = output
        try process.run()
        self.process = process
        do {
            try waitUntilListening(port: port, timeout: 30, while: { process.isRunning })
        } catch {
            let state = process.isRunning ? "still running" : "exited with \(process.terminationStatus)"
            throw ChildProcessError(command: "redis-server --port \(port)", output: "not listening (30 s at most), \(state); its log's last lines:\n" + lastLines(of: log))
        }
    }

    /// Saves the data set (`SAVE`) and keeps a copy of the snapshot file aside; returns the copy.
    public func snapshot() throws -> URL {
        let save = Process()
        save.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
        save.arguments = ["-p", String(port)] + (password.map { ["-a", $0, "--no-auth-warning"] } ?? []) + ["SAVE"]
        save.standardOutput = FileHandle.nullDevice
        try save.run()
        save.waitUntilExit()
        let copy = directory.appendingPathComponent("snapshot-\(UUID().uuidString).rdb")
        try FileManager.default.copyItem(at: directory.appendingPathComponent("dump.rdb"), to: copy)
        return copy
    }

    /// Kills the server and starts it again from `snapshot` alone, as after restoring a backup or
    /// failing over to a replica that lagged: whatever happened after the snapshot is gone. With
    /// append-only files their history is discarded and started over from the snapshot.
    public func restart(from snapshot: URL) throws {
        kill()
        let dump = directory.appendingPathComponent("dump.rdb")
        try? FileManager.default.removeItem(at: dump)
        try? FileManager.default.removeItem(at: directory.appendingPathComponent("appendonlydir"))
        try FileManager.default.copyItem(at: snapshot, to: dump)
        try start(appendOnly: false)
        if appendOnly {
            let enable = Process()
            enable.executableURL = URL(fileURLWithPath: "/usr/bin/redis-cli")
            enable.arguments = ["-p", String(port)] + (password.map { ["-a", $0, "--no-auth-warning"] } ?? []) + ["CONFIG", "SET", "appendonly", "yes"]
            enable.standardOutput = FileHandle.nullDevice
            try enable.run()
            enable.waitUntilExit()
        }
    }

    public var isRunning: Bool { process?.isRunning ?? false }

    /// SIGSTOP: the server stops answering but keeps its connections, and what clients send
    /// meanwhile waits in their sockets until `resume` — a Redis stalled by a long script, a fork
    /// or its host.
    public func pause() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGSTOP)
    }

    /// SIGCONT after `pause`: the server reads what waited and runs it.
    public func resume() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGCONT)
    }

    /// SIGKILL: no shutdown, no final fsync. Also how a test's server is stopped: SIGTERM can
    /// stay blocked in a child spawned from a test runner's thread, and nothing here needs a
    /// graceful shutdown.
    public func kill() {
        guard let process, process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }
}
