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
        var result: [CounterUpdate] = []
        forEachUpdate(of: event) { kind, reference, counter in
            result.append(CounterUpdate(kind: kind, reference: reference, counter: counter))
        }
        return result
    }

    /// Calls `body` for every counter update of `event`, without allocating: the tracker's hot path.
    public func forEachUpdate(
        of event: PullEvent,
        _ body: (KeyKind, String, PullCounter) -> Void
    ) {
        let counter: PullCounter = event.method == .get ? .fetch : .check
        switch event.reference {
        case .tag(let tag):
            body(.tag, tag.value, counter)
            if let digest = event.servedDigest, counter == .fetch || self == .quayAuditLog {
                body(.manifest, digest.value, counter)
            }
        case .digest(let digest):
            body(.manifest, digest.value, counter)
        }
    }

    /// The pull count of a key from its raw counters.
    public func pullCount(kind: KeyKind, fetches: UInt64, checks: UInt64) -> UInt64 {
        switch (self, kind) {
        case (.resolutions, .manifest): fetches
        default: fetches &+ checks
        }
    }
}
