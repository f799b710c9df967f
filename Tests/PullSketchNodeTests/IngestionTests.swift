import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import PullSketchCore
import PullSketchEvents
@testable import PullSketchNode
import PullSketchRedis
import PullSketchTestSupport
import ServiceLifecycleTestKit
import Synchronization
import Testing

@Suite(.postgresServer) struct IngestionTests {
    static let v1: HTTPFields = [.authorization: "Bearer \(NodeFixture.secret)", .contentType: "application/vnd.docker.distribution.events.v1+json"]
    static let v2: HTTPFields = [.authorization: "Bearer \(NodeFixture.secret)", .contentType: "application/vnd.docker.distribution.events.v2+json"]

    @Test func anEnvelopeRecordsManifestPullsOnceAndDropsOnlyItsInvalidEvents() async throws {
        let fixture = try NodeFixture()
        let blob = event(id: "e3", tag: nil, mediaType: "application/octet-stream")
        let events = [
            event(id: "e1"),                                      // GET by tag: tag fetch, manifest fetch
            event(id: "e2", method: "HEAD"),                      // HEAD by tag: tag check
            blob,                                                 // a layer: ignored
            event(id: "e4", repository: "Team/App"),              // invalid name: dropped
            event(id: "e1"),                                      // redelivered: counted once
            event(id: "e5", tag: nil, method: "HEAD"),            // HEAD by digest: manifest check
            ["id": "e6", "action": 42],                          // not an event: dropped
        ]
        let body = envelope(events)
        try await fixture.test { client in
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: body) { response in
                #expect(response.status == .ok)
                #expect(response.integers == ["accepted": 3, "duplicates": 1, "ignored": 1, "dropped": 2])
                let reasons = response.json["dropped_reasons"] as? [String] ?? []
                #expect(reasons.count == 2 && reasons[0].contains("Team/App"), "each dropped event says why: \(reasons)")
            }
            // The same event again in a v2 envelope: still once.
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v2, body: envelope([event(id: "e1")])) { response in
                #expect(response.json["duplicates"] as? Int == 1)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.text.contains(#"pullsketch_events_total{outcome="duplicate"} 2"#))
                #expect(response.text.contains(#"pullsketch_events_total{outcome="dropped"} 2"#))
            }
        }
        let counts = Dictionary(uniqueKeysWithValues: fixture.tracker.drain().hotEntries.map { ("\($0.key.kind)|\($0.key.name)", ($0.fetches, $0.checks)) })
        #expect(counts.count == 2)
        #expect(counts["tag|v1"].map { $0 == (1, 1) } == true, "tag: one GET, one HEAD")
        #expect(counts["manifest|sha256:" + String(repeating: "a", count: 64)].map { $0 == (1, 1) } == true, "manifest: GET by tag, HEAD by digest")
    }

    @Test(arguments: [
        ("Bearer wrong-secret-0123456789", "application/vnd.docker.distribution.events.v1+json", 401),
        (nil, "application/vnd.docker.distribution.events.v1+json", 401),
        ("Bearer \(NodeFixture.secret)", "text/plain", 415),
        ("Bearer\(NodeFixture.secret)", "application/vnd.docker.distribution.events.v1+json", 401),
        ("Basic \(NodeFixture.secret)", "application/vnd.docker.distribution.events.v1+json", 401),
        ("Bearer \(NodeFixture.secret)x", "application/vnd.docker.distribution.events.v1+json", 401),
        ("Bearer \(NodeFixture.secret)", "application/vnd.docker.distribution.events.v1+jsonx", 415),
        ("Bearer \(NodeFixture.secret)", "application/vnd.docker.distribution.events.v3+json", 415),
    ] as [(String?, String, Int)])
    func aRequestWithoutTheSecretOrOfAnotherTypeIsRefusedAndChangesNothing(authorization: String?, contentType: String, status: Int) async throws {
        let fixture = try NodeFixture()
        var fields: HTTPFields = [.contentType: contentType]
        if let authorization { fields[.authorization] = authorization }
        let headers = fields
        try await fixture.test { client in
            try await client.execute(uri: "/notifications", method: .post, headers: headers, body: envelope([event(id: "x")])) { response in
                #expect(response.status.code == status)
                #expect(response.json["error"] is String)
            }
        }
        #expect(fixture.tracker.drain().isEmpty)
    }

    /// Two `Authorization` or two `Content-Type` fields are refused even when each alone is right:
    /// which one the sender meant is not for the node to guess.
    @Test(arguments: [(HTTPField.Name.authorization, 401), (.contentType, 415)])
    func aRepeatedAuthorizationOrContentTypeFieldIsRefusedAndChangesNothing(repeated: HTTPField.Name, status: Int) async throws {
        let fixture = try NodeFixture()
        var fields = Self.v1
        fields.append(HTTPField(name: repeated, value: Self.v1[repeated]!))
        let headers = fields
        try await fixture.test { client in
            try await client.execute(uri: "/notifications", method: .post, headers: headers, body: envelope([event(id: "x")])) { response in
                #expect(response.status.code == status)
                #expect(response.json["error"] is String)
            }
        }
        #expect(fixture.tracker.drain().isEmpty)
    }

    /// The scheme and the media type — distribution's, or plain JSON as relays and `curl` send the
    /// envelope — are read without regard to case or spaces.
    @Test(arguments: [
        ("bEaReR \(NodeFixture.secret)", "Application/VND.Docker.Distribution.Events.V1+JSON"),
        ("Bearer  \t\(NodeFixture.secret) \t", " application/vnd.docker.distribution.events.v2+json ; charset=utf-8"),
        ("Bearer \(NodeFixture.secret)", "application/json; charset=utf-8"),
    ])
    func anAcceptedSchemeAndMediaTypeAreReadWithoutRegardToCaseOrSpaces(authorization: String, contentType: String) async throws {
        let fixture = try NodeFixture()
        let headers: HTTPFields = [.authorization: authorization, .contentType: contentType]
        try await fixture.test { client in
            try await client.execute(uri: "/notifications", method: .post, headers: headers, body: envelope([event(id: "x")])) { response in
                #expect(response.status == .ok)
                #expect(response.text == #"{"accepted":1,"dropped":0,"duplicates":0,"ignored":0}"#)
            }
        }
        #expect(!fixture.tracker.drain().isEmpty)
    }

    /// Malformed bodies are 4xx. An envelope over `max_body_bytes` is dropped with a 200, so that
    /// the registry's queue moves on (`EndToEndTests.aClientsUserAgentNeverStopsTheRegistrysNotifications`);
    /// pulls a registry posts itself are refused with a 413, which such a sender can act on.
    @Test func malformedOrOversizedBodiesChangeNothing() async throws {
        let fixture = try NodeFixture(maxBodyBytes: 2_048)
        try await fixture.test { client in
            for body in ["{\"events\": [", "[1, 2]", "{\"events\": 5}"] {
                try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: ByteBuffer(string: body)) { response in
                    #expect(response.status == .badRequest, "\(body)")
                }
            }
            let large = envelope((0..<40).map { event(id: "big-\($0)") })
            #expect(large.readableBytes > 2_048)
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: large) { response in
                #expect(response.status == .ok)
                #expect(response.json["dropped"] as? Int == 1 && response.json["accepted"] as? Int == 0)
                #expect(response.json["dropped_reasons"] as? [String] == ["envelope larger than 2048 bytes, not read"])
            }
            let pulls = ByteBuffer(string: #"{"pulls": ["# + Array(repeating: #"{"repository": "team/app", "tag": "v1", "method": "GET"}"#, count: 60).joined(separator: ",") + "]}")
            let json: HTTPFields = [.authorization: "Bearer \(NodeFixture.secret)", .contentType: "application/json"]
            try await client.execute(uri: "/api/v1/pulls", method: .post, headers: json, body: pulls) { response in
                #expect(response.status == .contentTooLarge)
            }
        }
        #expect(fixture.tracker.drain().isEmpty)
    }

    @Test func pushAndDeleteEventsKeepTheCatalog() async throws {
        let fixture = try NodeFixture()
        let writer = Task { try await fixture.node.catalogUpdates.run() }
        defer { writer.cancel() }
        let digest = "sha256:" + String(repeating: "b", count: 64)
        try await fixture.test { client in
            let push = event(id: "p1", action: "push", tag: "v2", digest: digest, method: "PUT")
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: envelope([push])) { response in
                #expect(response.json["accepted"] as? Int == 1)
            }
        }
        try await waitFor { try fixture.sql("SELECT digest, deleted_at IS NULL FROM catalog_tags WHERE tag = 'v2'") == [[digest, "t"]] }
        try await fixture.test { client in
            let delete = event(id: "d1", action: "delete", tag: "v2", digest: digest, mediaType: "")
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: envelope([delete])) { _ in }
        }
        try await waitFor { try fixture.sql("SELECT deleted_at IS NOT NULL FROM catalog_tags WHERE tag = 'v2'") == [["t"]] }
    }

    @Test func envelopesWhoseCatalogChangesDoNotFitAreDeferredAndNothingIsLost() async throws {
        let fixture = try NodeFixture(catalogQueueCapacity: 2)
        let digest = "sha256:" + String(repeating: "c", count: 64)
        let push = { (tag: String) in event(id: "push-\(tag)", action: "push", tag: tag, digest: digest, method: "PUT") }
        let later = envelope([push("v3"), event(id: "pull-v3", tag: "v3", digest: digest)])
        let first = envelope([push("v1"), push("v2")])
        try await fixture.test { client in
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: first) { response in
                #expect(response.status == .ok && response.integers["accepted"] == 2)
            }
            // The queue is full (no writer yet): refused whole, the pull included, for a redelivery.
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: later) { response in
                #expect(response.status == .serviceUnavailable && response.headers[.retryAfter] == "5")
                #expect(response.text.contains("catalog queue is full"))
            }
            #expect(fixture.tracker.drain().isEmpty)
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.text.contains(#"pullsketch_catalog_changes_total{outcome="deferred"} 1"#))
            }
        }
        let writer = Task { try await fixture.node.catalogUpdates.run() }
        defer { writer.cancel() }
        try await waitFor { try fixture.sql("SELECT count(*) FROM catalog_tags") == [["2"]] }
        try await fixture.test { client in
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: later) { response in
                #expect(response.status == .ok && response.integers["accepted"] == 2, "the redelivery is not a duplicate")
            }
        }
        try await waitFor { try fixture.sql("SELECT tag FROM catalog_tags ORDER BY tag") == [["v1"], ["v2"], ["v3"]] }
    }

    /// A batch of catalog changes the database refuses — here a trigger refuses a statement that
    /// writes more than 50 tags, as a statement timeout refuses one too large for a busy server —
    /// is retried smaller until every change is written.
    @Test func catalogChangesTooManyForOneStatementGoInSmallerBatches() async throws {
        let fixture = try NodeFixture()
        _ = try fixture.sql("""
            CREATE FUNCTION refuse_large_batches() RETURNS trigger LANGUAGE plpgsql AS $$
            BEGIN
                IF (SELECT count(*) FROM written) > 50 THEN RAISE EXCEPTION 'more than 50 tags in one statement'; END IF;
                RETURN NULL;
            END $$
            """)
        _ = try fixture.sql("""
            CREATE TRIGGER refuse_large_batches AFTER INSERT ON catalog_tags REFERENCING NEW TABLE AS written
                FOR EACH STATEMENT EXECUTE FUNCTION refuse_large_batches()
            """)
        let digest = "sha256:" + String(repeating: "d", count: 64)
        try await fixture.test { client in
            let pushes = (0..<300).map { event(id: "push-\($0)", action: "push", tag: "t\($0)", digest: digest, method: "PUT") }
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: envelope(pushes)) { response in
                #expect(response.integers["accepted"] == 300)
            }
        }
        let writer = Task { try await fixture.node.catalogUpdates.run() }
        defer { writer.cancel() }
        try await waitFor { try fixture.sql("SELECT count(*) FROM catalog_tags") == [["300"]] }
    }

    /// Catalog changes still waiting when a graceful shutdown begins — here because PostgreSQL is
    /// down — are retried and written before the catalog's writer ends, once PostgreSQL is back
    /// within its grace period: `pullsketch serve` stops the writer only after the server took its
    /// last request.
    @Test func catalogChangesWaitingAtAGracefulShutdownAreWrittenBeforeItEnds() async throws {
        let postgres = try PostgresServer()
        let fixture = try NodeFixture(postgres: postgres)
        let updates = fixture.node.catalogUpdates
        let digest = try Digest("sha256:" + String(repeating: "c", count: 64))
        let change = CatalogChange.pushTag(try RepositoryName("team/app"), try TagName("at-shutdown"), digest, .now())
        postgres.stop()
        #expect(updates.reserve(1))
        updates.enqueue([change], reserved: 1)
        try await testGracefulShutdown { trigger in
            async let running: Void = updates.run()
            try await Task.sleep(for: .seconds(1))  // the change fails to be written and waits
            trigger.triggerGracefulShutdown()
            try await onOwnThread { try postgres.start() }
            try await running
        }
        #expect(try fixture.sql("SELECT tag, digest FROM catalog_tags") == [["at-shutdown", digest.value]])
    }

    @Test func directPullsAreValidatedLikeEvents() async throws {
        let fixture = try NodeFixture()
        let body = """
            {"pulls": [
              {"repository": "team/app", "tag": "v1", "digest": "sha256:\(String(repeating: "c", count: 64))", "method": "GET", "time": "2026-11-22T00:00:00Z"},
              {"repository": "team/app", "digest": "sha256:short", "method": "GET"},
              {"repository": "team/app", "tag": "v1", "method": "DELETE"},
              {"repository": "team/app", "digest": "sha256:\(String(repeating: "c", count: 64))", "method": "head", "id": "same"},
              {"repository": "team/app", "digest": "sha256:\(String(repeating: "c", count: 64))", "method": "head", "id": "same"}
            ]}
            """
        try await fixture.test { client in
            let headers: HTTPFields = [.authorization: "Bearer \(NodeFixture.secret)", .contentType: "application/json"]
            try await client.execute(uri: "/api/v1/pulls", method: .post, headers: headers, body: ByteBuffer(string: body)) { response in
                #expect(response.integers == ["accepted": 2, "duplicates": 1, "ignored": 0, "dropped": 2])
            }
        }
        let window = fixture.tracker.drain()
        #expect(window.hotEntries.map(\.lastUsed).max() ?? .distantPast > Timestamp(millisecondsSinceEpoch: 1_795_000_000_000))
        #expect(window.pulls == 2, "GET by tag: tag and manifest; HEAD by digest: the manifest is used, not pulled")
        #expect(window.hotEntries.reduce(0) { $0 + $1.checks } == 1)
    }

    @Test func aRedeliveryToAnotherNodeOrAfterARestartCountsOnceAndIsDeferredWhileRedisIsDown() async throws {
        let redis = try RedisServer(appendOnly: true)
        let first = try NodeFixture(redisPort: redis.port, eventIDHorizon: .seconds(900))
        let body = envelope([event(id: "delivered-twice"), event(id: "first-only", tag: "v2")])
        try await first.test { client in
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: body) { response in
                #expect(response.integers["accepted"] == 2)
            }
        }
        // Another node, or the first one restarted: its own memory is empty, Redis remembers.
        let second = try NodeFixture(redisPort: redis.port, eventIDHorizon: .seconds(900))
        try await second.test { client in
            let again = envelope([event(id: "delivered-twice"), event(id: "second-only", tag: "v3")])
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: again) { response in
                #expect(response.integers == ["accepted": 1, "duplicates": 1, "ignored": 0, "dropped": 0])
            }
        }
        #expect(second.tracker.drain().hotEntries.map(\.key.name).sorted() == ["sha256:" + String(repeating: "a", count: 64), "v3"])

        // Redis down: the envelope is deferred, changing nothing, and delivered again later.
        redis.kill()
        let later = envelope([event(id: "while-redis-is-down", tag: "v4"), event(id: "second-only", tag: "v3")])
        try await second.test { client in
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: later) { response in
                #expect(response.status == .serviceUnavailable && response.headers[.retryAfter] == "5")
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.text.contains(#"pullsketch_events_total{outcome="deferred"} 2"#))
            }
        }
        #expect(second.tracker.drain().isEmpty)
        try await onOwnThread { try redis.start() }
        try await Task.sleep(for: .seconds(2.5))  // claims pause for 2 s after a failure
        try await second.test { client in
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: later) { response in
                #expect(response.integers["accepted"] == 1 && response.integers["duplicates"] == 1)
            }
        }
    }

    @Test func notificationsAreDeferredWhileRedisIsAtItsMemoryLimit() async throws {
        let redis = try RedisServer()
        let settings = try connectRedis(RedisEndpoint(port: redis.port))
        let node = try NodeFixture(redisPort: redis.port, eventIDHorizon: .seconds(900))
        let body = envelope([event(id: "while-redis-is-full", tag: "v1")])
        _ = try settings.command(["CONFIG", "SET", "maxmemory", "1"])  // below what Redis holds empty
        try await node.test { client in
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: body) { response in
                #expect(response.status == .serviceUnavailable, "the event id cannot be claimed")
            }
        }
        #expect(node.tracker.drain().isEmpty, "nothing counted: the registry delivers it again")
        _ = try settings.command(["CONFIG", "SET", "maxmemory", "0"])
        try await node.test { client in
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: body) { response in
                #expect(response.integers["accepted"] == 1)
            }
        }
    }

    /// An envelope some of whose event ids Redis refuses to claim (over its `maxmemory`; here
    /// `ClaimRefusals`) is deferred, but the events it did claim count now: deferred whole, their redelivery would be
    /// duplicates and they would be lost. Delivered again, it counts the rest, so each pull counts
    /// once. Through the event loop's lane (`.live`) and through the router's claims.
    @Test(arguments: [false, true]) func anEnvelopePartlyRefusedByRedisCountsEachPullOnceWhenDeliveredAgain(throughTheRouter: Bool) async throws {
        let redis = try RedisServer()
        let refusals = ClaimRefusals(redis: try connectRedis(RedisEndpoint(port: redis.port)))
        // A loaded machine must not time a claim out: a claim not answered defers it whole.
        let node = try NodeFixture(redisPort: redis.port, redisTimeout: 60, eventIDHorizon: .seconds(86_400))
        let ids = (0..<20).map { "partly-refused-\($0)" }
        let allowed = ClaimRefusals.taken(ids.map(EventFingerprint.init))
        let body = envelope(ids.enumerated().map { event(id: $1, tag: "t\($0)") })
        func counted() -> [String: UInt64] {
            Dictionary(uniqueKeysWithValues: node.tracker.drain().shards.flatMap(\.hotEntries).filter { $0.key.kind == .tag }.map { ($0.key.name, $0.pulls) })
        }
        let setup: TestingSetup = throughTheRouter ? .router : .live
        try refusals.start()
        try await node.test(setup) { client in
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: body) { response in
                #expect(response.status == .serviceUnavailable, "the refused events wait for the next delivery")
            }
        }
        let claimedTags = ids.indices.filter { allowed[$0] }.map { "t\($0)" }
        #expect(counted() == Dictionary(uniqueKeysWithValues: claimedTags.map { ($0, 1) }), "the claimed events count at once")
        try refusals.stop()
        try await node.test(setup) { client in
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: body) { response in
                #expect(response.status == .ok)
                #expect(response.integers["accepted"] == ids.count - claimedTags.count)
                #expect(response.integers["duplicates"] == claimedTags.count)
            }
        }
        let restTags = ids.indices.filter { !allowed[$0] }.map { "t\($0)" }
        #expect(counted() == Dictionary(uniqueKeysWithValues: restTags.map { ($0, 1) }), "the rest count when delivered again")
    }

    /// A direct pull without an id, in a request some of whose ids Redis refuses to claim, waits for
    /// the request's next delivery with the refused ones: counted now, it would count again then.
    @Test func aPullWithoutIDWaitsWithTheRefusedOnesForTheNextDelivery() async throws {
        let redis = try RedisServer()
        let refusals = ClaimRefusals(redis: try connectRedis(RedisEndpoint(port: redis.port)))
        // A loaded machine must not time a claim out: a claim not answered defers it whole.
        let node = try NodeFixture(redisPort: redis.port, redisTimeout: 60, eventIDHorizon: .seconds(86_400))
        let ids = (0..<10).map { "direct-\($0)" }
        let allowed = ClaimRefusals.taken(ids.map(EventFingerprint.init))
        let pulls = ids.enumerated().map { #"{"repository": "team/app", "tag": "t\#($0)", "method": "GET", "id": "\#($1)"}"# }
            + [#"{"repository": "team/app", "tag": "without-id", "method": "GET"}"#]
        let body = ByteBuffer(string: #"{"pulls": [\#(pulls.joined(separator: ", "))]}"#)
        let headers: HTTPFields = [.authorization: "Bearer \(NodeFixture.secret)", .contentType: "application/json"]
        func counted() -> Set<String> { Set(node.tracker.drain().shards.flatMap(\.hotEntries).map(\.key.name)) }
        try refusals.start()
        try await node.test { client in
            try await client.execute(uri: "/api/v1/pulls", method: .post, headers: headers, body: body) { response in
                #expect(response.status == .serviceUnavailable)
            }
        }
        #expect(counted() == Set(ids.indices.filter { allowed[$0] }.map { "t\($0)" }))
        try refusals.stop()
        try await node.test { client in
            try await client.execute(uri: "/api/v1/pulls", method: .post, headers: headers, body: body) { response in
                #expect(response.integers["accepted"] == allowed.count { !$0 } + 1)
            }
        }
        #expect(counted() == Set(ids.indices.filter { !allowed[$0] }.map { "t\($0)" } + ["without-id"]))
    }

    /// A claim whose answer is lost — Redis stalls past the node's timeout, then runs what waited —
    /// still counts, once: the node answers 503 and, once Redis answers again, asks it what became
    /// of each id; the registry's redelivery is then a duplicate. Through the event loop's lane
    /// (`.live`) and through the router's claims.
    @Test(arguments: [false, true]) func claimsWhoseAnswerWasLostCountOnceWhenRedisAnswersAgain(throughTheRouter: Bool) async throws {
        let redis = try RedisServer()
        let node = try NodeFixture(redisPort: redis.port, redisTimeout: 1, eventIDHorizon: .seconds(86_400))
        let ids = (0..<10).map { "stalled-\($0)" }
        let body = envelope(ids.enumerated().map { event(id: $1, tag: "t\($0)") })
        let tags = Set(ids.indices.map { "t\($0)" })
        let tally = Mutex<[String: UInt64]>([:])
        @Sendable func counted() -> [String: UInt64] {
            tally.withLock { counted in
                for entry in node.tracker.drain().shards.flatMap(\.hotEntries) where entry.key.kind == .tag {
                    counted[entry.key.name, default: 0] += entry.pulls
                }
                return counted
            }
        }
        try await node.test(throughTheRouter ? .router : .live) { client in
            redis.pause()
            defer { redis.resume() }
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: body) { response in
                #expect(response.status == .serviceUnavailable, "no answer within the node's timeout")
            }
            // Past the pause after a failure, claims still wait while the lost ones do: the node
            // holds no more than what was out when Redis stopped answering.
            try await Task.sleep(for: .seconds(2.5))  // claims pause for 2 s after a failure
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: envelope([event(id: "behind", tag: "behind")])) { response in
                #expect(response.status == .serviceUnavailable)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                let held = response.text.split(separator: "\n").first { $0.hasPrefix("pullsketch_event_claims_lost_requests ") }
                #expect(held.flatMap { Double($0.split(separator: " ")[1]) } == 1, "one request held, not the later one too")
            }
            redis.resume()
            try await waitFor("the lost claims asked again") { Set(counted().keys) == tags }
            try await waitFor("claims sent again") {
                try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: body) { response in
                    guard response.status == .ok else { return false }
                    #expect(response.integers["accepted"] == 0 && response.integers["duplicates"] == ids.count)
                    return true
                }
            }
        }
        #expect(counted() == Dictionary(uniqueKeysWithValues: tags.map { ($0, 1) }), "each pull once")
    }

    /// A stopping node gives the requests whose claims' answer was lost a grace period after its
    /// server stopped: when Redis answers within it, their events are in the tracker for the
    /// node's last merge.
    @Test func aStoppingNodeWaitsForItsLostClaimsBeforeItsLastMerge() async throws {
        let redis = try RedisServer()
        let node = try NodeFixture(redisPort: redis.port, redisTimeout: 1, eventIDHorizon: .seconds(86_400))
        let resumed = DispatchSemaphore(value: 0)
        redis.pause()
        try await node.test { client in
            try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: envelope([event(id: "stopping", tag: "stopping")])) { response in
                #expect(response.status == .serviceUnavailable)
            }
            // Redis answers again only once the node is stopping; from a thread, which busy tests
            // holding the cooperative pool cannot hold up.
            Thread {
                Thread.sleep(forTimeInterval: 1.5)
                redis.resume()
                resumed.signal()
            }.start()
        }
        #expect(node.tracker.drain().hotEntries.contains { $0.key.name == "stopping" }, "counted before the node stopped")
        // Redis is stopped with the test only once that thread let it go.
        try await onOwnThread { resumed.wait() }
    }

    /// Claims of requests read while others are out in a Redis that holds them are sent behind
    /// those, not held back until they return, and each id counts once however its copies were
    /// spread over the requests.
    @Test func claimsArrivingWhileOthersAreOutAreSentBehindThemAndCountEachIDOnce() async throws {
        // On a lane of its own: the test's steps and the node's request handling never wait for the
        // cooperative pool, which the suite's busy tests may hold for minutes.
        try await withTaskExecutorPreference(CPUBoundLane()) {
            await Task.yield()  // onto the lane
            let redis = try RedisServer()
            // Redis holds writes until the test lets go (the pause's own bound only ends a failing
            // run), and the claims' connection waits for it: no step depends on how fast the machine is.
            let fixture = try NodeFixture(redisPort: redis.port, redisTimeout: 900, eventIDHorizon: .seconds(900))
            let redisEndpoint = RedisEndpoint(port: redis.port)
            _ = try RedisConnection(redisEndpoint).command(["CLIENT", "PAUSE", "600000", "WRITE"])
            let unpause: @Sendable () throws -> Void = { _ = try RedisConnection(redisEndpoint).command(["CLIENT", "UNPAUSE"]) }
            // The test client holds 8 connections: the first request's, the later ones' and one for the metrics.
            let later = 6
            // Each request on a connection of its own: one connection answers one request at a time.
            let summaries = try await fixture.test(.ahc()) { client in
                @Sendable func post(_ id: Int) async throws -> [String: Int] {
                    let body = envelope([event(id: "e\(id)", tag: "t\(id)")])
                    return try await client.execute(uri: "/notifications", method: .post, headers: Self.v1, body: body) { $0.integers }
                }
                @Sendable func metric(_ name: String) async throws -> Int {
                    try await client.execute(uri: "/metrics", method: .get) { response in
                        response.text.split(separator: "\n").first { $0.hasPrefix(name + " ") }.flatMap { Double($0.split(separator: " ")[1]).map(Int.init) } ?? -1
                    }
                }
                return try await withThrowingTaskGroup(of: [String: Int].self) { group in
                    do {
                        // The first claim goes out and waits in the paused Redis...
                        group.addTask { try await post(0) }
                        try await waitFor("the first round trip is out", within: .seconds(300)) {
                            try await metric("pullsketch_event_claim_round_trips_total") == 1
                        }
                        // ...while the next requests' claims (each id twice, the first one's among them) go out behind it.
                        for index in 0..<later {
                            group.addTask { try await post(index % (later / 2)) }
                        }
                        try await waitFor("\(later) more requests wait", within: .seconds(300)) {
                            try await metric("pullsketch_event_claims_waiting_requests") == later + 1
                        }
                        // Sent while the first is still out: more round trips than the first's.
                        try await waitFor("the later claims go out", within: .seconds(60)) {
                            try await metric("pullsketch_event_claim_round_trips_total") >= 2
                        }
                        try unpause()
                    } catch {
                        try unpause()
                        throw error
                    }
                    let summaries = try await group.reduce(into: []) { $0.append($1) }
                    #expect(try await metric("pullsketch_event_claim_round_trips_total") >= 2)
                    #expect(try await metric("pullsketch_event_claims_waiting_requests") == 0)
                    return summaries
                }
            }
            #expect(summaries.map { $0["accepted"] ?? 0 }.reduce(0, +) == later / 2)
            #expect(summaries.map { $0["duplicates"] ?? 0 }.reduce(0, +) == later / 2 + 1)
            #expect(Set(fixture.tracker.drain().hotEntries.filter { $0.key.kind == .tag }.map(\.key.name)).count == later / 2)
        }
    }

    @Test func eventTimesAreClampedToTheMaximumDelayBeforeArrival() async throws {
        let fixture = try NodeFixture()
        let before = Timestamp.now()
        try await fixture.test { client in
            let headers = Self.v2
            let events = [
                event(id: "future", tag: "future", timestamp: "9999-12-31T23:59:59Z"),
                event(id: "old", tag: "old", timestamp: "2025-01-01T00:00:00Z"),
                event(id: "fresh", tag: "fresh", timestamp: RFC3339.format(before)),
                event(id: "future", tag: "future", timestamp: "9999-12-31T23:59:59Z"),
            ]
            try await client.execute(uri: "/notifications", method: .post, headers: headers, body: envelope(events)) { response in
                #expect(response.integers["accepted"] == 3 && response.integers["duplicates"] == 1)
            }
            try await client.execute(uri: "/metrics", method: .get) { response in
                #expect(response.text.contains("pullsketch_event_times_clamped_total 2"), "a redelivered event is not counted again")
            }
        }
        let after = Timestamp.now()
        let times = Dictionary(uniqueKeysWithValues: fixture.tracker.drain().hotEntries.filter { $0.key.kind == .tag }.map { ($0.key.name, $0.lastPulled) })
        let tenMinutes: Int64 = 600_000
        #expect(times["future"]! >= before && times["future"]! <= after, "a time in the future becomes the arrival time")
        #expect(times["old"]!.millisecondsSinceEpoch >= before.millisecondsSinceEpoch - tenMinutes, "a year-old time moves up to the delay")
        #expect(times["old"]!.millisecondsSinceEpoch <= after.millisecondsSinceEpoch - tenMinutes)
        #expect(times["fresh"] == before, "a time inside the window is kept")
    }
}
