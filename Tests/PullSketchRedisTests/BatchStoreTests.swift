import PullSketchCore
import PullSketchRedis
import PullSketchTestSupport
import Synchronization
import Foundation
import Testing

/// Merge and seal against a real redis-server, started per test on a free loopback port.
@Suite struct BatchStoreTests {
    let repository = try! RepositoryName("team/app")

    func store(_ server: RedisServer, shards: Int = 4) throws -> BatchStore {
        // A timeout long enough for a Redis the whole suite keeps busy: merges here must not fail.
        BatchStore(connection: try RedisConnection(RedisEndpoint(port: server.port, timeout: 60)), shardCount: shards)
    }

    func tracker(hotCapacity: Int = 32_768, sketch: SketchParameters = SketchParameters(width: 4_096, depth: 4)) -> PullTracker {
        PullTracker(configuration: TrackerConfiguration(isEnabled: true, hotCapacity: hotCapacity, sketch: sketch))
    }

    func pull(_ tag: String, _ method: ManifestRequestMethod = .get, at time: Int64, in repository: RepositoryName? = nil) -> PullEvent {
        let hex = String(UInt64(bitPattern: Int64(tag.hashValue & 0xFFFF)), radix: 16)
        return PullEvent(
            repository: repository ?? self.repository,
            reference: .tag(try! TagName(tag)),
            method: method,
            servedDigest: try! Digest("sha256:" + String(repeating: "0", count: 64 - hex.count) + hex),
            time: Timestamp(millisecondsSinceEpoch: time)
        )
    }

    @Test func fourNodesMergingWhileASealerSealsLoseAndDoubleNothing() async throws {
        let server = try RedisServer()
        let nodes = 4
        let parameters = SketchParameters(width: 4_096, depth: 4)
        let sent = Mutex<[Window]>([])
        let truth = Mutex<[String: KeyTotals]>([:])
        let nodesDone = Atomic<Int>(0)
        let failures = Mutex<[String]>([])
        runOnThreads(nodes + 1) { thread in
            do {
                let store = try store(server)
                if thread == nodes {
                    while nodesDone.load(ordering: .acquiring) < nodes {
                        for shard in 0..<store.shardCount { _ = try store.seal(shard: shard) }
                        usleep(100_000)
                    }
                    return
                }
                defer { nodesDone.add(1, ordering: .releasing) }
                let tracker = tracker(hotCapacity: 2_048, sketch: parameters)
                var generator = SeededGenerator(seed: UInt64(thread))
                for round in 0..<20 {
                    var events: [PullEvent] = []
                    // Popular tags first, so they always find room in the window's hot table ...
                    for index in 0..<2_000 {
                        let tag = "v\(Int.random(in: 0..<300, using: &generator))"
                        events.append(pull(tag, Bool.random(using: &generator) ? .get : .head, at: Int64(round * 10_000 + index)))
                    }
                    // ... then a flood of one-off tags that spills into the sketch.
                    for index in 0..<1_500 {
                        events.append(pull("n\(thread)-\(round)-\(index)", .head, at: Int64(round * 10_000 + index)))
                    }
                    for event in events { tracker.record(event) }
                    let window = tracker.drain()
                    try store.merge(window, node: "node-\(thread)")
                    sent.withLock { $0.append(window) }
                    truth.withLock { $0.merge(totals(of: events)) { $0 + $1 } }
                }
            } catch {
                failures.withLock { $0.append("\(error)") }
            }
        }
        #expect(failures.withLock { $0 } == [])
        // Reading a hundred thousand hot entries keeps a core busy for long in a debug build: on a
        // thread of its own, not one of the cooperative pool's two that every other test needs.
        let batches = try await onOwnThread { try drainSealed(try store(server)) }
        let windows = sent.withLock { $0 }
        #expect(batches.count > 4, "the sealer should have sealed during the merges")

        // Exact counts: the sealed sum equals what the nodes sent, and the truth for popular tags.
        let sealedHot = totals(batches.flatMap(\.content.hotEntries))
        #expect(sealedHot == totals(windows.flatMap(\.hotEntries)))
        let truthTotals = truth.withLock { $0 }
        for (key, counts) in truthTotals where key.hasPrefix("tag|team/app|v") {
            #expect(sealedHot[key] == counts, "popular key \(key)")
        }
        // Sketch cells: per shard, the sealed sum equals the sum of the nodes' cells.
        for shard in 0..<4 {
            var expected = CountMinSketch(parameters: parameters)
            for window in windows { try expected.add(cells: window.shards[shard].sketchCells) }
            var sealed = CountMinSketch(parameters: parameters)
            for batch in batches where batch.content.shard == shard {
                #expect(batch.parameters == parameters)
                try sealed.add(cells: batch.content.sketchCells)
            }
            #expect(sealed == expected, "shard \(shard) sketch")
        }
        // Conservation: every pull is in a sealed batch, exactly or in the tail mass.
        let pulls = truthTotals.values.reduce(0) { $0 + $1.pulls }
        #expect(batches.reduce(0) { $0 + $1.content.pulls } == pulls)
        #expect(batches.reduce(0) { $0 + $1.content.tailMass } > 0)
    }

    /// The merge script and `ShardWindow.merge` (what the accuracy report runs in memory) are one
    /// arithmetic: parts of three nodes, every request kind, hot and tail keys, named and unnamed,
    /// out-of-order times.
    @Test func aSealedBatchIsWhatShardWindowMergeMakesOfItsParts() throws {
        let server = try RedisServer()
        let store = try store(server, shards: 2)
        let parameters = SketchParameters(width: 512, depth: 3)
        var expected: [Int: ShardWindow] = [:]
        var generator = SeededGenerator(seed: 5)
        for node in 0..<3 {
            let tracker = PullTracker(configuration: TrackerConfiguration(
                isEnabled: true, hotCapacity: 40, stripeCount: 2, shardCount: 2, tailRepositoriesPerStripe: 3, tailNameCapacity: 60,
                sketch: parameters
            ))
            for _ in 0..<600 {
                let number = Int.random(in: 0..<120, using: &generator)
                let digest = try Digest("sha256:" + String(format: "%064x", number % 50))
                let repository = try RepositoryName("team/app\(number % 5)")
                let reference: ManifestReference = Bool.random(using: &generator) ? .tag(try TagName("v\(number)")) : .digest(digest)
                let method: ManifestRequestMethod = Bool.random(using: &generator) ? .get : .head
                let time = Timestamp(millisecondsSinceEpoch: Int64.random(in: 1_000...9_000, using: &generator))
                tracker.record(PullEvent(repository: repository, reference: reference, method: method, servedDigest: digest, time: time))
            }
            let window = tracker.drain()
            try store.merge(window, node: "node-\(node)")
            for part in window.shards where !part.isEmpty {
                try expected[part.shard, default: ShardWindow(shard: part.shard)].merge(part, parameters: parameters)
            }
        }
        let sealed = try drainSealed(store)
        #expect(sealed.count == 2)
        for batch in sealed {
            var content = batch.content, want = try #require(expected[batch.content.shard])
            #expect(content.tailMass > 0 && !content.hotEntries.isEmpty, "both hot and tail keys")
            #expect(!content.tailNames.isEmpty && content.tailRepositories.contains { $0.unnamedUses > 0 }, "both named and unnamed tail keys")
            content.hotEntries.sort { $0.key.description < $1.key.description }
            want.hotEntries.sort { $0.key.description < $1.key.description }
            #expect(content == want, "shard \(batch.content.shard)")
        }
    }

    /// A part with few usage bits sends their indexes (a `SETBIT` each), one with many a bitmap
    /// (one `BITOP`); either way the batch holds the same bits, the first and last of the filter
    /// included, and the merge's scratch key is gone.
    @Test func usageBitsSentAsIndexesOrAsABitmapLandAsTheSameBits() throws {
        let server = try RedisServer()
        let connection = try RedisConnection(RedisEndpoint(port: server.port))
        let store = BatchStore(connection: connection, shardCount: 1)
        let parameters = SketchParameters()  // 81,920 bits: 160 and more go as a bitmap
        let last = UInt32(parameters.width * parameters.depth - 1)
        var generator = SeededGenerator(seed: 11)
        let few: [UInt32] = [0, 9, 4_095, last]
        let many = Set((0..<2_000).map { _ in UInt32.random(in: 0...last, using: &generator) } + [0, 7, 8, last]).sorted()
        let more = Set((0..<500).map { _ in UInt32.random(in: 0...last / 2, using: &generator) } + many.prefix(100)).sorted()
        for (node, bits) in [("few", few), ("many", many), ("more", more)] {
            let part = ShardWindow(shard: 0, usageBits: bits, tailMass: 1, tailLastUsed: Timestamp(millisecondsSinceEpoch: 5))
            _ = try store.merge(Window(sequence: 1, parameters: parameters, shards: [part]), node: node)
        }
        #expect(try connection.command(["EXISTS", "{ps:0}:merge:usage"]) == .integer(0))
        guard case .bulk(let info) = try connection.command(["INFO", "commandstats"]) else { Issue.record("INFO answered no text"); return }
        let calls = String(decoding: info, as: UTF8.self)
        #expect(calls.contains("cmdstat_setbit:calls=\(few.count),"), "\(calls)")
        #expect(calls.contains("cmdstat_bitop:calls=2,"), "\(calls)")
        let sealed = try drainSealed(store)
        #expect(sealed.map(\.content.usageBits) == [Set(few + many + more).sorted()])
    }

    @Test func aRetriedMergeIsAppliedOnce() throws {
        let server = try RedisServer()
        let store = try store(server)
        let tracker = tracker()
        tracker.record(pull("v1", at: 10))
        tracker.record(pull("v1", .head, at: 20))
        let window = tracker.drain()
        let first = try store.merge(window, node: "node-a")
        let retry = try store.merge(window, node: "node-a")
        let otherNode = try store.merge(window, node: "node-b")
        #expect(first.values.allSatisfy { $0 == .applied })
        #expect(retry.values.allSatisfy { $0 == .alreadyApplied })
        #expect(otherNode.values.allSatisfy { $0 == .applied })
        let entries = try drainSealed(store).flatMap(\.content.hotEntries)
        let tag = totals(entries)["tag|team/app|v1"]
        let at20 = Timestamp(millisecondsSinceEpoch: 20)
        #expect(tag == KeyTotals(fetches: 2, checks: 2, pulls: 4, lastPulled: at20, lastUsed: at20))
    }

    @Test func aMergeExpectingMoreThanTheLedgerHasIsRewoundAndWritesNothing() throws {
        let server = try RedisServer()
        let store = try store(server)
        let tracker = tracker()
        tracker.record(pull("v1", at: 10))
        let first = tracker.drain()
        tracker.record(pull("v1", at: 20))
        let second = tracker.drain()
        let part = { (window: Window) in window.shards.first { !$0.isEmpty }! }
        let merge = { (window: Window, expected: UInt64) in
            try store.merge([PartMerge(sequence: window.sequence, expected: expected, part: part(window))], parameters: window.parameters, node: "n")[0]
        }
        #expect(try merge(first, 0).outcome == .applied)
        // The node heard the shard acknowledge window 5, but the ledger has 1: Redis lost merges.
        let rewound = try merge(second, 5)
        #expect(rewound.outcome == .rewound && rewound.ledger == first.sequence)
        #expect(try merge(second, first.sequence) == MergeReply(outcome: .applied, ledger: second.sequence, confirmed: 0))
        let batches = try drainSealed(store)
        #expect(batches.count == 1 && batches[0].windows == ["n": first.sequence...second.sequence])
        #expect(batches[0].content.pulls == part(first).pulls + part(second).pulls, "the rewound merge wrote nothing")
        #expect(try merge(second, second.sequence).confirmed == second.sequence, "deleting the batch confirmed its windows")
    }

    @Test func theLatestFetchDecidesATagsDigestAcrossNodes() throws {
        let server = try RedisServer()
        let store = try store(server)
        let (early, late) = (tracker(), tracker())
        late.record(PullEvent(repository: repository, reference: .tag(try TagName("v1")), method: .get,
                              servedDigest: try Digest("sha256:" + String(repeating: "b", count: 64)), time: Timestamp(millisecondsSinceEpoch: 200)))
        early.record(PullEvent(repository: repository, reference: .tag(try TagName("v1")), method: .get,
                               servedDigest: try Digest("sha256:" + String(repeating: "a", count: 64)), time: Timestamp(millisecondsSinceEpoch: 100)))
        try store.merge(late.drain(), node: "late")
        try store.merge(early.drain(), node: "early")
        let tag = try drainSealed(store).flatMap(\.content.hotEntries).first { $0.key.kind == .tag }
        #expect(tag?.currentDigest?.value == "sha256:" + String(repeating: "b", count: 64))
        #expect(tag?.fetches == 2)
    }

    @Test func aMergeWithOtherSketchParametersIsRefusedAndLeavesTheShardUnchanged() throws {
        let server = try RedisServer()
        let store = try store(server, shards: 1)
        let configuration = { (width: Int) in
            TrackerConfiguration(isEnabled: true, hotCapacity: 0, stripeCount: 1, shardCount: 1, sketch: SketchParameters(width: width, depth: 3))
        }
        let narrow = PullTracker(configuration: configuration(256))
        let wide = PullTracker(configuration: configuration(512))
        narrow.record(pull("v1", at: 1))
        wide.record(pull("v2", at: 2))
        try store.merge(narrow.drain(), node: "narrow")
        #expect {
            try store.merge(wide.drain(), node: "wide")
        } throws: { error in
            (error as? BatchStoreError)?.kind == .sketchMismatch
        }
        let batches = try drainSealed(store)
        #expect(batches.count == 1)
        #expect(batches[0].parameters == SketchParameters(width: 256, depth: 3))
        #expect(batches[0].content.tailMass == 2)  // v1 and its manifest, nothing of v2
        #expect(batches[0].content.tailRepositories.map(\.pulls) == [2])
    }

    @Test func aProcessWithAnotherShardCountIsRefusedNotMixedIn() throws {
        let server = try RedisServer()
        let tracker = { (shards: Int) in
            PullTracker(configuration: TrackerConfiguration(
                isEnabled: true, hotCapacity: 0, stripeCount: shards, shardCount: shards, sketch: SketchParameters(width: 256, depth: 3)
            ))
        }
        let two = tracker(2), four = tracker(4)
        for index in 0..<200 {
            two.record(pull("v\(index)", at: 1))
            four.record(pull("v\(index)", at: 2))
        }
        let twoShardStore = try store(server, shards: 2), fourShardStore = try store(server, shards: 4)
        try twoShardStore.merge(two.drain(), node: "two")
        #expect {
            try fourShardStore.merge(four.drain(), node: "four")
        } throws: { error in
            (error as? BatchStoreError)?.kind == .sketchMismatch
        }
        let number = try #require(try twoShardStore.seal(shard: 0))
        #expect {
            try fourShardStore.readBatch(shard: 0, number: number)
        } throws: { error in
            (error as? BatchStoreError)?.kind == .sketchMismatch && "\(error)".contains("2 shards")
        }
        #expect(try twoShardStore.readBatch(shard: 0, number: number)?.content.tailMass ?? 0 > 0)
    }

    @Test func theLedgerForgetsANodeSilentForLongerThanItsMemoryByRedissClock() throws {
        let server = try RedisServer()
        let connection = try RedisConnection(RedisEndpoint(port: server.port))
        let store = BatchStore(connection: connection, shardCount: 1, ledgerMemoryMilliseconds: 1_000)
        let tracker = { PullTracker(configuration: TrackerConfiguration(isEnabled: true, stripeCount: 1, shardCount: 1)) }
        let quiet = tracker()
        quiet.record(pull("v1", .head, at: 1))
        let window = quiet.drain()
        #expect(try store.merge(window, node: "quiet") == [0: .applied])
        #expect(try store.merge(window, node: "quiet") == [0: .alreadyApplied])
        // The ledger is stamped with Redis's time, whatever the merging process's clock says.
        guard case .array(let time) = try connection.command(["TIME"]), case .bulk(let seconds) = time[0],
              case .bulk(let score) = try connection.command(["ZSCORE", "{ps:0}:ledger:touched", "quiet"]),
              let redisNow = Double(String(decoding: seconds, as: UTF8.self)), let touched = Double(String(decoding: score, as: UTF8.self)) else {
            Issue.record("unexpected replies")
            return
        }
        #expect(abs(touched / 1_000 - redisNow) < 2)
        Thread.sleep(forTimeInterval: 1.2)
        let busy = tracker()
        busy.record(pull("v1", .head, at: 2))
        try store.merge(busy.drain(), node: "busy")  // forgets the quiet node, by Redis's clock
        #expect(try store.merge(window, node: "quiet") == [0: .applied])
    }

    /// Over its `maxmemory` Redis refuses a merge before it writes: the part is `.refused`, the
    /// shard and its ledger unchanged, and the window form of `merge` throws; once Redis has room,
    /// the next window merges as if the refused one had never been sent.
    @Test func aMergeRedisRefusesOverItsMemoryLimitIsRefusedAndWritesNothing() throws {
        let server = try RedisServer()
        let connection = try RedisConnection(RedisEndpoint(port: server.port))
        let store = BatchStore(connection: connection, shardCount: 1)
        let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, stripeCount: 1, shardCount: 1))
        tracker.record(pull("v1", at: 1))
        let first = tracker.drain()
        tracker.record(pull("v2", at: 2))
        let second = tracker.drain()
        _ = try connection.command(["CONFIG", "SET", "maxmemory", "1"])  // below what Redis holds empty
        let refused = try store.merge(
            [PartMerge(sequence: first.sequence, expected: 0, part: first.shards[0])], parameters: first.parameters, node: "n"
        )
        #expect(refused.map(\.outcome) == [.refused])
        for key in ["{ps:0}:live:pulls", "{ps:0}:ledger", "{ps:0}:fingerprint"] {
            #expect(try connection.command(["EXISTS", key]) == .integer(0), "\(key)")
        }
        #expect(throws: RedisError.self) { try store.merge(second, node: "n") }
        _ = try connection.command(["CONFIG", "SET", "maxmemory", "0"])
        #expect(try store.merge(second, node: "n") == [0: .applied])
        let batches = try drainSealed(store)
        #expect(batches.count == 1 && batches[0].windows == ["n": second.sequence...second.sequence], "the refused merge took no window")
    }

    @Test func aKeyOfTheWrongTypeRefusesTheMergeBeforeItWritesAnything() throws {
        let server = try RedisServer()
        let connection = try RedisConnection(RedisEndpoint(port: server.port))
        let store = BatchStore(connection: connection, shardCount: 1)
        _ = try connection.command(["SET", "{ps:0}:live:pulls", "not a hash"])
        let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, stripeCount: 1, shardCount: 1))
        tracker.record(pull("v1", at: 1))
        #expect {
            try store.merge(tracker.drain(), node: "node")
        } throws: { error in
            "\(error)".contains("{ps:0}:live:pulls holds a string, not a hash")
        }
        // Nothing before the bad key was written, and the ledger did not take the window.
        for key in ["{ps:0}:live:fetches", "{ps:0}:live:checks", "{ps:0}:ledger", "{ps:0}:fingerprint"] {
            #expect(try connection.command(["EXISTS", key]) == .integer(0), "\(key)")
        }
    }

    @Test func sealingNothingMakesNoBatch() throws {
        let server = try RedisServer()
        let store = try store(server)
        #expect(try store.seal(shard: 0) == nil)
        #expect(try store.sealedBatches(shard: 0) == [])
    }

    @Test func sealingNumbersBatchesAboveTheFloorAndRecordsTheSealTime() throws {
        let server = try RedisServer()
        let store = try store(server, shards: 1)
        let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, stripeCount: 1, shardCount: 1))
        for round in 0..<3 {
            tracker.record(pull("v1", at: 1))
            try store.merge(tracker.drain(), node: "n")
            let floor: Int64 = round == 1 ? 41 : 0
            let sealedAt = Timestamp(millisecondsSinceEpoch: 1_000 + Int64(round))
            #expect(try store.seal(shard: 0, floor: floor, now: sealedAt) == [1, 42, 43][round])
        }
        #expect(try store.sealedBatches(shard: 0) == [1, 42, 43])
        #expect(try store.oldestSealTime(shard: 0) == Timestamp(millisecondsSinceEpoch: 1_000))
        #expect(try store.readBatch(shard: 0, number: 42)?.sealedAt == Timestamp(millisecondsSinceEpoch: 1_001))
        try store.deleteBatch(shard: 0, number: 1)
        #expect(try store.oldestSealTime(shard: 0) == Timestamp(millisecondsSinceEpoch: 1_001))
        #expect(try store.readBatch(shard: 0, number: 1) == nil)
    }

    @Test func garbageInTheLayoutGivesAClearErrorNotACrash() throws {
        let server = try RedisServer()
        let store = try store(server, shards: 1)
        let raw = try RedisConnection(RedisEndpoint(port: server.port))
        let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, stripeCount: 1, shardCount: 1))
        tracker.record(pull("v1", at: 1))
        let window = tracker.drain()

        // A live key of the wrong type: the merge fails with Redis's own reason.
        _ = try raw.command(["SET", "{ps:0}:live:fetches", "not a hash"])
        #expect { try store.merge(window, node: "n") } throws: { error in
            "\(error)".contains("WRONGTYPE")
        }
        _ = try raw.command(["DEL", "{ps:0}:live:fetches"])

        // A sealed batch with a truncated sketch and a counter that is not a number.
        try store.merge(window, node: "n")
        let number = try #require(try store.seal(shard: 0))
        _ = try raw.command(["SET", "{ps:0}:batch:\(number):sketch", "abcde"])
        #expect { try store.readBatch(shard: 0, number: number) } throws: { error in
            (error as? BatchStoreError)?.kind == .malformed && "\(error)".contains("5 bytes")
        }
        _ = try raw.command(["DEL", "{ps:0}:batch:\(number):sketch"])
        _ = try raw.command(["HSET", "{ps:0}:batch:\(number):fetches", "t|team/app|v1", "many"])
        #expect { try store.readBatch(shard: 0, number: number) } throws: { error in
            (error as? BatchStoreError)?.kind == .malformed && "\(error)".contains("many")
        }
        _ = try raw.command(["HSET", "{ps:0}:batch:\(number):seen", "t|Team/App|v1", "5"])
        #expect(throws: BatchStoreError.self) { try store.readBatch(shard: 0, number: number) }
    }

    @Test func aFieldIsAKeyOnlyAsKindRepositoryAndNameBetweenTwoBars() throws {
        let server = try RedisServer()
        let store = try store(server, shards: 1)
        let raw = try RedisConnection(RedisEndpoint(port: server.port))
        let tracker = PullTracker(configuration: TrackerConfiguration(isEnabled: true, stripeCount: 1, shardCount: 1))
        tracker.record(pull("v1", at: 1))
        try store.merge(tracker.drain(), node: "n")
        let number = try #require(try store.seal(shard: 0))
        let digest = "sha256:" + String(repeating: "a", count: 64)
        // Each field as a tail name (a member of the names set) and as a hot key (a field of the
        // last-used hash).
        for isName in [true, false] {
            let key = "{ps:0}:batch:\(number):\(isName ? "names" : "used")"
            func add(_ field: String) throws { _ = try raw.command(isName ? ["SADD", key, field] : ["HSET", key, field, "7"]) }
            func remove(_ field: String) throws { _ = try raw.command(isName ? ["SREM", key, field] : ["HDEL", key, field]) }
            for (field, expected) in [
                ("t|team/app|v2.0_rc-1", PullKey(repository, .tag(try TagName("v2.0_rc-1")))),
                ("m|team/app|\(digest)", PullKey(repository, .manifest(try Digest(digest)))),
            ] {
                try add(field)
                let batch = try #require(try store.readBatch(shard: 0, number: number))
                #expect(isName ? batch.content.tailNames.contains(expected) : batch.content.hotEntries.contains { $0.key == expected })
                try remove(field)
            }
            for field in [
                "", "t", "t|team/app", "x|team/app|v1", "tt|team/app|v1", "|team/app|v1", "t||v1", "t|team/app|", "t|team/app|v1|v2",
                "m|team/app|v1", "t|Team/App|v1", "t|tëam/app|v1", "t|team/app|\(digest)",
            ] {
                try add(field)
                #expect("\(field)") { try store.readBatch(shard: 0, number: number) } throws: { error in
                    (error as? BatchStoreError)?.kind == .malformed && "\(error)".contains("'\(field)', not a key")
                }
                try remove(field)
            }
        }
    }
}

@Suite struct RedisConnectionTests {
    @Test func authenticatesAndSelectsTheConfiguredDatabase() throws {
        let server = try RedisServer(password: "s3cret")
        #expect {
            try RedisConnection(RedisEndpoint(port: server.port, password: "wrong"))
        } throws: { error in
            (error as? RedisError)?.kind == .connection && !(error as! RedisError).wasSent
        }
        let second = try RedisConnection(RedisEndpoint(port: server.port, password: "s3cret", database: 2))
        _ = try second.command(["SET", "where", "db2"])
        let first = try RedisConnection(RedisEndpoint(port: server.port, password: "s3cret"))
        #expect(try first.command(["GET", "where"]) == .null)
        _ = try first.command(["SELECT", "2"])
        #expect(try first.command(["GET", "where"]) == .bulk(Array("db2".utf8)))
    }

    @Test func nothingListeningIsAConnectionErrorThatWasNotSent() throws {
        #expect {
            try RedisConnection(RedisEndpoint(port: try freeLoopbackPort(), timeout: 1))
        } throws: { error in
            (error as? RedisError)?.wasSent == false
        }
    }

    @Test func pipelinedErrorRepliesComeBackInPlace() throws {
        let server = try RedisServer()
        let connection = try RedisConnection(RedisEndpoint(port: server.port))
        let replies = try connection.pipeline([
            [Array("SET".utf8), Array("k".utf8), [0, 255, 10]],
            [Array("INCR".utf8), Array("k".utf8)],
            [Array("GET".utf8), Array("k".utf8)],
        ])
        #expect(replies[0] == .status("OK"))
        guard case .error = replies[1] else { Issue.record("INCR of binary data should fail in place"); return }
        #expect(replies[2] == .bulk([0, 255, 10]))
    }

    @Test func argumentsOfAnyBytesAndLengthReachRedisAsSent() throws {
        let server = try RedisServer()
        let connection = try RedisConnection(RedisEndpoint(port: server.port))
        // Empty, protocol-like, control bytes, and a length of six digits.
        let values: [[UInt8]] = [
            [], Array("\r\n*1\r\n$3\r\nGET\r\n".utf8), [0, 13, 10, 36, 42, 255], (0..<123_457).map { UInt8(truncatingIfNeeded: $0 &* 31) },
        ]
        let sets = values.indices.map { [Array("SET".utf8), Array("k\($0)".utf8), values[$0]] }
        let gets = values.indices.map { [Array("GET".utf8), Array("k\($0)".utf8)] }
        #expect(try connection.pipeline(sets + gets) == values.map { _ in .status("OK") } + values.map { .bulk($0) })
        // A command of twelve arguments: a count of two digits.
        #expect(try connection.pipeline([[Array("DEL".utf8)] + (0..<11).map { Array("k\($0)".utf8) }]) == [.integer(4)])
    }
}
