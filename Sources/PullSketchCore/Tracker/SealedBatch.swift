/// A sealed batch of one shard as the reconciler reads it back from Redis: the sum of every window
/// part merged into the shard's live batch before it was sealed.
public struct SealedBatch: Hashable, Sendable {
    public var number: Int64
    /// The shard's sketch parameters when the batch was sealed; nil if no merge ever set them.
    public var parameters: SketchParameters?
    public var content: ShardWindow
    /// When the batch was sealed.
    public var sealedAt: Timestamp
    /// The node windows merged into the batch: node id → first and last window sequence. A node's
    /// windows reach a shard in sequence order, so the batch holds exactly those between the two.
    public var windows: [String: ClosedRange<UInt64>]

    public init(
        number: Int64, parameters: SketchParameters?, content: ShardWindow, sealedAt: Timestamp = .now(), windows: [String: ClosedRange<UInt64>] = [:]
    ) {
        self.number = number
        self.parameters = parameters
        self.content = content
        self.sealedAt = sealedAt
        self.windows = windows
    }
}
