import HTTPTypes
import Hummingbird
import NIOHTTP1
import PullSketchCore
import PullSketchEvents

/// Event ingestion: distribution notifications and direct pull batches. A request that is not a
/// valid envelope gets a 4xx and changes nothing; inside a valid one, invalid events are dropped
/// (counted, logged) and the rest recorded — a non-2xx would make the registry retry the whole
/// envelope forever and hold up its queue. The one 5xx: while Redis cannot claim event ids, or the
/// catalog queue has no room, the envelope is deferred (503 with `Retry-After`), changing nothing,
/// so its redelivery is counted once and no catalog change is lost.
extension PullSketchNode {
    /// The two ingestion endpoints: what each accepts and how its body is read.
    enum IngestionRoute: CaseIterable, Sendable {
        /// `POST /notifications`: a distribution notification envelope.
        case notifications
        /// `POST /api/v1/pulls`: `{"pulls": [{"repository", "tag"?, "digest"?, "method", "time"?, "id"?}]}`
        /// for registries that report pulls themselves.
        case pulls

        /// Distribution's two event media types, and plain JSON, as a relay or a replay with `curl`
        /// sends the same envelope.
        static let notificationContentTypes: Set<String> = [
            "application/vnd.docker.distribution.events.v1+json",
            "application/vnd.docker.distribution.events.v2+json",
            "application/json",
        ]

        var contentTypes: Set<String> {
            switch self {
            case .notifications: Self.notificationContentTypes
            case .pulls: ["application/json"]
            }
        }

        /// The router's path of the route, as request metrics label it.
        var path: String {
            switch self {
            case .notifications: "/notifications"
            case .pulls: "/api/v1/pulls"
            }
        }

        /// The route of a request target's path (its query left out).
        init?(path: Substring) {
            guard let route = Self.allCases.first(where: { $0.path == path }) else { return nil }
            self = route
        }
    }

    /// What became of an envelope's events.
    struct IngestionSummary: Encodable {
        var accepted = 0
        var duplicates = 0
        var ignored = 0
        var dropped = 0
        /// Why, for the first `keptReasons` dropped events, so a sender can mend what it sends.
        var droppedReasons: [String] = []
        static let keptReasons = 3

        private enum CodingKeys: String, CodingKey {
            case accepted, duplicates, ignored, dropped
            case droppedReasons = "dropped_reasons"
        }

        /// 200 with the summary as JSON, keys sorted like every other body. Without dropped events
        /// written by hand, as one is sent per notification and `JSONEncoder` cost more than the
        /// rest of the answer; with them (names quoted from the sender) encoded.
        var answer: IngestionAnswer {
            guard droppedReasons.isEmpty else {
                let json = (try? JSONResponse.encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
                return IngestionAnswer(status: .ok, json: json)
            }
            return IngestionAnswer(
                status: .ok,
                json: #"{"accepted":\#(accepted),"dropped":\#(dropped),"duplicates":\#(duplicates),"ignored":\#(ignored)}"#
            )
        }
    }

    /// An ingestion request's answer, for Hummingbird's route and for `EventLoopIngestion` alike.
    struct IngestionAnswer: Sendable {
        var status: HTTPResponse.Status
        /// The body, JSON.
        var json: String
        /// `Retry-After` in seconds, for answers that ask the sender to deliver again.
        var retryAfter: String?

        /// `{"error": message}` with `status`.
        static func error(_ status: HTTPResponse.Status, _ message: String, retryAfter: String? = nil) -> Self {
            let json = (try? JSONResponse.encoder.encode(["error": message])).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
            return Self(status: status, json: json, retryAfter: retryAfter)
        }

        var response: Response {
            var headers: HTTPFields = [.contentType: "application/json"]
            headers[.retryAfter] = retryAfter
            return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(string: json)))
        }
    }

    /// A request's valid events, admitted but not yet applied: what is left once their ids are
    /// claimed (`complete`). Room for their catalog changes is reserved.
    struct AdmittedEvents: Sendable {
        fileprivate let events: [(id: String?, meaning: IngestedEvent)]
        fileprivate let summary: IngestionSummary
        fileprivate let reservedCatalogChanges: Int
        /// The fingerprints of the events' ids, in order, to claim.
        let fingerprints: [EventFingerprint]
    }

    enum Admission: Sendable {
        case answered(IngestionAnswer)
        case admitted(AdmittedEvents)
    }

    /// `route` through Hummingbird: what `EventLoopIngestion` does on the event loop, for the
    /// requests it leaves to the router (one that arrives while another on its connection is
    /// still being answered) and for tests that call the router directly.
    func receive(_ route: IngestionRoute, _ request: Request) async -> Response {
        let headers = request.headers
        if let refusal = refusal(route, authorization: onlyValue(of: .authorization, in: headers), contentType: onlyValue(of: .contentType, in: headers)) {
            return refusal.response
        }
        let body = try? await request.body.collect(upTo: configuration.maxBodyBytes)
        switch admit(route, body: body) {
        case .answered(let answer):
            return answer.response
        case .admitted(let events):
            let claims = if let eventClaims { await eventClaims.claim(events.fingerprints) } else { claimedHere(events.fingerprints) }
            return complete(events, claims: claims).response
        }
    }

    /// Reads the body of a request `refusal` let through (nil: larger than `max_body_bytes`): an
    /// answer now — a 4xx that changes nothing, or 503 when the catalog queue has no room for the
    /// events' changes — or the valid events, with invalid ones dropped (counted, logged). A
    /// non-2xx for one bad event would make the registry retry the whole envelope forever, so an
    /// envelope too large to read is dropped too.
    func admit(_ route: IngestionRoute, body: ByteBuffer?) -> Admission {
        guard let body else {
            guard route == .notifications else {
                return .answered(.error(.contentTooLarge, "body larger than \(configuration.maxBodyBytes) bytes"))
            }
            // Distribution sends one event per envelope, and only a client's user agent of most of
            // a megabyte (which the registry forwards, JSON-escaped) makes one this large.
            var summary = IngestionSummary()
            drop("envelope larger than \(configuration.maxBodyBytes) bytes, not read", &summary)
            return .answered(summary.answer)
        }
        var summary = IngestionSummary()
        var valid: [(id: String?, meaning: IngestedEvent)] = []
        switch route {
        case .notifications:
            guard let envelope = body.withUnsafeReadableBytes({ NotificationEnvelope(json: $0) }) else {
                return .answered(.error(.badRequest, "not a notification envelope: expected {\"events\": [...]}"))
            }
            for item in envelope.events {
                guard let event = item.event else {
                    drop("event is not an object of the expected shape", &summary)
                    continue
                }
                let meaning = event.ingested(ignoring: configuration.ignoredClients)
                if case .invalid(let reason) = meaning {
                    drop(reason, &summary)
                    continue
                }
                guard let id = event.id, !id.isEmpty else {
                    drop("event without id", &summary)
                    continue
                }
                valid.append((id, meaning))
            }
        case .pulls:
            guard let batch = body.withUnsafeReadableBytes({ DirectPulls(json: $0) }) else {
                return .answered(.error(
                    .badRequest, "expected {\"pulls\": [{\"repository\": ..., \"tag\" or \"digest\": ..., \"method\": \"GET\" or \"HEAD\"}]}"
                ))
            }
            for item in batch.pulls {
                guard let pull = item.pull else {
                    drop("pull is not an object of the expected shape", &summary)
                    continue
                }
                let meaning = pull.ingested(receivedAt: clock.now(), ignoring: configuration.ignoredClients)
                if case .invalid(let reason) = meaning {
                    drop(reason, &summary)
                    continue
                }
                valid.append((pull.id, meaning))
            }
        }
        let catalogChanges = valid.count { if case .catalog = $0.meaning { true } else { false } }
        guard catalogUpdates.reserve(catalogChanges) else {
            return .answered(deferred(valid.count, "the catalog queue is full: deliver again later"))
        }
        let fingerprints = valid.compactMap { $0.id.map(EventFingerprint.init) }
        return .admitted(AdmittedEvents(events: valid, summary: summary, reservedCatalogChanges: catalogChanges, fingerprints: fingerprints))
    }

    /// Per fingerprint, its claim in this node's own memory: when claims in Redis are off.
    func claimedHere(_ fingerprints: [EventFingerprint]) -> ClaimReply {
        .answered(fingerprints.map { recentIDs.insert($0) ? .first : .repeated })
    }

    /// Applies each admitted event whose id was claimed first and each without an id, and gives
    /// back the catalog room not used. When Redis refused some claims, applies only the events it
    /// claimed and answers 503: their redelivery is a duplicate, the refused ones and those without
    /// an id count then. Claims not sent apply nothing and answer 503: the registry delivers the
    /// envelope again. Claims whose answer was lost answer 503 too, and go to `LostClaims`: the
    /// events Redis turns out to have claimed for this request count then (those without an id wait
    /// for the redelivery), and the catalog room is held until they do. Must run once for every
    /// admission, whatever became of its request: claimed ids not applied would be lost.
    func complete(_ admitted: AdmittedEvents, claims: ClaimReply) -> IngestionAnswer {
        switch claims {
        case .notSent:
            catalogUpdates.enqueue([], reserved: admitted.reservedCatalogChanges)
            return deferred(admitted.events.count, "redis is unavailable, so event ids cannot be claimed: deliver again later")
        case .lost(let token):
            lostClaims?.askAgain(admitted.fingerprints, token: token) { outcomes in
                _ = apply(admitted, claims: outcomes, withoutID: .refused)
            }
            return deferred(admitted.events.count, "redis did not answer the event-id claims: deliver again later (what it claimed counts once it answers)")
        case .answered(let outcomes):
            let refused = outcomes.count { $0 == .refused }
            // Without an id, an event counts only in a request counted whole: its redelivery counts it again.
            let (summary, waiting) = apply(admitted, claims: outcomes, withoutID: refused == 0 ? .first : .refused)
            guard refused == 0 else {
                return deferred(waiting, "redis refused to claim \(refused) event ids: deliver again later (the events it claimed are counted)")
            }
            return summary.answer
        }
    }

    /// Applies each admitted event whose claim (`claims`, per fingerprint) is first, events without
    /// an id as `withoutID` says, and enqueues their catalog changes in the room reserved; returns
    /// the summary and how many events wait for the next delivery.
    private func apply(_ admitted: AdmittedEvents, claims: [ClaimOutcome], withoutID: ClaimOutcome) -> (IngestionSummary, waiting: Int) {
        var changes: [CatalogChange] = []
        defer { catalogUpdates.enqueue(changes, reserved: admitted.reservedCatalogChanges) }
        var summary = admitted.summary
        var waiting = 0
        var next = 0
        for (id, meaning) in admitted.events {
            let claim: ClaimOutcome = if id != nil { claims[next] } else { withoutID }
            if id != nil { next += 1 }
            switch claim {
            case .first:
                apply(meaning, &summary, catalog: &changes)
            case .repeated:
                summary.duplicates += 1
                metrics.eventsDuplicate.increment()
            case .refused:
                waiting += 1
            }
        }
        return (summary, waiting)
    }

    private func deferred(_ events: Int, _ reason: String) -> IngestionAnswer {
        metrics.eventsDeferred.increment(by: Int64(events))
        return .error(.serviceUnavailable, reason, retryAfter: "5")
    }

    /// The event with its time inside `[now − max_event_delay, now]`, now by the node's clock (set
    /// by Redis's); a moved time is counted.
    private func clampedTime(_ event: IngestedEvent) -> IngestedEvent {
        let (clamped, moved) = event.clampingTime(receivedAt: clock.now(), maximumDelay: configuration.maxEventDelay)
        if moved { metrics.eventsClamped.increment() }
        return clamped
    }

    /// 401 without the webhook secret, 415 for another content type; nil when the request may go
    /// on. Checked before the body is read, given the request's `Authorization` and `Content-Type`
    /// (nil when it has none, or several).
    func refusal(_ route: IngestionRoute, authorization: String?, contentType: String?) -> IngestionAnswer? {
        guard let secret = configuration.webhookSecret, let presented = bearerToken(authorization: authorization),
            constantTimeEqual(presented, secret)
        else {
            return .error(.unauthorized, "missing or wrong bearer secret")
        }
        let contentTypes = route.contentTypes
        let mediaType = contentType.map { lowercasedASCII(trimmingSpaces($0.utf8.prefix { $0 != UInt8(ascii: ";") })) }
        guard let mediaType, contentTypes.contains(mediaType) else {
            return .error(.unsupportedMediaType, "content type must be one of \(contentTypes.sorted().joined(separator: ", "))")
        }
        return nil
    }

    /// Records an event that passed validation and de-duplication, its time clamped first; a
    /// catalog change is collected for the catalog queue.
    private func apply(_ meaning: IngestedEvent, _ summary: inout IngestionSummary, catalog: inout [CatalogChange]) {
        switch clampedTime(meaning) {
        case .pull(let event):
            tracker.record(event)
            summary.accepted += 1
            metrics.eventsAccepted.increment()
        case .catalog(let change):
            catalog.append(change)
            summary.accepted += 1
            metrics.eventsAccepted.increment()
        case .ignored:
            summary.ignored += 1
            metrics.eventsIgnored.increment()
        case .invalid(let reason):
            drop(reason, &summary)
        }
    }

    private func drop(_ reason: String, _ summary: inout IngestionSummary) {
        summary.dropped += 1
        // At most 256 characters each: a reason quotes what the sender sent.
        if summary.droppedReasons.count < IngestionSummary.keptReasons { summary.droppedReasons.append(String(reason.prefix(256))) }
        metrics.eventsDropped.increment()
        logger.warning("dropped an invalid event", metadata: ["reason": "\(reason)"])
    }
}

/// The token of an `Authorization: Bearer <token>` header. Read on every request, so by bytes:
/// Foundation's case folding and character sets, and `Character`s, cost more than the rest of the check.
func bearerToken(_ headers: HTTPFields) -> String? {
    bearerToken(authorization: onlyValue(of: .authorization, in: headers))
}

/// The token of an `Authorization` value `Bearer <token>`; nil for none or another scheme.
func bearerToken(authorization: String?) -> String? {
    guard let authorization, lowercasedASCII(authorization.utf8.prefix(7)) == "bearer " else { return nil }
    return String(decoding: trimmingSpaces(authorization.utf8.dropFirst(7)), as: UTF8.self)
}

/// The value of the field `name` when the request has exactly one; nil when it has none or several
/// (which `HTTPFields`' subscript would join with commas, a value no check here accepts). One pass
/// over the fields, with no joined copy.
func onlyValue(of name: HTTPField.Name, in fields: HTTPFields) -> String? {
    var found: String?
    for field in fields where field.name == name {
        guard found == nil else { return nil }
        found = field.value
    }
    return found
}

/// `onlyValue(of:in:)` for a head NIO decoded, `name` in any case.
func onlyValue(of name: String, in headers: HTTPHeaders) -> String? {
    let values = headers[name]
    return values.count == 1 ? values[0] : nil
}

/// `bytes` without leading and trailing spaces and tabs (HTTP's optional whitespace).
func trimmingSpaces(_ bytes: Substring.UTF8View) -> Substring.UTF8View {
    let isSpace = { (byte: UInt8) in byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") }
    guard let first = bytes.firstIndex(where: { !isSpace($0) }), let last = bytes.lastIndex(where: { !isSpace($0) }) else {
        return bytes[bytes.startIndex..<bytes.startIndex]
    }
    return bytes[first...last]
}

/// `bytes` as text with ASCII letters lowercased; other bytes as they are.
func lowercasedASCII(_ bytes: Substring.UTF8View) -> String {
    String(decoding: bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
}

/// Compares secrets in time independent of where they differ.
func constantTimeEqual(_ lhs: String, _ rhs: String) -> Bool {
    let a = Array(lhs.utf8)
    let b = Array(rhs.utf8)
    var difference = UInt8(a.count == b.count ? 0 : 1)
    for index in 0..<max(a.count, b.count) {
        difference |= (index < a.count ? a[index] : 0) ^ (index < b.count ? b[index] : 0)
    }
    return difference == 0
}
