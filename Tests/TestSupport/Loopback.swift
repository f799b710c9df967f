import Foundation

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
