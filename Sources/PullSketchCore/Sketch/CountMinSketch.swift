/// A count-min sketch with saturating 32-bit counters. Not synchronized: the tracker keeps one per
/// lock stripe and sums them when it drains.
///
/// Row `i` of a key uses column `((h1 + i·h2) mod 2³² · w) >> 32`, where h1 and h2 are the low and
/// high halves of the key's `KeyHash` (h2 forced odd). An estimate never undercounts.
public struct CountMinSketch: Hashable, Sendable {
    public let parameters: SketchParameters
    private var cells: [UInt32]

    public init(parameters: SketchParameters) {
        self.parameters = parameters
        cells = Array(repeating: 0, count: parameters.width * parameters.depth)
    }

    /// Rebuilds a sketch from its non-zero cells (`nonZeroCells()`); duplicates add up.
    public init(parameters: SketchParameters, cells: some Sequence<SketchCell>) throws(SketchError) {
        self.init(parameters: parameters)
        for cell in cells {
            guard Int(cell.index) < self.cells.count else { throw .cellOutOfRange(cell.index, parameters) }
            Self.saturatingAdd(&self.cells[Int(cell.index)], cell.count)
        }
    }

    /// Adds `count` to the key's counter in every row.
    public mutating func add(_ key: KeyHash, count: UInt32 = 1) {
        let parameters = parameters
        cells.withUnsafeMutableBufferPointer { cells in
            Self.forEachIndex(of: key, parameters) { Self.saturatingAdd(&cells[$0], count) }
        }
    }

    /// The estimate for a key: the minimum over its counters. Never below the true count.
    public func estimate(_ key: KeyHash) -> UInt32 {
        var minimum = UInt32.max
        Self.forEachIndex(of: key, parameters) { minimum = min(minimum, cells[$0]) }
        return minimum
    }

    /// Adds another sketch cell by cell. Refused when the parameters differ.
    public mutating func merge(_ other: CountMinSketch) throws(SketchError) {
        guard other.parameters == parameters else { throw .parameterMismatch(parameters, other.parameters) }
        for index in cells.indices {
            Self.saturatingAdd(&cells[index], other.cells[index])
        }
    }

    /// Adds sparse cells (from another sketch of the same parameters).
    public mutating func add(cells sparse: some Sequence<SketchCell>) throws(SketchError) {
        for cell in sparse {
            guard Int(cell.index) < cells.count else { throw .cellOutOfRange(cell.index, parameters) }
            Self.saturatingAdd(&cells[Int(cell.index)], cell.count)
        }
    }

    /// The non-zero counters, in index order.
    public func nonZeroCells() -> [SketchCell] {
        var result: [SketchCell] = []
        for (index, count) in cells.enumerated() where count != 0 {
            result.append(SketchCell(index: UInt32(index), count: count))
        }
        return result
    }

    /// Calls `body` with the flat index of the key's counter in each row: row i uses column
    /// `((h1 + i·h2) mod 2³² · w) >> 32` (double hashing, then multiply-shift instead of a division).
    @inline(__always)
    static func forEachIndex(of key: KeyHash, _ parameters: SketchParameters, _ body: (Int) -> Void) {
        let width = UInt64(parameters.width)
        let h2 = UInt32(truncatingIfNeeded: key.value >> 32) | 1
        var rowHash = UInt32(truncatingIfNeeded: key.value)
        for row in 0..<parameters.depth {
            body(row &* parameters.width &+ Int((UInt64(rowHash) &* width) >> 32))
            rowHash &+= h2
        }
    }

    @inline(__always)
    static func saturatingAdd(_ cell: inout UInt32, _ count: UInt32) {
        let (sum, overflow) = cell.addingReportingOverflow(count)
        cell = overflow ? .max : sum
    }
}
