import Foundation
import HummingbirdTesting
import NIOCore
@testable import PullSketchNode
import PullSketchRedis
import PullSketchTestSupport
import Testing

/// Ingestion answered on the event loop, seen from a client's socket: what only a real
/// connection shows (the node's other suites check what the answers say).
@Suite(.postgresServer) struct EventLoopIngestionTests {
    /// A POST of one pull event with `id`, as bytes on the wire.
    static func post(_ id: String, path: String = "/notifications", close: Bool = false) -> String {
        post(ids: [id], path: path, close: close)
    }

    /// A POST of a pull event per id, as bytes on the wire.
    static func post(ids: [String], path: String = "/notifications", close: Bool = false) -> String {
        let body = String(buffer: envelope(ids.map { event(id: $0, tag: "t-\($0)") }))
        return "POST \(path) HTTP/1.1\r\nHost: node\r\nAuthorization: Bearer \(NodeFixture.secret)\r\n"
            + "Content-Type: application/vnd.docker.distribution.events.v1+json\r\nContent-Length: \(body.utf8.count)\r\n"
            + (close ? "Connection: close\r\n" : "") + "\r\n" + body
    }

    static let httpDate = {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss 'GMT'"
        return formatter
    }()

    static func get(_ path: String, close: Bool = false) -> String {
        "GET \(path) HTTP/1.1\r\nHost: node\r\n" + (close ? "Connection: close\r\n" : "") + "\r\n"
    }

    /// The responses in `reply`, in order: status, headers (names lowercased), body.
    static func responses(_ reply: [UInt8]) -> [(status: Int, headers: [String: String], body: String)] {
        var rest = Substring(String(decoding: reply, as: UTF8.self))
        var found: [(Int, [String: String], String)] = []
        while let end = rest.range(of: "\r\n\r\n") {
            let lines = rest[..<end.lowerBound].split(separator: "\r\n")
            let status = lines.first.flatMap { Int($0.split(separator: " ")[1]) } ?? 0
            var headers: [String: String] = [:]
            for line in lines.dropFirst() {
                guard let colon = line.firstIndex(of: ":") else { continue }
                headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
            let length = Int(headers["content-length"] ?? "0") ?? 0
            let body = rest[end.upperBound...].utf8.prefix(length)
            found.append((status, headers, String(decoding: body, as: UTF8.self)))
            rest = rest[body.endIndex...]
        }
        return found
    }

    /// Requests sent back to back on one connection are answered in the order sent, whichever
    /// answers them: an ingestion request waits behind one the router still has, and everything
    /// behind an ingestion request waits for its event-id claim. Each answer's head is its own
    /// (the event loop reuses a head only while nothing in it changes). With claims in Redis and
    /// by the node's memory.
    @Test(arguments: [false, true]) func requestsSentBackToBackAreAnsweredInOrder(claimsInRedis: Bool) async throws {
        let redis = claimsInRedis ? try RedisServer() : nil
        let fixture = try NodeFixture(redisPort: redis?.port, eventIDHorizon: claimsInRedis ? .seconds(60) : .zero)
        let ten = (0..<10).map { "t\($0)" }
        try await fixture.test { client in
            let port = try #require(client.port)
            let requests = [
                Self.post("e1"), Self.get("/healthz"), Self.post("e1"), Self.post(ids: ten), Self.post("e2", path: "/api/v1/pulls"),
                Self.get("/metrics", close: true),
            ]
            let (reply, closed) = try await onOwnThread { try exchange(port: port, Array(requests.joined().utf8), timeout: 60) }
            let answers = Self.responses(reply)
            #expect(closed)
            try #require(answers.count == 6, "\(String(decoding: reply, as: UTF8.self))")
            #expect(answers[0].status == 200 && answers[0].body.contains(#""accepted":1,"#))
            #expect(answers[1].body.contains(#""status""#), "the health check's answer second")
            #expect(answers[2].status == 200 && answers[2].body.contains(#""duplicates":1"#))
            #expect(answers[3].status == 200 && answers[3].body.contains(#""accepted":10,"#) && answers[3].body.hasSuffix("}"), "a longer answer, whole: \(answers[3].body)")
            #expect(answers[4].status == 415, "a pull batch must be application/json: \(answers[4].body)")
            #expect(answers[5].body.contains("hb_requests"), "the metrics last")
            for answer in answers {
                #expect(answer.headers["x-content-type-options"] == "nosniff" && answer.headers["server"] == "PullSketch")
                let date = answer.headers["date"].flatMap(Self.httpDate.date(from:))
                #expect(date.map { abs($0.timeIntervalSinceNow) < 120 } == true, "Date: \(answer.headers["date"] ?? "none")")
            }
            // Every notification counted in the router's series, whichever answered it.
            #expect(answers[5].body.contains(#"hb_requests{http_route="/notifications",http_request_method="POST",http_response_status_code="200"} 3"#))
            #expect(answers[5].body.contains(#"http_server_active_requests{http_request_method="POST"} 0.0"#))
        }
        #expect(Set(fixture.tracker.drain().hotEntries.filter { $0.key.kind == .tag }.map(\.key.name)) == Set(["t-e1"] + ten.map { "t-\($0)" }))
    }

    /// A node allowing one request at a time whose event-id claims go to a Redis that holds them
    /// (`CLIENT PAUSE WRITE`) until `release` is called; `body` drives the node's server on `port`.
    static func withClaimsHeld(
        _ body: @Sendable (_ fixture: NodeFixture, _ port: Int, _ release: @Sendable () throws -> Void) async throws -> Void
    ) async throws -> NodeFixture {
        let redis = try RedisServer()
        let fixture = try NodeFixture(redisPort: redis.port, redisTimeout: 300, eventIDHorizon: .seconds(60), maxConcurrentRequests: 1)
        let endpoint = RedisEndpoint(port: redis.port)
        try await fixture.test { client in
            let port = try #require(client.port)
            _ = try RedisConnection(endpoint).command(["CLIENT", "PAUSE", "600000", "WRITE"])
            try await body(fixture, port) { _ = try RedisConnection(endpoint).command(["CLIENT", "UNPAUSE"]) }
        }
        extendLifetime(redis)
        return fixture
    }

    /// An ingestion request waiting for its claim counts toward `max_concurrent_requests`: another
    /// is refused at once with 503 and `Retry-After`, and the first is answered once Redis is.
    @Test func anIngestionRequestWaitingForItsClaimCountsTowardTheConcurrencyLimit() async throws {
        _ = try await Self.withClaimsHeld { fixture, port, release in
            let first = Task { try await onOwnThread { try exchange(port: port, Array(Self.post("held", close: true).utf8), timeout: 300) } }
            try await waitFor("the first claim is out", within: .seconds(300)) {
                String(decoding: fixture.registry.emitToBuffer(), as: UTF8.self).contains("pullsketch_event_claim_round_trips_total 1")
            }
            let (refused, _) = try await onOwnThread { try exchange(port: port, Array(Self.post("refused", close: true).utf8), timeout: 60) }
            try release()
            let refusal = try #require(Self.responses(refused).first)
            #expect(refusal.status == 503 && refusal.headers["retry-after"] == "1" && refusal.body.contains("requests in flight"))
            let answered = try #require(Self.responses(try await first.value.reply).first)
            #expect(answered.status == 200 && answered.body.contains(#""accepted":1"#))
        }
    }

    /// While a request waits for its claim, what its client sends behind it is not read beyond
    /// what arrived first: the client is held back by its socket, not buffered by the node. The
    /// request is answered first once its claim is back.
    @Test func whatAClientSendsBehindAWaitingRequestIsNotReadWithoutBound() async throws {
        let pile = Array(String(repeating: Self.get("/healthz"), count: 1_000_000).utf8)  // 37 MB
        _ = try await Self.withClaimsHeld { fixture, port, release in
            let connection = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            defer { close(connection) }
            try #require(connectLoopback(connection, port: port))
            var wait = timeval(tv_sec: 3, tv_usec: 0)
            setsockopt(connection, SOL_SOCKET, SO_SNDTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
            let request = Array(Self.post("held").utf8)
            #expect(request.withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) } == request.count)
            try await waitFor("the claim is out", within: .seconds(300)) {
                String(decoding: fixture.registry.emitToBuffer(), as: UTF8.self).contains("pullsketch_event_claim_round_trips_total 1")
            }
            var taken = 0
            while taken < pile.count {
                let written = pile[taken...].withUnsafeBytes { send(connection, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                guard written > 0 else { break }  // the send timeout: nobody reads
                taken += written
            }
            #expect(taken < pile.count / 2, "\(taken) of \(pile.count) bytes taken while the claim was held")
            try release()
            var reply: [UInt8] = []
            var buffer = [UInt8](repeating: 0, count: 65_536)
            while !String(decoding: reply.prefix(1_000), as: UTF8.self).contains("\"accepted\"") {
                let count = recv(connection, &buffer, buffer.count, 0)
                guard count > 0 else { break }
                reply += buffer[..<count]
            }
            #expect(Self.responses(reply).first?.status == 200, "the held request answered first once its claim is back")
        }
    }

    /// A client that goes away before its body is in full gives its place under
    /// `max_concurrent_requests` back.
    @Test func aRequestCutOffMidBodyGivesItsPlaceBack() async throws {
        let fixture = try NodeFixture(maxConcurrentRequests: 1)
        try await fixture.test { client in
            let port = try #require(client.port)
            let cutOff = Array(Self.post("cut").utf8.dropLast(10))
            let (nothing, _) = try await onOwnThread { try exchange(port: port, cutOff, timeout: 0.5) }
            #expect(nothing.isEmpty)
            try await waitFor("the cut-off request is let go") {
                let (reply, _) = try await onOwnThread { try exchange(port: port, Array(Self.post("next", close: true).utf8), timeout: 60) }
                return Self.responses(reply).first?.status == 200
            }
        }
    }

    /// A client that goes away while its request waits for the event-id claim: the claimed event
    /// is still recorded (its redelivery would be a duplicate), and its place is given back.
    @Test func aRequestWhoseClientLeftWhileItsClaimWasOutIsStillApplied() async throws {
        let fixture = try await Self.withClaimsHeld { _, port, release in
            let (nothing, _) = try await onOwnThread { try exchange(port: port, Array(Self.post("gone").utf8), timeout: 1) }
            try release()
            #expect(nothing.isEmpty, "answered only once the claim was back")
            try await waitFor("the left request's place is given back") {
                let (reply, _) = try await onOwnThread { try exchange(port: port, Array(Self.post("next", close: true).utf8), timeout: 60) }
                return Self.responses(reply).first?.status == 200
            }
        }
        #expect(Set(fixture.tracker.drain().hotEntries.filter { $0.key.kind == .tag }.map(\.key.name)) == ["t-gone", "t-next"])
    }

    /// `request` asking `Expect: 100-continue`, as its head and its body.
    static func expectingContinue(_ request: String) -> (head: [UInt8], body: [UInt8]) {
        let end = request.range(of: "\r\n\r\n")!
        return (Array((request[..<end.lowerBound] + "\r\nExpect: 100-continue\r\n\r\n").utf8), Array(request[end.upperBound...].utf8))
    }

    static func signIn(close: Bool) -> String {
        let body = "token=\(NodeFixture.teamToken)"
        return "POST /login HTTP/1.1\r\nHost: node\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: \(body.utf8.count)\r\n"
            + (close ? "Connection: close\r\n" : "") + "\r\n" + body
    }

    /// A client that sends `Expect: 100-continue` and waits is told `100 Continue` before it sends
    /// its body — on a route answered on the event loop and on one of the router's alike — and
    /// is then answered as without it.
    @Test(arguments: ["/notifications", "/login"]) func aClientExpectingContinueIsToldToSendItsBody(path: String) async throws {
        let fixture = try NodeFixture()
        try await fixture.test { client in
            let port = try #require(client.port)
            let (head, body) = Self.expectingContinue(path == "/login" ? Self.signIn(close: true) : Self.post("e1", close: true))
            let (early, reply, closed) = try await onOwnThread { try exchange(port: port, head, awaiting: "\r\n\r\n", then: body, timeout: 60) }
            #expect(String(decoding: early, as: UTF8.self) == "HTTP/1.1 100 Continue\r\n\r\n", "before the body was sent")
            let answers = Self.responses(reply)
            #expect(closed && answers.count == 1)
            let answer = try #require(answers.first)
            #expect(path == "/login" ? answer.status == 303 : answer.status == 200 && answer.body.contains(#""accepted":1"#))
        }
    }

    /// A `100 Continue` leaves after the answers to the requests sent before its own on the
    /// connection: answers keep the requests' order.
    @Test func continueWaitsForTheAnswersToRequestsSentBefore() async throws {
        let fixture = try NodeFixture()
        try await fixture.test { client in
            let port = try #require(client.port)
            let (head, body) = Self.expectingContinue(Self.post("e1", close: true))
            let sentBefore = Array((Self.get("/healthz") + Self.signIn(close: false)).utf8)
            let (early, reply, _) = try await onOwnThread {
                try exchange(port: port, sentBefore + head, awaiting: "100 Continue\r\n\r\n", then: body, timeout: 60)
            }
            let answers = Self.responses(early)
            #expect(answers.count == 3 && answers[0].body.contains(#""status""#), "\(String(decoding: early, as: UTF8.self))")
            #expect(answers.map(\.status).dropFirst() == [303, 100])
            #expect(Self.responses(reply).first?.body.contains(#""accepted":1"#) == true)
        }
    }

    /// An HTTP/1.0 connection closes after an answer its request did not ask to keep it for, on
    /// the event loop's routes and the router's, and its `Expect: 100-continue` is ignored; an
    /// HTTP/1.1 request that lists `close` among its connection options in any case closes it too.
    @Test func connectionsCloseAfterTheAnswerTheirRequestEndsThemWith() async throws {
        let fixture = try NodeFixture()
        try await fixture.test { client in
            let port = try #require(client.port)
            let keptOpen = "GET /healthz HTTP/1.0\r\nHost: node\r\nConnection: Keep-Alive\r\n\r\n"
            let old = Self.expectingContinue(Self.post("e1").replacingOccurrences(of: "HTTP/1.1", with: "HTTP/1.0"))
            let (reply, closed) = try await onOwnThread {
                try exchange(port: port, Array(keptOpen.utf8) + old.head + old.body + Array(Self.get("/healthz").utf8), timeout: 60)
            }
            let answers = Self.responses(reply)
            #expect(closed && answers.count == 2, "\(String(decoding: reply, as: UTF8.self))")
            #expect(answers.last?.body.contains(#""accepted":1"#) == true, "answered without a 100")

            let listed = "GET /healthz HTTP/1.1\r\nHost: node\r\nConnection: keep-alive, Close\r\n\r\n"
            let (closing, closedToo) = try await onOwnThread { try exchange(port: port, Array((listed + Self.get("/healthz")).utf8), timeout: 60) }
            #expect(closedToo && Self.responses(closing).count == 1, "\(String(decoding: closing, as: UTF8.self))")
        }
    }

    /// An HTTP/1.0 client that asks to keep its connection is answered in HTTP/1.0 and told
    /// `Connection: keep-alive` (without it, such a client closes after every answer), on the event
    /// loop's routes and the router's, and the connection serves the request sent after the answers.
    @Test func anHTTP10ConnectionKeptAliveIsToldSoAndStaysOpen() async throws {
        let fixture = try NodeFixture()
        try await fixture.test { client in
            let port = try #require(client.port)
            let keptAlive = [Self.post("e1"), Self.post("e2"), Self.get("/metrics")].map { request in
                let version = request.range(of: "HTTP/1.1\r\n")!
                return request.replacingCharacters(in: version, with: "HTTP/1.0\r\nConnection: keep-alive\r\n")
            }
            let last = "GET /metrics HTTP/1.0\r\n\r\n"
            let (early, reply, closed) = try await onOwnThread {
                try exchange(port: port, Array(keptAlive.joined().utf8), awaiting: "hb_requests", then: Array(last.utf8), timeout: 60)
            }
            let text = String(decoding: early, as: UTF8.self)
            let answers = Self.responses(early)
            #expect(answers.map(\.status) == [200, 200, 200], "\(text)")
            #expect(answers.allSatisfy { $0.headers["connection"] == "keep-alive" }, "\(text)")
            #expect(text.components(separatedBy: "HTTP/1.0 200 OK\r\n").count == 4, "answered in the client's version: \(text)")
            #expect(String(decoding: reply, as: UTF8.self).contains("HTTP/1.0 200 OK\r\n") && closed, "the next request answered, then closed")
        }
    }

    /// A request the decoder cannot read gets a JSON error and its connection is closed: 431 for a
    /// head over the decoder's limit, 400 for one that is not HTTP. Behind an unanswered request,
    /// that request is answered first.
    @Test func anUnreadableRequestIsAnsweredWithItsErrorAndTheConnectionClosed() async throws {
        let fixture = try NodeFixture()
        try await fixture.test { client in
            let port = try #require(client.port)
            let oversize = "GET /healthz HTTP/1.1\r\nHost: node\r\nX-Padding: \(String(repeating: "a", count: 200_000))\r\n\r\n"
            for (request, status, error) in [(oversize, 431, "the request's head is too large"), ("NOT HTTP AT ALL\r\n\r\n", 400, "malformed HTTP request")] {
                let (reply, closed) = try await onOwnThread { try exchange(port: port, Array(request.utf8), timeout: 60) }
                let answers = Self.responses(reply)
                #expect(closed && answers.map(\.status) == [status], "\(String(decoding: reply, as: UTF8.self))")
                #expect(answers.first?.body == #"{"error":"\#(error)"}"#)
                #expect(answers.first?.headers["content-type"] == "application/json" && answers.first?.headers["x-content-type-options"] == "nosniff")
            }
            let (reply, closed) = try await onOwnThread { try exchange(port: port, Array((Self.get("/metrics") + "NOT HTTP\r\n\r\n").utf8), timeout: 60) }
            #expect(closed && Self.responses(reply).map(\.status) == [200, 400], "\(String(decoding: reply, as: UTF8.self))")
        }
    }

    /// Ingestion requests keep their connection from counting as idle, and once they stop the
    /// connection is closed after the idle timeout, as the router's requests do.
    @Test func ingestionRequestsKeepTheirConnectionUntilItIsIdle() async throws {
        let fixture = try NodeFixture(idleTimeout: .seconds(1))
        try await fixture.test { client in
            let port = try #require(client.port)
            let posts = (0..<4).map { Array(Self.post("e\($0)").utf8) }
            // 1.8 s of requests 0.6 s apart on a connection idle after 1 s.
            let (reply, closed) = try await onOwnThread { try exchange(port: port, posts, pause: 0.6, timeout: 120) }
            #expect(Self.responses(reply).map(\.status) == [200, 200, 200, 200])
            #expect(closed, "closed once idle")
        }
    }
}
