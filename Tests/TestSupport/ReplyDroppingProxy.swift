import Foundation
import Synchronization

/// A loopback TCP proxy in front of a server that, when armed, cuts the connection as the next
/// reply arrives, so the server has done the work but the client never hears back: a merge whose
/// outcome the client cannot know.
public final class ReplyDroppingProxy: Sendable {
    public let port: Int
    private let upstreamPort: Int
    private let listener: Int32
    private let armed = Trigger()

    public init(upstreamPort: Int) throws {
        self.upstreamPort = upstreamPort
        let (listener, port) = try listenOnLoopback()
        self.listener = listener
        self.port = port
        Thread { [armed] in
            while true {
                let client = accept(listener, nil, nil)
                guard client >= 0 else { return }
                relay(client, upstreamPort: upstreamPort, armed: armed)
            }
        }.start()
    }

    deinit {
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
    }

    /// Drops the connection that carries the next reply, before the client reads it.
    public func dropNextReply() {
        armed.arm()
    }
}

/// Connects a client to the upstream server and copies bytes both ways on two threads.
private func relay(_ client: Int32, upstreamPort: Int, armed: Trigger) {
    let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard connectLoopback(upstream, port: upstreamPort) else {
        close(client)
        close(upstream)
        return
    }
    let pumps = PumpCount()
    let end: @Sendable () -> Void = {
        shutdown(client, Int32(SHUT_RDWR))
        shutdown(upstream, Int32(SHUT_RDWR))
        if pumps.finishOne() == 2 {
            close(client)
            close(upstream)
        }
    }
    Thread { pump(from: client, to: upstream, dropping: nil); end() }.start()
    Thread { pump(from: upstream, to: client, dropping: armed); end() }.start()
}

/// Fires once after being armed.
private final class Trigger: Sendable {
    private let armed = Atomic<Bool>(false)

    func arm() { armed.store(true, ordering: .sequentiallyConsistent) }
    func fire() -> Bool { armed.exchange(false, ordering: .sequentiallyConsistent) }
}

/// Counts the finished pumps of one connection, so the last one closes its sockets.
private final class PumpCount: Sendable {
    private let finished = Atomic<Int>(0)

    func finishOne() -> Int { finished.add(1, ordering: .sequentiallyConsistent).newValue }
}

/// Copies bytes until either side closes; with `dropping` armed, stops instead of copying a chunk.
private func pump(from source: Int32, to destination: Int32, dropping: Trigger?) {
    var buffer = [UInt8](repeating: 0, count: 64 * 1_024)
    while true {
        let count = buffer.withUnsafeMutableBytes { read(source, $0.baseAddress, $0.count) }
        guard count > 0 else { return }
        if let dropping, dropping.fire() { return }
        var sent = 0
        while sent < count {
            let written = buffer.withUnsafeBytes { write(destination, $0.baseAddress! + sent, count - sent) }
            guard written > 0 else { return }
            sent += written
        }
    }
}
