/// A failed Redis call. `wasSent` tells whether the command may have reached the server: a caller
/// that must not apply something twice retries only what certainly did not arrive.
public struct RedisError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// Connecting, authenticating or selecting the database failed, or the connection was
        /// already broken: nothing was sent.
        case connection
        /// The connection broke or timed out after a command was sent: its outcome is unknown.
        case io
        /// The server answered with an error reply.
        case server
        /// A reply did not have the shape the caller expected.
        case unexpectedReply
    }

    public let kind: Kind
    public let message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    /// Whether the command may have been applied by the server.
    public var wasSent: Bool { kind != .connection }

    public var description: String { "redis \(kind): \(message)" }
}
