@testable import PullSketchNode
import PullSketchTestSupport
import Testing

@Suite struct ReaderTokenTests {
    @Test func readerPatternsMatchWholeNames() {
        let token = ReaderToken(token: "t", repositories: ["team/*", "ci/app"])
        #expect(token.mayRead("team/app") && token.mayRead("team/sub/app") && token.mayRead("ci/app"))
        #expect(!token.mayRead("teams/app") && !token.mayRead("ci/app2") && !token.mayRead("other/team/app"))
    }

    /// The definition of `*` matching, by backtracking: correct, and exponential in the stars.
    static func reference(_ pattern: Substring, _ name: Substring) -> Bool {
        guard let first = pattern.first else { return name.isEmpty }
        if first == "*" {
            let rest = pattern.dropFirst()
            return name.indices.contains { reference(rest, name[$0...]) } || reference(rest, name[name.endIndex...])
        }
        return name.first == first && reference(pattern.dropFirst(), name.dropFirst())
    }

    @Test func matchingAgreesWithTheDefinitionOnRandomPatterns() {
        var generator = SeededGenerator(seed: 20)
        let alphabet: [Character] = ["a", "b", "/", "*"]
        for _ in 0..<5_000 {
            let pattern = String((0..<Int.random(in: 0...7, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! })
            let name = String((0..<Int.random(in: 0...9, using: &generator)).map { _ in alphabet.dropLast().randomElement(using: &generator)! })
            #expect(ReaderToken.matches(pattern, name) == Self.reference(pattern[...], name[...]), "'\(pattern)' on '\(name)'")
        }
    }

    /// Backtracking takes longer than the test suite for this; the linear matcher returns at once.
    /// The limit only turns a hang into a failure: under the whole suite on two cores a test's
    /// start has waited more than a minute for a thread (CI, once).
    @Test(.timeLimit(.minutes(10)))
    func manyStarsDoNotBacktrack() {
        let pattern = String(repeating: "*a", count: 60) + "*b"
        let name = String(repeating: "a", count: 250)
        #expect(!ReaderToken.matches(pattern, name))
        #expect(ReaderToken.matches(pattern, name + "b"))
    }
}
