/// How a manifest request named its manifest.
public enum ManifestReference: Hashable, Sendable {
    case tag(TagName)
    case digest(Digest)
}

/// The HTTP method of a manifest request. Only GET and HEAD can be pulls.
public enum ManifestRequestMethod: String, Hashable, Sendable {
    case get = "GET"
    case head = "HEAD"
}

/// One successful (2xx) manifest request, already validated. Blob, referrers and catalog requests,
/// 304s and errors are never pull events (docs/design.md).
public struct PullEvent: Hashable, Sendable {
    public var repository: RepositoryName
    public var reference: ManifestReference
    public var method: ManifestRequestMethod
    /// The digest of the manifest the registry served, when known.
    public var servedDigest: Digest?
    public var time: Timestamp

    public init(
        repository: RepositoryName,
        reference: ManifestReference,
        method: ManifestRequestMethod,
        servedDigest: Digest? = nil,
        time: Timestamp
    ) {
        self.repository = repository
        self.reference = reference
        self.method = method
        if case .digest(let digest) = reference {
            self.servedDigest = digest
        } else {
            self.servedDigest = servedDigest
        }
        self.time = time
    }
}
