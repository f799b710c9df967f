public import Foundation

/// A program a test starts and owns: output to a log file, killed (SIGKILL) when released.
public final class ChildProcess: @unchecked Sendable {
    public let log: URL
    private let process = Process()

    public init(_ executable: URL, _ arguments: [String], environment: [String: String] = [:], log: URL) throws {
        self.log = log
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let output = try FileHandle(forWritingTo: log)
        process.executableURL = executable
        process.arguments = arguments
        process.environment = Self.environment(environment)
        process.standardOutput = output
        process.standardError = output
        try process.run()
    }

    deinit {
        kill()
    }

    public var isRunning: Bool { process.isRunning }

    public func kill() {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    /// SIGTERM, then waits up to `timeout` seconds for the exit (SIGKILL after). The program
    /// must unblock SIGTERM itself if it was started from a thread that blocks it.
    public func terminate(timeout: TimeInterval = 30) {
        guard process.isRunning else { return }
        Foundation.kill(process.processIdentifier, SIGTERM)
        _ = exits(within: timeout)
        kill()
    }

    /// Waits up to `timeout` seconds for the program to exit by itself; whether it did.
    public func exits(within timeout: TimeInterval) -> Bool {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning, Date() < deadline { Thread.sleep(forTimeInterval: 0.05) }
        return !process.isRunning
    }

    /// Runs a program to completion; returns its standard output, throws with its output when it
    /// fails. Both outputs go to files, read once the program has exited: a pipe read to its end
    /// would wait for every process that inherited its writing end, such as a PostgreSQL server
    /// another test started meanwhile, which lives on.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.environment = Self.environment(environment)
        let output = try OutputFile(), errors = try OutputFile()
        process.standardOutput = output.handle
        process.standardError = errors.handle
        try process.run()
        process.waitUntilExit()
        let text = output.text, errorText = errors.text
        guard process.terminationStatus == 0 else {
            throw ChildProcessError(command: ([executable] + arguments).joined(separator: " "), output: text + errorText)
        }
        return text
    }
}

extension ChildProcess {
    /// What a test's program starts with: `inherited` (this process's environment) without the
    /// variables that configure a deployment — a shell set up to run a local node would point the
    /// program at that node's Redis and PostgreSQL, since they override a configuration file —
    /// then `environment`.
    public static func environment(
        _ environment: [String: String], inheriting inherited: [String: String] = ProcessInfo.processInfo.environment
    ) -> [String: String] {
        inherited.filter { !configuresADeployment($0.key) }.merging(environment) { $1 }
    }

    /// The test harness's own variables (where its servers' programs are) are kept.
    private static let harness: Set = ["PULLSKETCH_POSTGRES_BIN", "PULLSKETCH_REDIS_SERVER", "PULLSKETCH_DOCKER_REGISTRY", "PULLSKETCH_CHROMIUM", "PULLSKETCH_SCREENSHOTS"]

    private static func configuresADeployment(_ name: String) -> Bool {
        !harness.contains(name)
            && (name == "FEATURE_IMAGE_PULL_STATS" || ["PULLSKETCH_", "PULL_METRICS_REDIS", "USER_EVENTS_REDIS"].contains { name.hasPrefix($0) })
    }
}

public struct ChildProcessError: Error, CustomStringConvertible {
    public let command: String
    public let output: String
    public var description: String { "\(command) failed:\n\(output)" }
}

/// The last `count` lines of a server's log, for the error of a start that failed.
func lastLines(of log: URL, count: Int = 10) -> String {
    ((try? String(contentsOf: log, encoding: .utf8)) ?? "").split(separator: "\n").suffix(count).joined(separator: "\n")
}

/// A temporary file a child process writes to, removed when released.
public final class OutputFile {
    public let url = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-output-\(UUID().uuidString)")
    public let handle: FileHandle

    public init() throws {
        FileManager.default.createFile(atPath: url.path, contents: nil)
        handle = try FileHandle(forWritingTo: url)
    }

    deinit {
        try? handle.close()
        try? FileManager.default.removeItem(at: url)
    }

    /// What was written so far.
    public var text: String { (try? String(contentsOf: url, encoding: .utf8)) ?? "" }
}
