public import PullSketchCore

/// A distribution notification envelope (`{"events": [...]}`). Each event decodes on its own, so
/// one malformed event cannot make the envelope invalid.
///
/// Two readers give the same answers (the tests compare them): `init?(json:)` for the node and log
/// files, where it is the cost of every notification, and `Decodable` for replay files, whose
/// lines are envelopes or direct pulls.
public struct NotificationEnvelope: Decodable, Equatable, Sendable {
    public var events: [LenientEvent]

    public struct LenientEvent: Decodable, Equatable, Sendable {
        public var event: NotificationEvent?

        public init(from decoder: any Decoder) {
            event = try? NotificationEvent(from: decoder)
        }

        init(event: NotificationEvent?) {
            self.event = event
        }
    }
}

extension NotificationEnvelope {
    /// The envelope in `json`, as `JSONDecoder` reads it; nil when `json` is not JSON or not
    /// `{"events": [...]}`. An event of another shape is nil, its envelope still read.
    public init?(json: UnsafeRawBufferPointer) {
        guard let events = JSONScanner.lenientArray(in: json, under: "events", NotificationEvent.init(scanning:)) else { return nil }
        self.init(events: events.map(LenientEvent.init(event:)))
    }
}

/// The fields of a distribution notification event that PullSketch reads.
public struct NotificationEvent: Decodable, Equatable, Sendable {
    public var id: String?
    public var timestamp: String?
    public var action: String?
    public var target: Target?
    public var request: Request?

    public struct Target: Decodable, Equatable, Sendable {
        public var mediaType: String?
        public var digest: String?
        public var repository: String?
        public var tag: String?
        /// What the manifest lists (`events.includereferences: true`): an index's platform
        /// manifests, an image's config and layers.
        public var references: [Reference]?
    }

    public struct Reference: Decodable, Equatable, Sendable {
        public var mediaType: String?
        public var digest: String?
    }

    public struct Request: Decodable, Equatable, Sendable {
        public var method: String?
        public var useragent: String?
    }

    /// The user agent of `pullsketch catalog sync`: the `HEAD`s it sends to learn digests are
    /// not pulls.
    public static let catalogSyncUserAgent = "pullsketch-catalog-sync/1"
}

extension NotificationEvent {
    /// Reads an event object's fields as the synthesized `Decodable` does: each may be absent or
    /// `null`; one of another type makes the event another shape.
    init(scanning scanner: inout JSONScanner) throws(JSONScanner.Failure) {
        var event = NotificationEvent()
        try scanner.object { scanner, key throws(JSONScanner.Failure) in
            switch key {
            case "id": event.id = try scanner.optionalString()
            case "timestamp": event.timestamp = try scanner.optionalString()
            case "action": event.action = try scanner.optionalString()
            case "target": event.target = try scanner.null() ? nil : Target(scanning: &scanner)
            case "request": event.request = try scanner.null() ? nil : Request(scanning: &scanner)
            default: try scanner.skipValue()
            }
        }
        self = event
    }
}

extension NotificationEvent.Target {
    init(scanning scanner: inout JSONScanner) throws(JSONScanner.Failure) {
        var target = Self()
        try scanner.object { scanner, key throws(JSONScanner.Failure) in
            switch key {
            case "mediaType": target.mediaType = try scanner.optionalString()
            case "digest": target.digest = try scanner.optionalString()
            case "repository": target.repository = try scanner.optionalString()
            case "tag": target.tag = try scanner.optionalString()
            case "references":
                guard try !scanner.null() else { return target.references = nil }
                var references: [NotificationEvent.Reference] = []
                try scanner.array { scanner throws(JSONScanner.Failure) in
                    references.append(try NotificationEvent.Reference(scanning: &scanner))
                }
                target.references = references
            default: try scanner.skipValue()
            }
        }
        self = target
    }
}

extension NotificationEvent.Reference {
    init(scanning scanner: inout JSONScanner) throws(JSONScanner.Failure) {
        var reference = Self()
        try scanner.object { scanner, key throws(JSONScanner.Failure) in
            switch key {
            case "mediaType": reference.mediaType = try scanner.optionalString()
            case "digest": reference.digest = try scanner.optionalString()
            default: try scanner.skipValue()
            }
        }
        self = reference
    }
}

extension NotificationEvent.Request {
    init(scanning scanner: inout JSONScanner) throws(JSONScanner.Failure) {
        var request = Self()
        try scanner.object { scanner, key throws(JSONScanner.Failure) in
            switch key {
            case "method": request.method = try scanner.optionalString()
            case "useragent": request.useragent = try scanner.optionalString()
            default: try scanner.skipValue()
            }
        }
        self = request
    }
}

/// What an incoming event means for PullSketch.
public enum IngestedEvent: Equatable, Sendable {
    case pull(PullEvent)
    case catalog(CatalogChange)
    /// Valid but not PullSketch's business: blob pulls and pushes, mounts.
    case ignored
    case invalid(String)
}

/// A change to the catalog of known tags and manifests.
public enum CatalogChange: Hashable, Sendable {
    case pushTag(RepositoryName, TagName, Digest, Timestamp)
    case pushManifest(RepositoryName, Digest, Timestamp)
    /// An image index pushed (by tag or digest) with the platform manifests it lists.
    case pushIndex(RepositoryName, TagName?, Digest, children: [Digest], Timestamp)
    case deleteTag(RepositoryName, TagName, Timestamp)
    case deleteManifest(RepositoryName, Digest, Timestamp)
}

extension NotificationEvent {
    /// Manifest media types; any other target is a blob or something else.
    static let manifestMediaTypes: Set<String> = [
        "application/vnd.oci.image.manifest.v1+json",
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
        "application/vnd.docker.distribution.manifest.v1+json",
        "application/vnd.docker.distribution.manifest.v1+prettyjws",
    ]

    /// Media types of manifests that list other manifests (multi-platform images).
    public static let indexMediaTypes: Set<String> = [
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.list.v2+json",
    ]

    /// The valid manifest digests an index event's references name; empty for anything else.
    private var indexChildren: [Digest] {
        guard let target, target.mediaType.map(Self.indexMediaTypes.contains) == true else { return [] }
        return (target.references ?? []).compactMap { reference in
            guard reference.mediaType.map(Self.manifestMediaTypes.contains) ?? true else { return nil }
            return reference.digest.flatMap { try? Digest($0) }
        }
    }

    /// Validates the event and says what it means (docs/design.md); a pull by a client `clients`
    /// names is ignored.
    public func ingested(ignoring clients: IgnoredClients = .none) -> IngestedEvent {
        guard let action else { return .invalid("no action") }
        guard let timestamp, let time = RFC3339.parse(timestamp) else { return .invalid("no RFC 3339 timestamp") }
        let isManifest = target?.mediaType.map(Self.manifestMediaTypes.contains) ?? false
        switch action {
        case "mount":
            return .ignored
        case "pull" where !isManifest, "push" where !isManifest:
            return .ignored
        case "pull" where request?.useragent == Self.catalogSyncUserAgent || clients.ignores(userAgent: request?.useragent):
            return .ignored
        case "pull", "push", "delete":
            break
        default:
            return .invalid("unknown action '\(action)'")
        }
        guard let target, let repositoryText = target.repository, let repository = try? RepositoryName(repositoryText) else {
            return .invalid("invalid repository '\(target?.repository ?? "")'")
        }
        let tag: TagName?
        if let text = target.tag {
            guard let valid = try? TagName(text) else { return .invalid("invalid tag '\(text)'") }
            tag = valid
        } else {
            tag = nil
        }
        let digest: Digest?
        if let text = target.digest {
            guard let valid = try? Digest(text) else { return .invalid("invalid digest '\(text)'") }
            digest = valid
        } else {
            digest = nil
        }
        switch action {
        case "pull":
            guard let digest else { return .invalid("pull without digest") }
            guard let method = request?.method.flatMap(ManifestRequestMethod.init(rawValue:)) else {
                return .invalid("pull with method '\(request?.method ?? "")'")
            }
            let reference: ManifestReference = tag.map { .tag($0) } ?? .digest(digest)
            return .pull(PullEvent(repository: repository, reference: reference, method: method, servedDigest: digest, time: time))
        case "push":
            guard let digest else { return .invalid("push without digest") }
            let children = indexChildren
            if !children.isEmpty { return .catalog(.pushIndex(repository, tag, digest, children: children, time)) }
            return .catalog(tag.map { .pushTag(repository, $0, digest, time) } ?? .pushManifest(repository, digest, time))
        default:
            if let tag { return .catalog(.deleteTag(repository, tag, time)) }
            guard let digest else { return .invalid("delete without tag or digest") }
            return .catalog(.deleteManifest(repository, digest, time))
        }
    }
}

extension IngestedEvent {
    /// The event with its time clamped to `[received − maximumDelay, received]`, and whether the
    /// time had to move. Replays of history are not clamped; live events are.
    public func clampingTime(receivedAt received: Timestamp, maximumDelay: Duration) -> (event: IngestedEvent, clamped: Bool) {
        var clamped = false
        func clamp(_ time: Timestamp) -> Timestamp {
            let bounded = time.clamped(toArrival: received, maximumDelay: maximumDelay)
            clamped = clamped || bounded != time
            return bounded
        }
        let event: IngestedEvent
        switch self {
        case .pull(var pull):
            pull.time = clamp(pull.time)
            event = .pull(pull)
        case .catalog(.pushTag(let repository, let tag, let digest, let time)):
            event = .catalog(.pushTag(repository, tag, digest, clamp(time)))
        case .catalog(.pushManifest(let repository, let digest, let time)):
            event = .catalog(.pushManifest(repository, digest, clamp(time)))
        case .catalog(.pushIndex(let repository, let tag, let digest, let children, let time)):
            event = .catalog(.pushIndex(repository, tag, digest, children: children, clamp(time)))
        case .catalog(.deleteTag(let repository, let tag, let time)):
            event = .catalog(.deleteTag(repository, tag, clamp(time)))
        case .catalog(.deleteManifest(let repository, let digest, let time)):
            event = .catalog(.deleteManifest(repository, digest, clamp(time)))
        case .ignored, .invalid:
            event = self
        }
        return (event, clamped)
    }
}
