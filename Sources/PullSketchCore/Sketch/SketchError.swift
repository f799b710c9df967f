/// A sketch operation that would mix incompatible data; refused, never summed.
public struct SketchError: Error, Hashable, Sendable, CustomStringConvertible {
    public let description: String

    static func parameterMismatch(_ ours: SketchParameters, _ theirs: SketchParameters) -> SketchError {
        SketchError(description: "sketch parameters differ: \(ours) vs \(theirs)")
    }

    static func shardOutOfRange(_ shard: Int, shardCount: Int) -> SketchError {
        SketchError(description: "window part for shard \(shard), but there are \(shardCount) shards")
    }

    static func cellOutOfRange(_ index: UInt32, _ parameters: SketchParameters) -> SketchError {
        SketchError(description: "cell index \(index) is outside a \(parameters.depth)×\(parameters.width) sketch")
    }
}
