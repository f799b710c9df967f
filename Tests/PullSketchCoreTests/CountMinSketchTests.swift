import CXXHash
import Foundation
@testable import PullSketchCore
import PullSketchTestSupport
import Testing

@Suite struct CountMinSketchTests {
    let parameters = SketchParameters(width: 256, depth: 4, seed: 42)

    func key(_ number: Int) -> KeyHash {
        KeyHash(kind: .tag, repository: "team/app", reference: "t\(number)", seed: parameters.seed)
    }

    /// A Zipf-like stream: key k drawn with weight 1/(k+1).
    func stream(seed: UInt64, keys: Int, length: Int) -> [Int] {
        var generator = SeededGenerator(seed: seed)
        let weights = (0..<keys).map { 1 / Double($0 + 1) }
        let total = weights.reduce(0, +)
        var cumulative: [Double] = []
        var running = 0.0
        for weight in weights {
            running += weight / total
            cumulative.append(running)
        }
        return (0..<length).map { _ in
            let u = Double.random(in: 0..<1, using: &generator)
            return cumulative.firstIndex { $0 > u } ?? keys - 1
        }
    }

    @Test(arguments: [1, 2, 3] as [UInt64])
    func neverUndercountsAndStaysWithinTheBoundForMostKeys(seed: UInt64) {
        var sketch = CountMinSketch(parameters: parameters)
        var truth = [Int: UInt32]()
        let items = stream(seed: seed, keys: 2_000, length: 20_000)
        for item in items {
            sketch.add(key(item))
            truth[item, default: 0] += 1
        }
        let bound = parameters.errorBound(tailMass: UInt64(items.count))
        var withinBound = 0
        for (item, count) in truth {
            let estimate = sketch.estimate(key(item))
            #expect(estimate >= count, "key \(item) undercounted: \(estimate) < \(count)")
            if UInt64(estimate - count) <= bound { withinBound += 1 }
        }
        #expect(Double(withinBound) / Double(truth.count) >= 1 - parameters.delta)
    }

    @Test(arguments: [7, 8] as [UInt64])
    func mergeEqualsTheSketchOfTheUnion(seed: UInt64) throws {
        var left = CountMinSketch(parameters: parameters)
        var right = CountMinSketch(parameters: parameters)
        var union = CountMinSketch(parameters: parameters)
        var generator = SeededGenerator(seed: seed)
        for _ in 0..<5_000 {
            let item = Int.random(in: 0..<700, using: &generator)
            if Bool.random(using: &generator) { left.add(key(item)) } else { right.add(key(item)) }
            union.add(key(item))
        }
        try left.merge(right)
        #expect(left == union)
    }

    @Test func saturatesInsteadOfWrapping() throws {
        var sketch = CountMinSketch(parameters: parameters)
        sketch.add(key(1), count: .max - 1)
        sketch.add(key(1), count: 5)
        #expect(sketch.estimate(key(1)) == .max)
        var other = CountMinSketch(parameters: parameters)
        other.add(key(1), count: 10)
        try sketch.merge(other)
        #expect(sketch.estimate(key(1)) == .max)
    }

    @Test func mergeWithDifferentParametersIsRefusedAndChangesNothing() {
        var sketch = CountMinSketch(parameters: parameters)
        sketch.add(key(1))
        let before = sketch
        for other in [
            SketchParameters(width: 512, depth: 4, seed: 42),
            SketchParameters(width: 256, depth: 5, seed: 42),
            SketchParameters(width: 256, depth: 4, seed: 43),
            SketchParameters(width: 256, depth: 4, seed: 42, formatVersion: 99),
        ] {
            #expect(throws: SketchError.self) { try sketch.merge(CountMinSketch(parameters: other)) }
        }
        #expect(sketch == before)
    }

    @Test func sparseCellsRoundTrip() throws {
        var sketch = CountMinSketch(parameters: parameters)
        for item in stream(seed: 5, keys: 50, length: 400) { sketch.add(key(item)) }
        let cells = sketch.nonZeroCells()
        #expect(cells.count <= 50 * parameters.depth)
        #expect(cells.allSatisfy { $0.count > 0 })
        #expect(try CountMinSketch(parameters: parameters, cells: cells) == sketch)
    }

    @Test func cellsOutsideTheSketchAreRefused() {
        let outside = SketchCell(index: UInt32(parameters.width * parameters.depth), count: 1)
        #expect(throws: SketchError.self) { try CountMinSketch(parameters: parameters, cells: [outside]) }
    }

    @Test func anEmptySketchEstimatesZero() {
        let sketch = CountMinSketch(parameters: parameters)
        #expect(sketch.nonZeroCells().isEmpty)
        #expect(sketch.estimate(key(3)) == 0)
    }

    @Test func keysOfDifferentKindsOrRepositoriesHashApart() {
        let tag = KeyHash(kind: .tag, repository: "a/b", reference: "x", seed: 1)
        #expect(tag != KeyHash(kind: .manifest, repository: "a/b", reference: "x", seed: 1))
        #expect(tag != KeyHash(kind: .tag, repository: "a/bx", reference: "", seed: 1))
        #expect(tag != KeyHash(kind: .tag, repository: "a/b", reference: "x", seed: 2))
        #expect(tag == KeyHash(kind: .tag, repository: "a/b", reference: "x", seed: 1))
    }

    /// Name and key hashes are part of the wire contract (shards, sketch cells, Redis fields):
    /// computed by xxHash's inline code, they must equal what the shared library computes.
    @Test func hashesAreTheSharedLibrarysXXH3() {
        var state: UInt64 = 7
        func next() -> UInt64 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return state ^ (state >> 29)
        }
        for round in 0..<20_000 {
            let (repository, reference) = (next(), next())
            let seed = round.isMultiple(of: 2) ? next() : UInt64(round % 7)
            let kind: KeyKind = round.isMultiple(of: 3) ? .manifest : .tag
            var names = (repository.littleEndian, reference.littleEndian)
            let library = withUnsafeBytes(of: &names) { XXH3_64bits_withSeed($0.baseAddress, 16, seed &+ UInt64(kind.rawValue)) }
            let key = KeyHash(kind: kind, repositoryHash: repository, referenceHash: reference, seed: seed)
            guard key.value == library else {
                Issue.record("key hash \(key.value) differs from the library's \(library) for \(repository), \(reference), seed \(seed)")
                return
            }
        }
        // Every length up to past the longest name, each of xxHash's length classes included.
        for length in 0...300 {
            let name = String(decoding: (0..<length).map { _ in UInt8(truncatingIfNeeded: next() % 94 + 33) }, as: UTF8.self)
            let library = Array(name.utf8).withUnsafeBytes { XXH3_64bits($0.baseAddress, $0.count) }
            #expect(KeyHash.nameHash(name) == library, "a name of \(length) bytes")
        }
    }
}

@Suite struct SketchParametersTests {
    @Test func sizingFollowsEpsilonAndDelta() throws {
        let parameters = try #require(SketchParameters(epsilon: 0.001, delta: 0.01))
        #expect(parameters.width == 2_719)  // ⌈e / 0.001⌉
        #expect(parameters.depth == 5)  // ⌈ln 100⌉
        #expect(parameters.epsilon <= 0.001)
        #expect(parameters.delta <= 0.01)
        #expect(SketchParameters.isDeployable(width: parameters.width, depth: parameters.depth))
    }

    /// ε and δ come from an operator's command line: outside (0, 1), or a sketch no deployment
    /// takes, is no sketch — never a crash converting ⌈e/ε⌉ or ⌈ln 1/δ⌉ to an integer.
    @Test(arguments: [(1e-300, 0.01), (1e-8, 0.01), (0.001, 1e-300), (0.001, 4.9e-324), (0, 0.01), (0.001, 1), (.nan, 0.01), (0.001, .infinity)])
    func anEpsilonOrDeltaNoDeploymentTakesIsNoSketch(epsilon: Double, delta: Double) {
        #expect(SketchParameters(epsilon: epsilon, delta: delta) == nil)
    }

    @Test func theLargestDeployableShapeIsReachedAndNoFurther() throws {
        let widest = try #require(SketchParameters(epsilon: M_E / Double(SketchParameters.widths.upperBound), delta: 0.2))
        #expect(widest.width == SketchParameters.widths.upperBound && widest.depth == 2)
        #expect(!SketchParameters.isDeployable(width: SketchParameters.widths.upperBound, depth: 3), "more counters than Redis addresses")
    }

    @Test func errorBoundIsTheCeilingOfEpsilonTimesTailMass() {
        let parameters = SketchParameters(width: 1_000, depth: 3)
        #expect(parameters.errorBound(tailMass: 0) == 0)
        #expect(parameters.errorBound(tailMass: 1) == 1)  // ⌈0.0027⌉
        #expect(parameters.errorBound(tailMass: 1_000_000) == 2_719)  // ⌈2718.28⌉
    }

    @Test func fingerprintNamesEveryParameterAndParsesBack() {
        let parameters = SketchParameters(width: 10, depth: 2, seed: 3)
        #expect(parameters.fingerprint == "v\(SketchParameters.currentFormatVersion):w10:d2:s3")
        #expect(SketchParameters(fingerprint: parameters.fingerprint) == parameters)
        for garbage in ["", "v1:w10:d2", "v1:w0:d2:s3", "v1:w10:d99:s3", "x1:w10:d2:s3", "v1:w10:d2:s-1"] {
            #expect(SketchParameters(fingerprint: garbage) == nil)
        }
    }
}

@Suite struct CompactPullCountTests {
    @Test(arguments: [
        (0, "0"), (7, "7"), (999, "999"), (1_000, "1K"), (1_750, "1.7K"), (1_799, "1.7K"), (9_999, "9.9K"),
        (10_000, "10K+"), (49_999, "10K+"), (50_000, "50K+"), (100_000, "100K+"), (500_000, "500K+"),
        (999_999, "500K+"), (1_000_000, "1M+"), (UInt64.max, "1M+"),
    ] as [(UInt64, String)])
    func formatsCountsOnTheLadderWithoutRoundingUp(count: UInt64, text: String) {
        #expect(CompactPullCount.string(count) == text)
    }
}
