/// Which tail keys a window used without naming them, one bit per sketch cell: a key sets the bit of
/// every cell the count-min sketch gives it, so a marked key always tests positive and another does
/// only when each of its bits was set by other keys (the sketch's own collision case). Through it
/// the reconciler finds, among the catalog's keys, those the window's name tables had no room for —
/// pulled or only used (a HEAD by digest under `.resolutions`, which the sketch does not count).
/// Named keys stay out of it, so it fills with the unnamed keys alone.
public struct UsageFilter: Hashable, Sendable {
    public let parameters: SketchParameters
    private var words: [UInt64]

    public init(parameters: SketchParameters) {
        self.parameters = parameters
        words = Array(repeating: 0, count: (parameters.width * parameters.depth + 63) / 64)
    }

    /// Rebuilds a filter from its set bits (`setBits()`).
    public init(parameters: SketchParameters, bits: some Sequence<UInt32>) throws(SketchError) {
        self.init(parameters: parameters)
        try add(bits: bits)
    }

    /// Marks the key used.
    public mutating func mark(_ key: KeyHash) {
        let parameters = parameters
        words.withUnsafeMutableBufferPointer { words in
            CountMinSketch.forEachIndex(of: key, parameters) { words[$0 >> 6] |= 1 << UInt64($0 & 63) }
        }
    }

    /// Whether the key may have been used; always true for a key that was.
    public func contains(_ key: KeyHash) -> Bool {
        var all = true
        CountMinSketch.forEachIndex(of: key, parameters) { all = all && words[$0 >> 6] & (1 << UInt64($0 & 63)) != 0 }
        return all
    }

    /// Sets bits by flat cell index. Refused, changing nothing, when one is outside the sketch.
    public mutating func add(bits: some Sequence<UInt32>) throws(SketchError) {
        let cellCount = parameters.width * parameters.depth
        if let bad = bits.first(where: { Int($0) >= cellCount }) { throw .cellOutOfRange(bad, parameters) }
        for bit in bits { words[Int(bit) >> 6] |= 1 << UInt64(bit & 63) }
    }

    /// Adds another filter's marks. Refused when the parameters differ.
    public mutating func merge(_ other: UsageFilter) throws(SketchError) {
        guard other.parameters == parameters else { throw .parameterMismatch(parameters, other.parameters) }
        for index in words.indices { words[index] |= other.words[index] }
    }

    /// The flat indices of the set bits, ascending.
    public func setBits() -> [UInt32] {
        var result: [UInt32] = []
        for (index, word) in words.enumerated() where word != 0 {
            var remaining = word
            while remaining != 0 {
                result.append(UInt32(index * 64 + remaining.trailingZeroBitCount))
                remaining &= remaining - 1
            }
        }
        return result
    }

    public var isEmpty: Bool { words.allSatisfy { $0 == 0 } }

    /// Bytes of the filter's bits.
    public static func byteCount(_ parameters: SketchParameters) -> Int { (parameters.width * parameters.depth + 63) / 64 * 8 }
}
