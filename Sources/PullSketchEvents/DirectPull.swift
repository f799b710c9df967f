public import PullSketchCore

/// The body of `POST /api/v1/pulls`; each pull decodes on its own.
public struct DirectPulls: Decodable, Sendable {
    public var pulls: [LenientPull]

    public struct LenientPull: Decodable, Sendable {
        public var pull: DirectPull?

        public init(from decoder: any Decoder) {
            pull = try? DirectPull(from: decoder)
        }
    }
}

/// One pull a registry reports itself (`POST /api/v1/pulls`, replay files).
public struct DirectPull: Decodable, Sendable {
    public var id: String?
    public var repository: String
    public var tag: String?
    public var digest: String?
    public var method: String
    public var time: String?

    /// A pull names a tag, a digest or both (a tag with the digest served); time defaults to now.
    public func ingested(receivedAt now: Timestamp) -> IngestedEvent {
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
