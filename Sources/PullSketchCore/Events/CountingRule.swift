/// Which key a request touches: a tag (repository, tag) or a manifest (repository, digest).
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

/// What one request adds to one key it resolved: its raw counters and its pulls under the rule in
/// force. All zero for a request that only marks the key used.
public struct KeyEffect: Hashable, Sendable {
    public var fetches: UInt64
    public var checks: UInt64
    /// 1 when the request counts as a pull of the key, else 0.
    public var pulls: UInt64

    public init(fetches: UInt64 = 0, checks: UInt64 = 0, pulls: UInt64 = 0) {
        self.fetches = fetches
        self.checks = checks
        self.pulls = pulls
    }
}

/// One key a request resolved, and what the request adds to it.
public struct KeyTouch: Hashable, Sendable {
    public var key: PullKey
    public var effect: KeyEffect

    public init(key: PullKey, effect: KeyEffect) {
        self.key = key
        self.effect = effect
    }
}

/// What a request does to the keys it resolves. The rule is applied once, where a pull is
/// recorded: the hot table and the tail sketch both receive the pulls it decides, so an exact count
/// and a tail estimate are about the same quantity, and nothing downstream knows the rule.
///
/// | request | tag | manifest (`.resolutions`) | manifest (`.quayAuditLog`) |
/// |---|---|---|---|
/// | GET by tag T, served D | T fetch, pull | D fetch, pull | D fetch, pull |
/// | HEAD by tag T, served D | T check, pull | D used only | D check, pull |
/// | GET by digest D | — | D fetch, pull | D fetch, pull |
/// | HEAD by digest D | — | D check, used only | D check, pull |
///
/// Every key a request resolves is *used* at the request's time, pull or not.
public enum CountingRule: String, Hashable, Sendable, CaseIterable {
    /// A tag's pulls are its fetches and checks (every time a client resolved the tag), a
    /// manifest's are its fetches. `docker pull` (GET by tag) and containerd (HEAD by tag, GET by
    /// digest) then give the same numbers: tag +1, manifest +1.
    case resolutions
    /// Quay's audit-log rule: a HEAD is a pull wherever a GET would be, for tags and manifests.
    case quayAuditLog = "quay"

    /// The keys one request resolves, tag first, with what it adds to each.
    public func touches(for event: PullEvent) -> [KeyTouch] {
        let repository = event.repository
        switch event.reference {
        case .tag(let tag):
            let tagTouch = KeyTouch(key: PullKey(repository, .tag(tag)), effect: effect(of: event.method, on: .tag, byTag: true))
            guard let digest = event.servedDigest else { return [tagTouch] }
            return [tagTouch, KeyTouch(key: PullKey(repository, .manifest(digest)), effect: effect(of: event.method, on: .manifest, byTag: true))]
        case .digest(let digest):
            return [KeyTouch(key: PullKey(repository, .manifest(digest)), effect: effect(of: event.method, on: .manifest, byTag: false))]
        }
    }

    /// What a request with `method` adds to a key of `kind`; `byTag` says whether the request
    /// named a tag (for a manifest key: the manifest the tag served).
    @inline(__always)
    public func effect(of method: ManifestRequestMethod, on kind: KeyKind, byTag: Bool) -> KeyEffect {
        if method == .get { return KeyEffect(fetches: 1, pulls: 1) }
        let isPull: UInt64 = kind == .tag || self == .quayAuditLog ? 1 : 0
        // A HEAD by tag transfers no manifest: under `.resolutions` it only marks the manifest used.
        let isCheck: UInt64 = kind == .manifest && byTag && self == .resolutions ? 0 : 1
        return KeyEffect(checks: isCheck, pulls: isPull)
    }
}
