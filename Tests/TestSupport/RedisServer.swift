public import Foundation

/// A real `redis-server` on a free loopback port with its data in a temporary directory, for one
/// test. Stopped (and its directory removed) when the value is released.
public final class RedisServer: @unchecked Sendable {
    public let port: Int
    public let directory: URL
    private let appendOnly: Bool
    private let password: String?
    private var process: Process?

    /// Starts a server on `port` (default: a free one); `appendOnly` turns on AOF with
    /// `appendfsync everysec`, as production runs; `password` makes it require AUTH.
    public init(port: Int? = nil, appendOnly: Bool = false, password: String? = nil) throws {
        self.port = try port ?? freeLoopbackPort()
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-redis-\(UUID().uuidString)")
        self.appendOnly = appendOnly
        self.password = password
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try start()
    }

    deinit {
        kill()
        try? FileManager.default.removeItem(at: directory)
    }

    /// Starts (or restarts) the server on the same port and directory, and waits until it answers.
    public func start() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: ProcessInfo.processInfo.environment["PULLSKETCH_REDIS_SERVER"] ?? "/usr/bin/redis-server")
        process.arguments = [
            "--bind", "127.0.0.1", "--port", String(port), "--dir", directory.path, "--save", "",
            "--appendonly", appendOnly ? "yes" : "no", "--appendfsync", "everysec",
        ] + (password.map { ["--requirepass", $0] } ?? [])
        // Not the test runner's descriptors: a server outliving a crashed test binary would hold
        // them open, and the runner would wait for their end forever instead of reporting.
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        self.process = process
        try waitUntilListening(port: port, timeout: 10)
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

/// A loopback TCP port nobody listens on right now.
public func freeLoopbackPort() throws -> Int {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socket) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { address in
            bind(socket, address, length) == 0 && getsockname(socket, address, &length) == 0
        }
    }
    guard bound else { throw POSIXError(.EADDRNOTAVAIL) }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Waits until something accepts TCP connections on the loopback port.
public func waitUntilListening(port: Int, timeout: TimeInterval) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
        close(socket)
        if connected { return }
        Thread.sleep(forTimeInterval: 0.05)
    }
    throw POSIXError(.ETIMEDOUT)
}
