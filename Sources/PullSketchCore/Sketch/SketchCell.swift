/// One non-zero counter of a sketch: its flat index (`row * width + column`) and its count.
/// A drained window carries its sketch as a list of these.
public struct SketchCell: Hashable, Sendable {
    public var index: UInt32
    public var count: UInt32

    public init(index: UInt32, count: UInt32) {
        self.index = index
        self.count = count
    }
}
