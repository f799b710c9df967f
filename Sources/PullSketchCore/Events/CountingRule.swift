/// Which key a counter update touches: a tag (repository, tag) or a manifest (repository, digest).
public enum KeyKind: UInt8, Hashable, Sendable, CaseIterable {
    case tag = 1
    case manifest = 2
}

/// The two raw counters every key has.
public enum PullCounter: Hashable, Sendable {
    /// A GET of the manifest.
    case fetch
    /// A HEAD of the manifest: a client checking what the reference resolves to.
    case check
}

/// One counter increment that a pull event causes.
public struct CounterUpdate: Hashable, Sendable {
    public var kind: KeyKind
    /// The tag name for tag keys, the digest for manifest keys.
    public var reference: String
    public var counter: PullCounter

    public init(kind: KeyKind, reference: String, counter: PullCounter) {
        self.kind = kind
        self.reference = reference
        self.counter = counter
    }
}

/// Turns pull events into counter updates and raw counters into pull counts (DESIGN §1).
public enum CountingRule: String, Hashable, Sendable, CaseIterable {
    /// A tag's pull count is fetches + checks (every time a client resolved the tag), a manifest's
    /// is its fetches. `docker pull` (GET by tag) and containerd (HEAD by tag, GET by digest) then
    /// give the same numbers: tag +1, manifest +1.
    case resolutions
    /// Quay's audit-log rule: a HEAD counts as a pull wherever a GET would, for tags and manifests.
    case quayAuditLog = "quay"

    /// The counter updates of one event, in the order tag, manifest.
    public func updates(for event: PullEvent) -> [CounterUpdate] {
        let counter = Self.counter(for: event.method)
        switch event.reference {
        case .tag(let tag):
            let tagUpdate = CounterUpdate(kind: .tag, reference: tag.value, counter: counter)
            guard let digest = event.servedDigest, countsServedManifest(of: counter) else { return [tagUpdate] }
            return [tagUpdate, CounterUpdate(kind: .manifest, reference: digest.value, counter: counter)]
        case .digest(let digest):
            return [CounterUpdate(kind: .manifest, reference: digest.value, counter: counter)]
        }
    }

    /// GET fetches, HEAD checks.
    @inline(__always)
    static func counter(for method: ManifestRequestMethod) -> PullCounter {
        method == .get ? .fetch : .check
    }

    /// Whether a request by tag also counts for the manifest it served: a GET always does, a HEAD
    /// only under Quay's rule (a HEAD by tag transfers no manifest).
    @inline(__always)
    func countsServedManifest(of counter: PullCounter) -> Bool {
        counter == .fetch || self == .quayAuditLog
    }

    /// The pull count of a key from its raw counters.
    public func pullCount(kind: KeyKind, fetches: UInt64, checks: UInt64) -> UInt64 {
        switch (self, kind) {
        case (.resolutions, .manifest): fetches
        default: fetches &+ checks
        }
    }
}
