public import PullSketchCore

/// The body of `POST /api/v1/pulls`; each pull decodes on its own. Read by `init?(json:)` on the
/// node and by `Decodable` in replay files, with the same answers (as for notification envelopes).
public struct DirectPulls: Decodable, Equatable, Sendable {
    public var pulls: [LenientPull]

    public struct LenientPull: Decodable, Equatable, Sendable {
        public var pull: DirectPull?

        public init(from decoder: any Decoder) {
            pull = try? DirectPull(from: decoder)
        }

        init(pull: DirectPull?) {
            self.pull = pull
        }
    }
}

extension DirectPulls {
    /// The pulls in `json`, as `JSONDecoder` reads them; nil when `json` is not JSON or not
    /// `{"pulls": [...]}`. A pull of another shape is nil, the others still read.
    public init?(json: UnsafeRawBufferPointer) {
        guard let pulls = JSONScanner.lenientArray(in: json, under: "pulls", DirectPull.init(scanning:)) else { return nil }
        self.init(pulls: pulls.map(LenientPull.init(pull:)))
    }
}

/// One pull a registry reports itself (`POST /api/v1/pulls`, replay files).
public struct DirectPull: Decodable, Equatable, Sendable {
    public var id: String?
    public var repository: String
    public var tag: String?
    public var digest: String?
    public var method: String
    public var time: String?
    /// The client's `User-Agent`, when the registry passes it on.
    public var userAgent: String?

    enum CodingKeys: String, CodingKey {
        case id, repository, tag, digest, method, time
        case userAgent = "user_agent"
    }

    /// A pull names a tag, a digest or both (a tag with the digest served); time defaults to now.
    /// A pull by a client `clients` names is ignored.
    public func ingested(receivedAt now: Timestamp, ignoring clients: IgnoredClients = .none) -> IngestedEvent {
        guard !clients.ignores(userAgent: userAgent) else { return .ignored }
        guard let repository = try? RepositoryName(repository) else { return .invalid("invalid repository '\(repository)'") }
        guard let method = ManifestRequestMethod(rawValue: method.uppercased()) else { return .invalid("method '\(method)' is not GET or HEAD") }
        let time: Timestamp
        if let text = self.time {
            guard let parsed = RFC3339.parse(text) else { return .invalid("time '\(text)' is not RFC 3339") }
            time = parsed
        } else {
            time = now
        }
        let digest: Digest?
        if let text = self.digest {
            guard let valid = try? Digest(text) else { return .invalid("invalid digest '\(text)'") }
            digest = valid
        } else {
            digest = nil
        }
        if let text = tag {
            guard let tag = try? TagName(text) else { return .invalid("invalid tag '\(text)'") }
            return .pull(PullEvent(repository: repository, reference: .tag(tag), method: method, servedDigest: digest, time: time))
        }
        guard let digest else { return .invalid("a pull needs a tag or a digest") }
        return .pull(PullEvent(repository: repository, reference: .digest(digest), method: method, time: time))
    }
}

extension DirectPull {
    /// Reads a pull object's fields as the synthesized `Decodable` does: `repository` and `method`
    /// must be strings, the others may be absent or `null`.
    init(scanning scanner: inout JSONScanner) throws(JSONScanner.Failure) {
        var id, repository, tag, digest, method, time, userAgent: String?
        try scanner.object { scanner, key throws(JSONScanner.Failure) in
            switch key {
            case "id": id = try scanner.optionalString()
            case "repository": repository = try scanner.optionalString()
            case "tag": tag = try scanner.optionalString()
            case "digest": digest = try scanner.optionalString()
            case "method": method = try scanner.optionalString()
            case "time": time = try scanner.optionalString()
            case "user_agent": userAgent = try scanner.optionalString()
            default: try scanner.skipValue()
            }
        }
        guard let repository, let method else { throw .mismatch }
        self.init(id: id, repository: repository, tag: tag, digest: digest, method: method, time: time, userAgent: userAgent)
    }
}
