import HTTPTypes
import Hummingbird
import PullSketchCore
import PullSketchEvents

/// Event ingestion: distribution notifications and direct pull batches. A request that is not a
/// valid envelope gets a 4xx and changes nothing; inside a valid one, invalid events are dropped
/// (counted, logged) and the rest recorded — a non-2xx would make the registry retry the whole
/// envelope forever and hold up its queue. The one 5xx: while Redis cannot claim event ids, or the
/// catalog queue has no room, the envelope is deferred (503 with `Retry-After`), changing nothing,
/// so its redelivery is counted once and no catalog change is lost.
extension PullSketchNode {
    static let notificationContentTypes: Set<String> = [
        "application/vnd.docker.distribution.events.v1+json",
        "application/vnd.docker.distribution.events.v2+json",
    ]

    /// What became of an envelope's events.
    struct IngestionSummary {
        var accepted = 0
        var duplicates = 0
        var ignored = 0
        var dropped = 0

        /// 200 with the summary as JSON, keys sorted like every other body; written by hand, as
        /// one is sent per notification and `JSONEncoder` cost more than the rest of the answer.
        var response: Response {
            let json = #"{"accepted":\#(accepted),"dropped":\#(dropped),"duplicates":\#(duplicates),"ignored":\#(ignored)}"#
            return Response(status: .ok, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(string: json)))
        }
    }

    func receiveNotifications(_ request: Request) async throws -> Response {
        if let refusal = refuseIngestion(request, contentTypes: Self.notificationContentTypes) { return refusal }
        guard let body = await boundedBody(request) else { return tooLarge }
        guard let envelope = body.withUnsafeReadableBytes({ NotificationEnvelope(json: $0) }) else {
            return JSONResponse.error(.badRequest, "not a notification envelope: expected {\"events\": [...]}")
        }
        var summary = IngestionSummary()
        var valid: [(id: String?, meaning: IngestedEvent)] = []
        for item in envelope.events {
            guard let event = item.event else {
                drop("event is not an object of the expected shape", &summary)
                continue
            }
            let meaning = event.ingested()
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
        if let refusal = await applyOnce(valid, &summary) { return refusal }
        return summary.response
    }

    /// `POST /api/v1/pulls`: `{"pulls": [{"repository", "tag"?, "digest"?, "method", "time"?, "id"?}]}`
    /// for registries that report pulls themselves.
    func receivePulls(_ request: Request) async throws -> Response {
        if let refusal = refuseIngestion(request, contentTypes: ["application/json"]) { return refusal }
        guard let body = await boundedBody(request) else { return tooLarge }
        guard let batch = body.withUnsafeReadableBytes({ DirectPulls(json: $0) }) else {
            return JSONResponse.error(.badRequest, "expected {\"pulls\": [{\"repository\": ..., \"tag\" or \"digest\": ..., \"method\": \"GET\" or \"HEAD\"}]}")
        }
        var summary = IngestionSummary()
        var valid: [(id: String?, meaning: IngestedEvent)] = []
        for item in batch.pulls {
            guard let pull = item.pull else {
                drop("pull is not an object of the expected shape", &summary)
                continue
            }
            let meaning = pull.ingested(receivedAt: .now())
            if case .invalid(let reason) = meaning {
                drop(reason, &summary)
                continue
            }
            valid.append((pull.id, meaning))
        }
        if let refusal = await applyOnce(valid, &summary) { return refusal }
        return summary.response
    }

    /// Applies each valid event whose id was not seen within the horizon — claimed in Redis for
    /// every node (`EventClaims`), or remembered by this node when claims are off; events without an
    /// id are applied as they come. Answers 503, applying nothing, when the catalog queue has no room
    /// for the envelope's changes or Redis cannot claim the ids: the registry delivers it again.
    private func applyOnce(_ events: [(id: String?, meaning: IngestedEvent)], _ summary: inout IngestionSummary) async -> Response? {
        let catalogEvents = events.count { if case .catalog = $0.meaning { true } else { false } }
        guard catalogUpdates.reserve(catalogEvents) else {
            return deferred(events.count, "the catalog queue is full: deliver again later")
        }
        var changes: [CatalogChange] = []
        defer { catalogUpdates.enqueue(changes, reserved: catalogEvents) }
        let fingerprints = events.compactMap { $0.id.map(EventFingerprint.init) }
        let firstSeen: [Bool]
        if let eventClaims {
            guard let claimed = await eventClaims.claim(fingerprints) else {
                return deferred(events.count, "redis is unavailable, so event ids cannot be claimed: deliver again later")
            }
            firstSeen = claimed
        } else {
            firstSeen = fingerprints.map { recentIDs.insert($0) }
        }
        var next = 0
        for (id, meaning) in events {
            if id != nil {
                defer { next += 1 }
                guard firstSeen[next] else {
                    summary.duplicates += 1
                    metrics.eventsDuplicate.increment()
                    continue
                }
            }
            apply(meaning, &summary, catalog: &changes)
        }
        return nil
    }

    private func deferred(_ events: Int, _ reason: String) -> Response {
        metrics.eventsDeferred.increment(by: Int64(events))
        var response = JSONResponse.error(.serviceUnavailable, reason)
        response.headers[.retryAfter] = "5"
        return response
    }

    /// The event with its time inside `[now − max_event_delay, now]`; a moved time is counted.
    private func clampedTime(_ event: IngestedEvent) -> IngestedEvent {
        let (clamped, moved) = event.clampingTime(receivedAt: .now(), maximumDelay: configuration.maxEventDelay)
        if moved { metrics.eventsClamped.increment() }
        return clamped
    }

    /// The request body, or nil when it is larger than `max_body_bytes`.
    private func boundedBody(_ request: Request) async -> ByteBuffer? {
        try? await request.body.collect(upTo: configuration.maxBodyBytes)
    }

    private var tooLarge: Response {
        JSONResponse.error(.contentTooLarge, "body larger than \(configuration.maxBodyBytes) bytes")
    }

    /// 401 without the webhook secret, 415 for another content type; nil when the request may go on.
    private func refuseIngestion(_ request: Request, contentTypes: Set<String>) -> Response? {
        guard let secret = configuration.webhookSecret, let presented = bearerToken(request),
            constantTimeEqual(presented, secret)
        else {
            return JSONResponse.error(.unauthorized, "missing or wrong bearer secret")
        }
        let contentType = onlyValue(of: .contentType, in: request.headers).map { lowercasedASCII(trimmingSpaces($0.utf8.prefix { $0 != UInt8(ascii: ";") })) }
        guard let contentType, contentTypes.contains(contentType) else {
            return JSONResponse.error(.unsupportedMediaType, "content type must be one of \(contentTypes.sorted().joined(separator: ", "))")
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
        metrics.eventsDropped.increment()
        logger.warning("dropped an invalid event", metadata: ["reason": "\(reason)"])
    }
}

/// The token of an `Authorization: Bearer <token>` header. Read on every request, so by bytes:
/// Foundation's case folding and character sets, and `Character`s, cost more than the rest of the check.
func bearerToken(_ request: Request) -> String? {
    guard let header = onlyValue(of: .authorization, in: request.headers), lowercasedASCII(header.utf8.prefix(7)) == "bearer " else {
        return nil
    }
    return String(decoding: trimmingSpaces(header.utf8.dropFirst(7)), as: UTF8.self)
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
