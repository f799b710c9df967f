import PullSketchCore

/// The keys an accuracy run can touch, numbered densely per kind: the truth, the stored rows and
/// the catalog are arrays over these numbers.
enum KeySpace {
    /// `SyntheticWorkload`'s names: tag `t<k>` and its manifest both have number k, repository k mod R.
    case synthetic(SyntheticWorkload)
    /// Names read from a replay, numbered in the order first seen.
    case named(NamedKeys)

    var repositoryCount: Int {
        switch self {
        case .synthetic(let workload): workload.repositories
        case .named(let keys): keys.repositories.count
        }
    }

    func count(_ kind: KeyKind) -> Int {
        switch self {
        case .synthetic(let workload): workload.catalogKeys
        case .named(let keys): keys.keys[kind.slot].count
        }
    }

    func repositoryName(_ repository: Int) -> String {
        switch self {
        case .synthetic: SyntheticWorkload.repositoryName(repository)
        case .named(let keys): keys.repositories[repository]
        }
    }

    func repositoryIndex(_ name: String) -> Int? {
        switch self {
        case .synthetic(let workload):
            guard name.hasPrefix(SyntheticWorkload.repositoryPrefix), let index = Int(name.dropFirst(SyntheticWorkload.repositoryPrefix.count)),
                index < workload.repositories
            else { return nil }
            return index
        case .named(let keys):
            return keys.repositoryIndices[name]
        }
    }

    /// The number of a key, nil if it is not in the space.
    func index(_ kind: KeyKind, repository: String, reference: String) -> Int? {
        switch self {
        case .synthetic(let workload):
            let key = kind == .tag ? SyntheticWorkload.key(ofTag: reference) : SyntheticWorkload.key(ofDigest: reference)
            guard let key, key < workload.catalogKeys, repositoryIndex(repository) == workload.repository(of: key) else { return nil }
            return key
        case .named(let keys):
            guard let repository = keys.repositoryIndices[repository] else { return nil }
            return keys.indices[kind.slot][NamedKey(repository: repository, reference: reference)]
        }
    }

    /// The number of a key, nil if it is not in the space.
    func index(_ key: PullKey) -> Int? {
        index(key.kind, repository: key.repository.value, reference: key.name)
    }

    /// Calls `body(number, repository, reference)` for every key of `kind`.
    func forEachKey(_ kind: KeyKind, _ body: (Int, Int, String) -> Void) {
        switch self {
        case .synthetic(let workload):
            for key in 0..<workload.catalogKeys {
                body(key, workload.repository(of: key), kind == .tag ? SyntheticWorkload.tagName(key) : SyntheticWorkload.digest(key))
            }
        case .named(let keys):
            for (index, key) in keys.keys[kind.slot].enumerated() { body(index, key.repository, key.reference) }
        }
    }
}

/// A tag or manifest by repository number and reference (tag name or digest).
struct NamedKey: Hashable {
    var repository: Int
    var reference: String
}

/// Keys by name, numbered as they are inserted.
struct NamedKeys {
    private(set) var repositories: [String] = []
    private(set) var repositoryIndices: [String: Int] = [:]
    /// Per kind slot: each number's key, and each key's number.
    private(set) var keys: [[NamedKey]] = [[], []]
    private(set) var indices: [[NamedKey: Int]] = [[:], [:]]

    mutating func insert(_ kind: KeyKind, repository name: String, reference: String) {
        let repository: Int
        if let known = repositoryIndices[name] {
            repository = known
        } else {
            repository = repositories.count
            repositories.append(name)
            repositoryIndices[name] = repository
        }
        let key = NamedKey(repository: repository, reference: reference)
        guard indices[kind.slot][key] == nil else { return }
        indices[kind.slot][key] = keys[kind.slot].count
        keys[kind.slot].append(key)
    }
}

extension KeyKind {
    /// 0 for tags, 1 for manifests: the index of a kind in per-kind arrays.
    var slot: Int { self == .tag ? 0 : 1 }
}
