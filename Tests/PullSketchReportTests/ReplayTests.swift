import Foundation
import PullSketchCore
import PullSketchEvents
import PullSketchRedis
import PullSketchReport
import PullSketchTestSupport
import Testing

/// A replay file in a temporary directory, removed when the value goes away.
final class ReplayFile {
    let path: String

    init(lines: [String]) throws {
        path = FileManager.default.temporaryDirectory.appendingPathComponent("pullsketch-replay-\(UUID().uuidString).jsonl").path
        try Data(lines.joined(separator: "\n").utf8).write(to: URL(fileURLWithPath: path))
    }

    deinit { try? FileManager.default.removeItem(atPath: path) }

    func run(hotCapacity: Int = 10_000, width: Int = 2_048, depth: Int = 5, maximumLineBytes: Int = 16 << 20) throws -> AccuracyResult {
        try AccuracyRun(
            workload: .replay(ReplayWorkload(path: path, maximumLineBytes: maximumLineBytes)), nodes: 2,
            tracker: TrackerConfiguration(isEnabled: true, hotCapacity: hotCapacity, sketch: SketchParameters(width: width, depth: depth))
        ).run()
    }

    static func digest(_ number: Int) -> String { "sha256:" + String(format: "%064x", number) }
    static func time(_ millisecondsAfterStart: Int64) -> String {
        RFC3339.format(Timestamp(millisecondsSinceEpoch: 1_800_000_000_000 + millisecondsAfterStart))
    }

    static func pull(_ repository: String, tag: String? = nil, digest: String?, method: String = "GET", at milliseconds: Int64, id: String? = nil) -> String {
        var fields = ["\"repository\": \"\(repository)\"", "\"method\": \"\(method)\"", "\"time\": \"\(time(milliseconds))\""]
        if let tag { fields.append("\"tag\": \"\(tag)\"") }
        if let digest { fields.append("\"digest\": \"\(digest)\"") }
        if let id { fields.append("\"id\": \"\(id)\"") }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    static func event(_ id: String, _ action: String, _ repository: String, tag: String? = nil, digest: String, blob: Bool = false, at milliseconds: Int64) -> String {
        let mediaType = blob ? "application/vnd.oci.image.layer.v1.tar+gzip" : "application/vnd.oci.image.manifest.v1+json"
        let tagField = tag.map { ", \"tag\": \"\($0)\"" } ?? ""
        return """
            {"id": "\(id)", "timestamp": "\(time(milliseconds))", "action": "\(action)", \
            "target": {"mediaType": "\(mediaType)", "digest": "\(digest)", "repository": "\(repository)"\(tagField)}, "request": {"method": "GET"}}
            """
    }
}

@Suite(.cpuBound) struct ReplayTests {
    /// What counts is docs/design.md §1: a tag counts GETs and HEADs, a manifest GETs only; a HEAD by tag
    /// does not count for the manifest; an id seen before is a retry.
    @Test func aReplayOfPullsCountsWhatDesignCallsAPullAndGetsEveryKeyExact() throws {
        let file = try ReplayFile(lines: [
            ReplayFile.pull("lib/a", tag: "1", digest: ReplayFile.digest(1), at: 0, id: "p1"),
            ReplayFile.pull("lib/a", tag: "1", digest: ReplayFile.digest(1), method: "HEAD", at: 1_000),
            "",
            ReplayFile.pull("lib/a", digest: ReplayFile.digest(2), at: 2_000),
            ReplayFile.pull("lib/a", digest: ReplayFile.digest(3), method: "HEAD", at: 3_000),
            ReplayFile.pull("lib/b", tag: "latest", digest: ReplayFile.digest(1), at: 10_000),
            ReplayFile.pull("lib/a", tag: "1", digest: ReplayFile.digest(1), at: 11_000, id: "p1"),
        ])
        let summary = try file.run().summary
        #expect(summary.pulls == 5)
        // Tags lib/a:1, lib/b:latest; manifests lib/a@1, lib/a@2, lib/b@1. lib/a@3 was only checked.
        #expect(summary.keysPulled == 5)
        #expect(summary.keysNeverPulled == 1)
        #expect(summary.keysExactPercent == 100 && summary.lastPulledEarlierThanTruth == 0 && summary.falseRecentlyPulledRate == 0)
    }

    @Test func aReplayOfEnvelopesPullsOncePerEventIdAndKnowsPushedKeys() throws {
        let file = try ReplayFile(lines: [
            #"{"events": [\#(ReplayFile.event("e1", "push", "lib/c", tag: "v1", digest: ReplayFile.digest(4), at: 0)), "#
                + #"\#(ReplayFile.event("e2", "pull", "lib/c", digest: ReplayFile.digest(9), blob: true, at: 500)), "#
                + #"\#(ReplayFile.event("e3", "pull", "lib/c", tag: "v1", digest: ReplayFile.digest(4), at: 1_000))]}"#,
            #"{"events": [\#(ReplayFile.event("e3", "pull", "lib/c", tag: "v1", digest: ReplayFile.digest(4), at: 1_000)), "#
                + #"\#(ReplayFile.event("e4", "push", "lib/c", tag: "v2", digest: ReplayFile.digest(5), at: 4_000))]}"#,
        ])
        let summary = try file.run().summary
        #expect(summary.pulls == 1)
        #expect(summary.keysPulled == 2)
        // lib/c:v2 and its manifest were pushed, never pulled.
        #expect(summary.keysNeverPulled == 2)
        #expect(summary.keysExactPercent == 100 && summary.falseRecentlyPulledRate == 0)
    }

    @Test(arguments: [
        ("{\"repository\": \"lib/a\", \"digest\": \"\(ReplayFile.digest(1))\", \"method\": \"GET\"}", "line-2: a replayed pull needs a time"),
        ("pulled lib/a:1 yesterday", "line-2: neither a pull"),
        ("{\"events\": [{\"id\": \"x\", \"action\": \"pull\"}]}", "line-2: event 1: no RFC 3339 timestamp"),
        (ReplayFile.pull("lib/a", tag: "no tag!", digest: nil, at: 0), "line-2: invalid tag 'no tag!'"),
    ])
    func aLineThatIsNotAValidPullOrEnvelopeStopsTheRunWithItsLineNumber(line: String, message: String) throws {
        let file = try ReplayFile(lines: [ReplayFile.pull("lib/a", tag: "1", digest: ReplayFile.digest(1), at: 0), line])
        let error = try #require(throws: (any Error).self) { try file.run() }
        #expect(String(describing: error).replacingOccurrences(of: file.path + ":", with: "line-").hasPrefix(message))
    }

    @Test func aReplayWithoutPullsIsRefused() throws {
        let file = try ReplayFile(lines: [#"{"events": [\#(ReplayFile.event("e1", "push", "lib/c", tag: "v1", digest: ReplayFile.digest(4), at: 0))]}"#])
        let error = try #require(throws: (any Error).self) { try file.run() }
        #expect(String(describing: error).hasSuffix("no pulls to compare"))
    }

    /// 20,000 pulls over 2,000 tags in 20 repositories, GETs and HEADs, by tag and by digest.
    static func skewedPulls() -> [String] {
        var random = SeededGenerator(seed: 11)
        return (0..<20_000).map { index in
            let key = Int(Double(2_000) * pow(Double.random(in: 0..<1, using: &random), 3))
            let repository = "team\(key % 20)/app"
            let method = index % 4 == 0 ? "HEAD" : "GET"
            return index % 3 == 0
                ? ReplayFile.pull(repository, digest: ReplayFile.digest(key), method: method, at: Int64(index))
                : ReplayFile.pull(repository, tag: "t\(key)", digest: ReplayFile.digest(key), method: method, at: Int64(index))
        }
    }

    @Test func aReplayThroughATinyHotTableNeverUndercountsAndMeetsItsBound() throws {
        let summary = try ReplayFile(lines: Self.skewedPulls()).run(hotCapacity: 16, width: 1_024, depth: 4).summary
        #expect(summary.pulls == 20_000)
        #expect(summary.keysExactPercent < 100, "the tail was not used")
        #expect(summary.undercounts == 0 && summary.lastPulledEarlierThanTruth == 0)
        #expect(summary.boundCoverage >= summary.oneMinusDelta)
    }

    /// 30,000 requests as real clients make them, over 1,500 tags in 15 repositories: docker (GET by
    /// tag), containerd (HEAD by tag, then GET by digest), cached containerd and pollers (HEAD by
    /// tag only), digest-pinned deployments (GET by digest), and 40 manifests polled only with HEAD
    /// by digest, 150 times each.
    static func clientMix() -> [String] {
        var random = SeededGenerator(seed: 23)
        var lines: [String] = []
        for index in 0..<30_000 {
            let key = Int(Double(1_500) * pow(Double.random(in: 0..<1, using: &random), 2))
            let repository = "team\(key % 15)/app", tag = "t\(key)", digest = ReplayFile.digest(key), at = Int64(index)
            switch index % 5 {
            case 0: lines.append(ReplayFile.pull(repository, tag: tag, digest: digest, at: at))
            case 1:
                lines.append(ReplayFile.pull(repository, tag: tag, digest: digest, method: "HEAD", at: at))
                lines.append(ReplayFile.pull(repository, digest: digest, at: at))
            case 2: lines.append(ReplayFile.pull(repository, tag: tag, digest: digest, method: "HEAD", at: at))
            case 3: lines.append(ReplayFile.pull(repository, digest: digest, at: at))
            default:
                let polled = 100_000 + index / 5 % 40
                lines.append(ReplayFile.pull("team\(polled % 15)/app", digest: ReplayFile.digest(polled), method: "HEAD", at: at))
            }
        }
        return lines
    }

    /// The tail sketch holds what the rule counts: a manifest polled with HEAD by digest is used,
    /// never pulled, and its stored bound still contains the truth (0) — where adding checks to the
    /// sketch made it "150 pulls ± a few".
    @Test func aClientMixThroughATinyHotTableKeepsEveryBoundAndNeverDatesEarly() throws {
        let summary = try ReplayFile(lines: Self.clientMix()).run(hotCapacity: 16, width: 1_024, depth: 4).summary
        #expect(summary.keysExactPercent < 100, "the tail was not used")
        #expect(summary.keysUsedNeverPulled >= 40, "the HEAD-by-digest pollers are in the run")
        #expect(summary.undercounts == 0)
        #expect(summary.keysOutsideBound == 0, "every stored bound contains the truth")
        #expect(summary.lastPulledEarlierThanTruth == 0 && summary.lastUsedEarlierThanTruth == 0)
    }
}

/// Replay files as they come: real registry envelopes, one per line, and seeded mutations of them
/// are replayed or refused with a message, never a crash.
@Suite struct ReplayFuzzTests {
    @Test func mutatedReplayLinesAreReplayedOrRefusedWithAMessage() throws {
        // One line per envelope, keys sorted: unsorted, their order follows the process's hash
        // seed, so the seeded mutations hit other bytes in every run.
        let lines = try corpus("notifications").map { envelope in
            Array(try JSONSerialization.data(withJSONObject: try JSONSerialization.jsonObject(with: Data(envelope)), options: .sortedKeys))
        }
        var mutator = Mutator(seed: 21, corpus: lines)
        var (replayed, refused) = (0, 0)
        for _ in 0..<100 {
            let file = try ReplayFile(lines: [String(decoding: mutator.next(), as: UTF8.self)])
            do {
                _ = try file.run(hotCapacity: 64, width: 64, depth: 2)
                replayed += 1
            } catch {
                #expect(!String(describing: error).isEmpty)
                refused += 1
            }
        }
        #expect(replayed > 0 && refused > 0, "replayed \(replayed), refused \(refused)")
    }

    @Test func aLineLongerThanTheLimitIsRefusedBeforeItIsHeldWhole() throws {
        let file = try ReplayFile(lines: [String(repeating: "a", count: 3 << 20)])
        let error = #expect(throws: (any Error).self) { try file.run(maximumLineBytes: 1 << 20) }
        #expect(String(describing: error).contains(":1: longer than 1048576 bytes"), "\(String(describing: error))")
    }
}
