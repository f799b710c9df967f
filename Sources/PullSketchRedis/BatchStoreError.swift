/// A batch operation refused or a batch that cannot be read. Redis failures themselves are
/// `RedisError`s.
public struct BatchStoreError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Kind: Hashable, Sendable {
        /// The window's sketch parameters differ from the shard's: refused, never summed.
        case sketchMismatch
        /// A key of the layout holds something PullSketch did not write.
        case malformed
    }

    public let kind: Kind
    public let message: String

    init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
