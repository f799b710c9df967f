public import Foundation
public import Testing
import Synchronization

/// A real PostgreSQL 15 cluster on a free loopback port, data and socket in a temporary
/// directory, run as user `postgres` (initdb refuses root). Give a suite `.postgresServer` and
/// read `PostgresServer.current` in its tests; each test should use its own database
/// (`makeDatabase()`).
public final class PostgresServer: Sendable {
    @TaskLocal public static var current: PostgresServer?

    public var port: Int { chosenPort.withLock { $0 } }
    /// Chosen again only while the first start finds its port taken (`startOnFreePort`).
    private let chosenPort: Mutex<Int>
    public let directory: URL
    private static let binaries = URL(fileURLWithPath: ProcessInfo.processInfo.environment["PULLSKETCH_POSTGRES_BIN"] ?? "/usr/lib/postgresql/15/bin")

    public init() throws {
        chosenPort = Mutex(try freeLoopbackPort())
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-pg-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory.appendingPathComponent("socket"), withIntermediateDirectories: true)
        try Self.handToPostgres(directory)
        try Self.handToPostgres(directory.appendingPathComponent("socket"))
        try run("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"])
        try startOnFreePort(start, moveTo: { port in chosenPort.withLock { $0 = port } })
    }

    deinit {
        stop()
        try? FileManager.default.removeItem(at: directory)
    }

    private var data: String { directory.appendingPathComponent("data").path }

    /// Starts (or restarts) the cluster and waits until it accepts connections.
    public func start() throws {
        let options = "-p \(port) -k \(directory.appendingPathComponent("socket").path) -c listen_addresses=127.0.0.1 -c fsync=off"
        let log = directory.appendingPathComponent("log")
        do {
            try run("pg_ctl", ["-D", data, "-o", options, "-l", log.path, "-w", "start"])
        } catch let error as PostgresServerError {
            throw PostgresServerError(command: error.command, output: error.output + "server log, last lines:\n" + lastLines(of: log))
        }
    }

    /// Stops the cluster at once, without a checkpoint (recovery replays the WAL on start).
    public func stop() {
        try? run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"])
    }

    /// A libpq connection string for `database`.
    public func connectionString(database: String = "postgres") -> String {
        "host=127.0.0.1 port=\(port) user=postgres dbname=\(database) connect_timeout=5"
    }

    /// Creates an empty database with a fresh name and returns its connection string.
    /// `icuLocale` makes its default collation that ICU locale's (`en-US`, …), not the server's.
    public func makeDatabase(icuLocale: String? = nil) throws -> String {
        let name = "test_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        let collation = icuLocale.map { " TEMPLATE template0 LOCALE_PROVIDER icu ICU_LOCALE '\($0)'" } ?? ""
        try run("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-q", "-c", "CREATE DATABASE \(name)\(collation)"])
        return connectionString(database: name)
    }

    /// Runs a PostgreSQL tool as the postgres user and waits for it. Spawned with posix_spawn and
    /// reaped with waitpid: Foundation's `Process.waitUntilExit` was seen never to return for
    /// `runuser` here. Output goes to a file, not a pipe: `pg_ctl start` leaves a server running
    /// that inherits the descriptor, so a pipe would never reach end of file.
    private func run(_ tool: String, _ arguments: [String]) throws {
        let binary = Self.binaries.appendingPathComponent(tool).path
        let command = geteuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--", binary] + arguments : [binary] + arguments
        let output = directory.appendingPathComponent("\(tool).out").path
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        var argv = command.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        var pid = pid_t()
        guard posix_spawn(&pid, command[0], &actions, nil, &argv, environ) == 0 else { throw POSIXError(.ENOEXEC) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        guard status == 0 else {
            let message = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            throw PostgresServerError(command: command.joined(separator: " "), output: message)
        }
    }

    /// Makes `url` the postgres user's, when running as root.
    private static func handToPostgres(_ url: URL) throws {
        guard geteuid() == 0, let user = getpwnam("postgres") else { return }
        guard chown(url.path, user.pointee.pw_uid, user.pointee.pw_gid) == 0 else { throw POSIXError(.EPERM) }
    }
}

public struct PostgresServerError: Error, CustomStringConvertible {
    public let command: String
    public let output: String
    public var description: String { "\(command) failed: \(output)" }
}

/// Runs a suite's tests with one PostgreSQL cluster, started before and stopped after. Started on
/// a thread of its own: the suites that have one (25) start theirs together, each `initdb` taking
/// seconds.
public struct PostgresServerTrait: SuiteTrait, TestScoping {
    public var isRecursive: Bool { false }

    public func provideScope(for test: Test, testCase: Test.Case?, performing function: @Sendable () async throws -> Void) async throws {
        let server = try await onOwnThread { try PostgresServer() }
        try await PostgresServer.$current.withValue(server) { try await function() }
    }
}

extension Trait where Self == PostgresServerTrait {
    /// One real PostgreSQL cluster for the whole suite.
    public static var postgresServer: Self { PostgresServerTrait() }
}
