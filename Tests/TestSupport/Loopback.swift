public import Foundation
import Synchronization

/// A TCP socket listening on 127.0.0.1 at a port the kernel picks, and that port.
func listenOnLoopback(backlog: Int32 = 16) throws -> (socket: Int32, port: Int) {
    let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    var address = loopbackAddress(port: 0)
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let listening = withUnsafeMutablePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            bind(listener, $0, length) == 0 && listen(listener, backlog) == 0 && getsockname(listener, $0, &length) == 0
        }
    }
    guard listening else {
        close(listener)
        throw POSIXError(.EADDRNOTAVAIL)
    }
    return (listener, Int(UInt16(bigEndian: address.sin_port)))
}

func loopbackAddress(port: Int) -> sockaddr_in {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    return address
}

/// Connects `socket` to 127.0.0.1 at `port`.
public func connectLoopback(_ socket: Int32, port: Int) -> Bool {
    withLoopbackAddress(port: port) { connect(socket, $0, $1) == 0 }
}

/// `body` with 127.0.0.1 at `port` as the `sockaddr` and length the socket calls take.
private func withLoopbackAddress<Result>(port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> Result) -> Result {
    var address = loopbackAddress(port: port)
    return withUnsafePointer(to: &address) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
    }
}

/// A loopback TCP port nobody uses right now, below the kernel's ephemeral range: a server that a
/// test stops and starts again on its port must not find it taken meanwhile by the local end of
/// some other test's outgoing connection (those come from the ephemeral range, and one blocks the
/// server's bind). Never the same port twice in one test process: suites run at once, and a port
/// handed out is free until its server binds it (after `initdb`, seconds later) and again while
/// a test has its server stopped, so another suite could be handed it meanwhile.
public func freeLoopbackPort() throws -> Int {
    let ephemeralStart = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8))
        .flatMap { Int($0.split(whereSeparator: \.isWhitespace).first ?? "") } ?? 32_768
    let candidates = 10_000..<max(ephemeralStart, 10_001)
    for _ in 0..<1_000 {
        let port = Int.random(in: candidates)
        guard handedOutPorts.withLock({ $0.insert(port).inserted }) else { continue }
        if canBindLoopback(port: port) { return port }
    }
    throw POSIXError(.EADDRNOTAVAIL)
}

/// The ports `freeLoopbackPort` has handed out in this process.
private let handedOutPorts = Mutex<Set<Int>>([])

/// Runs a new server's first `start`, and while it fails because its port was taken (its error
/// says "address already in use", in any case), hands it another free port (`moveTo`) and runs
/// it again, five times at most: a port found free can still be taken before the server binds it
/// (seen in CI, by what is not known), and nobody has seen the port yet.
public func startOnFreePort(_ start: () throws -> Void, moveTo: (Int) -> Void) throws {
    for attempt in 1...5 {
        do {
            return try start()
        } catch where attempt < 5 && "\(error)".lowercased().contains("address already in use") {
            moveTo(try freeLoopbackPort())
        }
    }
}

/// A socket bound to a free loopback port and not listening, until released: the port is taken,
/// and nothing answers on it.
public final class LoopbackPortHolder: Sendable {
    public let port: Int
    private let socket: Int32

    public init() throws {
        port = try freeLoopbackPort()
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard withLoopbackAddress(port: port, { bind(socket, $0, $1) == 0 }) else {
            close(socket)
            throw POSIXError(.EADDRINUSE)
        }
    }

    deinit {
        close(socket)
    }
}

private func canBindLoopback(port: Int) -> Bool {
    let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(socket) }
    return withLoopbackAddress(port: port) { bind(socket, $0, $1) == 0 }
}

/// Waits until something accepts TCP connections on the loopback port; gives up at once when
/// `alive` (the server's process is running, say) turns false.
public func waitUntilListening(port: Int, timeout: TimeInterval, while alive: () -> Bool = { true }) throws {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        guard alive() else { break }
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        let connected = connectLoopback(socket, port: port)
        close(socket)
        if connected { return }
        Thread.sleep(forTimeInterval: 0.05)
    }
    throw POSIXError(.ETIMEDOUT)
}

/// A server that takes connections and never says a word: the kernel completes every handshake
/// into the listen backlog and nothing ever reads or replies, like a Redis stuck in a long
/// command. Closing it resets the waiting connections.
public final class SilentServer: Sendable {
    public let port: Int
    private let listener: Int32

    public init() throws {
        (listener, port) = try listenOnLoopback(backlog: 128)
    }

    deinit {
        close(listener)
    }
}

/// Connects to `port` on 127.0.0.1, sends `bytes`, and returns what the server answers until it
/// closes the connection, or until `timeout` passes with nothing more (then `closed` is false).
public func exchange(port: Int, _ bytes: [UInt8], timeout: TimeInterval = 5) throws -> (reply: [UInt8], closed: Bool) {
    try exchange(port: port, [bytes], pause: 0, timeout: timeout)
}

/// `exchange` with `messages` sent one after another on one connection, `pause` seconds apart;
/// a message the server no longer takes is not sent.
public func exchange(port: Int, _ messages: [[UInt8]], pause: TimeInterval, timeout: TimeInterval = 5) throws -> (reply: [UInt8], closed: Bool) {
    let connection = try connectForExchange(port: port, timeout: timeout)
    defer { close(connection) }
    for (index, bytes) in messages.enumerated() {
        if index > 0 { usleep(useconds_t(pause * 1_000_000)) }
        guard sendAll(connection, bytes) else { break }
    }
    return receive(connection)
}

/// Connects to `port` on 127.0.0.1, sends `first`, and reads what the server answers until it
/// contains `awaited` (or `timeout` passes with nothing more: then `early` lacks it); only then
/// sends `second`, and returns what follows until the server closes the connection or `timeout`
/// passes with nothing more.
public func exchange(port: Int, _ first: [UInt8], awaiting awaited: String, then second: [UInt8], timeout: TimeInterval = 5) throws
    -> (early: [UInt8], reply: [UInt8], closed: Bool)
{
    let connection = try connectForExchange(port: port, timeout: timeout)
    defer { close(connection) }
    guard sendAll(connection, first) else { return ([], [], true) }
    let (early, closedEarly) = receive(connection) { String(decoding: $0, as: UTF8.self).contains(awaited) }
    guard !closedEarly, sendAll(connection, second) else { return (early, [], true) }
    let (reply, closed) = receive(connection)
    return (early, reply, closed)
}

/// A socket connected to `port` on 127.0.0.1 whose receives give up after `timeout`.
private func connectForExchange(port: Int, timeout: TimeInterval) throws -> Int32 {
    let connection = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard connectLoopback(connection, port: port) else {
        close(connection)
        throw POSIXError(.ECONNREFUSED)
    }
    var wait = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
    setsockopt(connection, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
    return connection
}

/// Sends `bytes` whole; false when the server stopped taking them (it may close before reading
/// everything).
private func sendAll(_ connection: Int32, _ bytes: [UInt8]) -> Bool {
    var sent = 0
    while sent < bytes.count {
        let written = bytes[sent...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        guard written > 0 else { return false }
        sent += written
    }
    return true
}

/// What the server sends until it closes the connection (`closed`), the receive timeout passes
/// with nothing more, or what came so far satisfies `enough`.
private func receive(_ connection: Int32, until enough: ([UInt8]) -> Bool = { _ in false }) -> (reply: [UInt8], closed: Bool) {
    var reply: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 65_536)
    while true {
        let count = recv(connection, &buffer, buffer.count, 0)
        if count > 0 {
            reply += buffer[..<count]
            if enough(reply) { return (reply, false) }
        } else if count < 0 && errno == EINTR {
            continue  // a signal, not the server: the receive timeout restarts
        } else {
            return (reply, count == 0 || errno == ECONNRESET)
        }
    }
}
