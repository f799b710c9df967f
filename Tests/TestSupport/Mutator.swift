public import Foundation

/// Seeded mutations of valid inputs, for fuzzing parsers inside the test suite: byte flips,
/// deletions, insertions of random or syntax-significant bytes, duplicated ranges, splices from
/// another input of the corpus, and deep nesting. The same seed gives the same inputs.
public struct Mutator {
    private var generator: SeededGenerator
    private let corpus: [[UInt8]]
    /// Bytes that mean something to JSON, YAML and the event formats.
    private static let tokens: [[UInt8]] = [
        "{", "}", "[", "]", "\"", ":", ",", "\\", "\\u0000", "\\ud800", "null", "true", "-1e999", "1e308", "-0", "18446744073709551616",
        "\n", "\r\n", "- ", "&a", "*a", "!!binary", "%", "..", "%2e%2e", "*", "sha256:", "9999-12-31T23:59:59Z", "\u{feff}",
    ].map { Array($0.utf8) }

    /// Mutates inputs drawn from `corpus` (at least one input).
    public init(seed: UInt64, corpus: [[UInt8]]) {
        precondition(!corpus.isEmpty, "a mutator needs at least one input")
        generator = SeededGenerator(seed: seed)
        self.corpus = corpus
    }

    /// A corpus input with one to eight mutations; now and then, deep nesting or a huge number.
    public mutating func next() -> [UInt8] {
        var bytes = corpus[Int.random(in: 0..<corpus.count, using: &generator)]
        if Int.random(in: 0..<50, using: &generator) == 0 {
            let depth = Int.random(in: 1_000...100_000, using: &generator)
            return Array(repeating: UInt8(ascii: Bool.random(using: &generator) ? "[" : "{"), count: depth) + bytes
        }
        for _ in 0..<Int.random(in: 1...8, using: &generator) {
            let index = bytes.isEmpty ? 0 : Int.random(in: 0..<bytes.count, using: &generator)
            switch Int.random(in: 0...5, using: &generator) {
            case 0 where !bytes.isEmpty:
                bytes[index] ^= UInt8(1) << UInt8.random(in: 0...7, using: &generator)
            case 1 where !bytes.isEmpty:
                bytes.removeSubrange(index..<min(bytes.count, index + Int.random(in: 1...16, using: &generator)))
            case 2:
                bytes.insert(contentsOf: (0..<Int.random(in: 1...8, using: &generator)).map { _ in UInt8.random(in: 0...255, using: &generator) }, at: index)
            case 3:
                bytes.insert(contentsOf: Self.tokens[Int.random(in: 0..<Self.tokens.count, using: &generator)], at: index)
            case 4 where !bytes.isEmpty:
                let end = min(bytes.count, index + Int.random(in: 1...64, using: &generator))
                bytes.insert(contentsOf: bytes[index..<end], at: index)
            default:
                let other = corpus[Int.random(in: 0..<corpus.count, using: &generator)]
                let start = other.isEmpty ? 0 : Int.random(in: 0..<other.count, using: &generator)
                bytes.insert(contentsOf: other[start..<min(other.count, start + Int.random(in: 1...128, using: &generator))], at: index)
            }
        }
        return bytes
    }
}

/// The files of `Tests/Corpus/<name>`, the seed corpus captured from real senders.
public func corpus(_ name: String, file: String = #filePath) throws -> [[UInt8]] {
    var tests = URL(fileURLWithPath: file)
    while tests.lastPathComponent != "Tests" { tests.deleteLastPathComponent() }
    let directory = tests.appendingPathComponent("Corpus").appendingPathComponent(name)
    return try FileManager.default.contentsOfDirectory(atPath: directory.path).sorted().map {
        Array(try Data(contentsOf: directory.appendingPathComponent($0)))
    }
}
