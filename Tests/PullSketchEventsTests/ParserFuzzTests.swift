import Foundation
import PullSketchCore
import PullSketchEvents
import PullSketchTestSupport
import Testing

/// The event parsers against real envelopes captured from docker-registry
/// (`scripts/capture-notifications`) and seeded mutations of them: every input is either read or
/// refused with a reason, and nothing crashes. `scripts/fuzz` runs libFuzzer for longer.
@Suite struct ParserFuzzTests {
    @Test func realEnvelopesFromTheRegistryAreReadEventByEvent() throws {
        var actions: [String: Int] = [:]
        for bytes in try corpus("notifications") {
            let envelope = try JSONDecoder().decode(NotificationEnvelope.self, from: Data(bytes))
            for item in envelope.events {
                let event = try #require(item.event, "an event of docker-registry's own shape")
                switch event.ingested() {
                case .pull: actions["pull", default: 0] += 1
                case .catalog: actions["catalog", default: 0] += 1
                case .ignored: actions["ignored", default: 0] += 1
                case .invalid(let reason): Issue.record("a real event was refused: \(reason)")
                }
            }
        }
        #expect(actions["pull", default: 0] > 0 && actions["catalog", default: 0] > 0 && actions["ignored", default: 0] > 0, "\(actions)")
    }

    /// skopeo pushing a two-platform image: the index's push names both platform manifests (its
    /// `references`); an image manifest's references (config and layers) name no manifest.
    @Test func theRealPushOfAnImageIndexNamesItsPlatformManifests() throws {
        var indexes: [(tag: String?, children: [Digest])] = []
        var otherPushes = 0
        for bytes in try corpus("notifications") {
            for item in try JSONDecoder().decode(NotificationEnvelope.self, from: Data(bytes)).events {
                switch item.event?.ingested() {
                case .catalog(.pushIndex(_, let tag, _, let children, _)): indexes.append((tag?.value, children))
                case .catalog(.pushTag), .catalog(.pushManifest): otherPushes += 1
                default: break
                }
            }
        }
        #expect(indexes.count == 1 && indexes.first?.tag == "v1" && indexes.first?.children.count == 2)
        #expect(otherPushes == 3, "the single-platform image and the two platform manifests")
    }

    @Test func mutatedEnvelopesAreReadOrRefusedWithAReason() throws {
        var mutator = Mutator(seed: 17, corpus: try corpus("notifications"))
        var outcomes: [String: Int] = [:]
        for _ in 0..<1_500 {
            guard let envelope = try? JSONDecoder().decode(NotificationEnvelope.self, from: Data(mutator.next())) else {
                outcomes["not an envelope", default: 0] += 1
                continue
            }
            for item in envelope.events {
                switch item.event?.ingested() {
                case nil: outcomes["not an event", default: 0] += 1
                case .invalid(let reason):
                    #expect(!reason.isEmpty)
                    outcomes["invalid", default: 0] += 1
                default: outcomes["read", default: 0] += 1
                }
            }
        }
        #expect(outcomes.count == 4, "every kind of outcome was reached: \(outcomes)")
    }

    /// The node's byte reader against `JSONDecoder` on the real envelopes, their mutations and
    /// the corners of JSON: the same envelope, the same events of another shape, the same refusals.
    @Test func theByteReaderReadsEnvelopesAsJSONDecoderDoes() throws {
        let event = #"{"id":"a","timestamp":"2026-11-22T01:02:03Z","action":"pull","target":{"mediaType":"m","digest":"d","repository":"r","tag":"t"},"request":{"method":"GET"}}"#
        let corners = [
            #"{"events":[]}"#, #"{"events":null}"#, #"{}"#, #"[]"#, #"{"events":[1,"x",null,true,{}]}"#, "\u{feff}{\"events\":[]}",
            #"{"events":[\#(event)]} x"#, #"{"events":[\#(event),]}"#, #"{"events":[\#(event)],}"#, #"{"events" :[ \#(event) ] }"#,
            #"{"events":[{"id":5}]}"#, #"{"events":[{"id":null,"target":null,"request":null}]}"#, #"{"events":[{"target":{"tag":[]}}]}"#,
            #"{"events":[{"target":{"references":[{"digest":"d"},null]}}]}"#, #"{"events":[{"target":{"references":null}}]}"#,
            #"{"events":[{"ta\u0072get":{"t\u0061g":"v\u00e9\ud83d\ude00\n\/"}}]}"#, #"{"events":[{"id":"\ud800"}]}"#,
            #"{"events":[{"id":"vé😀\#u{7F}","té":1,"target":{"tag":"é"}}]}"#,
            #"{"events":[{"id":"\udc00"}]}"#, #"{"events":[{"id":"\ud800\u0041"}]}"#, #"{"events":[{"id":"\x"}]}"#, "{\"events\":[{\"id\":\"\t\"}]}",
            #"{"events":[{"size":-0.5e+3,"n":[0,-1,1.0E2,true,false,null,{"a":{}}]}]}"#, #"{"events":[{"size":01}]}"#,
            #"{"events":[{"size":1.}]}"#, #"{"events":[{"size":-}]}"#, #"{"events":[{"size":.5}]}"#, #"{"events":[{"size":1e}]}"#,
            #"{"events":[{"id":"a","id":"b"}]}"#, #"{"events":[{"id":5,"id":"b"}]}"#, #"{"events":[],"events":[{}]}"#,
            #"{"events":[nul]}"#, #"{"events":[tru]}"#, #"{"events":[{"id":"a"}]"#, #"{"events":[{"id":"a}]}"#, "",
            String(repeating: "[", count: 511) + String(repeating: "]", count: 511),
            #"{"events":"# + String(repeating: "[", count: 510) + String(repeating: "]", count: 510) + "}",
            #"{"events":"# + String(repeating: "[", count: 511) + String(repeating: "]", count: 511) + "}",
        ].map { Array($0.utf8) } + [Array(#"{"events":[{"id":""#.utf8) + [0xC3, 0x28] + Array(#""}]}"#.utf8)]
        let outcomes = try expectReadAsJSONDecoderDoes(corpus: "notifications", corners: corners, seed: 19, NotificationEnvelope.init(json:)) {
            $0.events.contains { $0.event == nil }
        }
        #expect(outcomes == ["refused", "read", "read, some of another shape"], "every kind of outcome was reached")
    }

    @Test func theByteReaderReadsDirectPullsAsJSONDecoderDoes() throws {
        let corners = [
            #"{"pulls":[{"repository":"r","method":"GET"},{"repository":null,"method":"GET"},{"method":"GET"},{"repository":"r","method":5}]}"#,
            #"{"pulls":[{"repository":"r","method":"GET","tag":null,"digest":null,"time":null,"id":null,"extra":[1,{}]},]}"#,
            #"{"pulls":[{"repository":"r","repository":5,"method":"GET"}]}"#, #"{"pulls":{}}"#, #"{"pull":[]}"#,
        ].map { Array($0.utf8) }
        let outcomes = try expectReadAsJSONDecoderDoes(corpus: "pulls", corners: corners, seed: 20, DirectPulls.init(json:)) {
            $0.pulls.contains { $0.pull == nil }
        }
        #expect(outcomes == ["refused", "read", "read, some of another shape"], "every kind of outcome was reached")
    }

    /// Checks that `read` answers as `JSONDecoder` on the corpus, `corners` and 20,000 mutations of
    /// both; returns the kinds of outcome reached.
    private func expectReadAsJSONDecoderDoes<Body: Decodable & Equatable>(
        corpus name: String, corners: [[UInt8]], seed: UInt64, _ read: (UnsafeRawBufferPointer) -> Body?,
        hasItemOfAnotherShape: (Body) -> Bool
    ) throws -> Set<String> {
        let real = try corpus(name)
        var mutator = Mutator(seed: seed, corpus: real + corners)
        var outcomes: Set<String> = []
        for bytes in real + corners + (0..<20_000).map({ _ in mutator.next() }) {
            let expected = try? JSONDecoder().decode(Body.self, from: Data(bytes))
            #expect(bytes.withUnsafeBytes(read) == expected, "\(String(decoding: bytes.prefix(300), as: UTF8.self))")
            outcomes.insert(expected.map { hasItemOfAnotherShape($0) ? "read, some of another shape" : "read" } ?? "refused")
        }
        return outcomes
    }

    @Test func mutatedDirectPullsAreReadOrRefusedWithAReason() throws {
        var mutator = Mutator(seed: 18, corpus: try corpus("pulls"))
        var read = 0
        for _ in 0..<1_500 {
            guard let batch = try? JSONDecoder().decode(DirectPulls.self, from: Data(mutator.next())) else { continue }
            for item in batch.pulls {
                if case .invalid(let reason) = item.pull?.ingested(receivedAt: .now()) {
                    #expect(!reason.isEmpty)
                } else if item.pull != nil {
                    read += 1
                }
            }
        }
        #expect(read > 0)
    }

    @Test func deeplyNestedJSONIsRefusedNotACrash() {
        for opening in ["[", "{\"events\":"] {
            let bytes = Data(String(repeating: opening, count: 200_000).utf8)
            #expect((try? JSONDecoder().decode(NotificationEnvelope.self, from: bytes)) == nil)
            #expect(bytes.withUnsafeBytes { NotificationEnvelope(json: $0) } == nil)
            #expect((try? JSONDecoder().decode(DirectPulls.self, from: bytes)) == nil)
            #expect(bytes.withUnsafeBytes { DirectPulls(json: $0) } == nil)
        }
    }
}
