/// Clients whose pulls PullSketch does not count, by `User-Agent`: image scanners, mirrors and
/// backup jobs that fetch every image on a schedule and would keep every tag looking in use. Each
/// pattern is matched against the whole user agent, ASCII letters in either case, `*` standing
/// for any run of characters (`trivy/*`, `*grype*`). A request without a user agent is counted.
public struct IgnoredClients: Hashable, Sendable {
    public static let none = IgnoredClients()

    public let patterns: [String]
    private let lowercased: [[UInt8]]

    public static let maximumPatternLength = 256

    private init() {
        patterns = []
        lowercased = []
    }

    /// Throws, naming the pattern, for an empty one, one longer than `maximumPatternLength`, one
    /// of stars alone (it would ignore every client) or one holding a control character.
    public init(_ patterns: [String]) throws(InvalidPattern) {
        for pattern in patterns {
            let bytes = pattern.utf8
            guard !bytes.isEmpty, bytes.count <= Self.maximumPatternLength else {
                throw InvalidPattern(pattern, "must have 1 to \(Self.maximumPatternLength) characters")
            }
            guard bytes.contains(where: { $0 != UInt8(ascii: "*") }) else { throw InvalidPattern(pattern, "would ignore every client") }
            guard !bytes.contains(where: { $0 < 0x20 || $0 == 0x7F }) else { throw InvalidPattern(pattern, "holds a control character") }
        }
        self.patterns = patterns
        lowercased = patterns.map { $0.utf8.map(Self.lowercase) }
    }

    public struct InvalidPattern: Error, CustomStringConvertible {
        public let description: String

        init(_ pattern: String, _ problem: String) {
            description = "ignored user agent '\(pattern)' \(problem)"
        }
    }

    /// Whether `userAgent` matches a pattern.
    public func ignores(userAgent: String?) -> Bool {
        guard !lowercased.isEmpty, let userAgent else { return false }
        let text = userAgent.utf8.map(Self.lowercase)
        return lowercased.contains { Self.matches(text, $0) }
    }

    /// Glob matching without recursion: on a mismatch after a star, the star takes one more
    /// character and matching resumes there, so a pattern with any number of stars takes at most
    /// `text.count × pattern.count` steps.
    private static func matches(_ text: [UInt8], _ pattern: [UInt8]) -> Bool {
        let star = UInt8(ascii: "*")
        var t = 0, p = 0
        var resume: (pattern: Int, text: Int)?
        while t < text.count {
            if p < pattern.count, pattern[p] == star {
                p += 1
                resume = (p, t)
            } else if p < pattern.count, pattern[p] == text[t] {
                p += 1
                t += 1
            } else if let last = resume {
                p = last.pattern
                t = last.text + 1
                resume = (last.pattern, t)
            } else {
                return false
            }
        }
        return pattern[p...].allSatisfy { $0 == star }
    }

    private static func lowercase(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }
}
