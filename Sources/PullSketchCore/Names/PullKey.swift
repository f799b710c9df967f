/// What PullSketch counts: a tag (repository, tag) or a manifest (repository, digest). Made of
/// validated names, each hashed once when it was validated, so the key's `KeyHash` never touches
/// a string again; the same value travels from `record()` through windows, Redis fields and
/// sealed batches to the store.
public struct PullKey: Hashable, Sendable, CustomStringConvertible {
    /// The tag or the manifest a key names.
    public enum Reference: Hashable, Sendable {
        case tag(TagName)
        case manifest(Digest)
    }

    public let repository: RepositoryName
    public let reference: Reference

    public init(_ repository: RepositoryName, _ reference: Reference) {
        self.repository = repository
        self.reference = reference
    }

    /// Validates text read from outside (a Redis field, a replay) into a key.
    public init(kind: KeyKind, repository: String, reference: String) throws(ValidationError) {
        let repository = try RepositoryName(repository)
        switch kind {
        case .tag: self.init(repository, .tag(try TagName(reference)))
        case .manifest: self.init(repository, .manifest(try Digest(reference)))
        }
    }

    public var kind: KeyKind {
        switch reference {
        case .tag: .tag
        case .manifest: .manifest
        }
    }

    /// The tag name or the digest.
    public var name: String {
        switch reference {
        case .tag(let tag): tag.value
        case .manifest(let digest): digest.value
        }
    }

    /// The key's hash for a sketch seeded with `seed`, from the names' stored hashes.
    @inline(__always)
    public func hash(seed: UInt64) -> KeyHash {
        let referenceHash = switch reference {
        case .tag(let tag): tag.nameHash
        case .manifest(let digest): digest.nameHash
        }
        return KeyHash(kind: kind, repositoryHash: repository.nameHash, referenceHash: referenceHash, seed: seed)
    }

    public var description: String { "\(kind == .tag ? "tag" : "manifest") \(repository.value) \(name)" }
}
