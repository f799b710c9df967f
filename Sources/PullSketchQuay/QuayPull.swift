public import PullSketchCore

/// One pull Quay reported over its pull-metrics Redis wire: the repository by Quay's id, which
/// reference was pulled and when. Names come later, from Quay's database (`QuayPullIntake`).
public struct QuayPull: Hashable, Sendable {
    public enum Reference: Hashable, Sendable {
        /// A pull by tag, and the digest of the manifest Quay served.
        case tag(TagName, served: Digest)
        case digest(Digest)
    }

    public var repositoryID: Int64
    public var reference: Reference
    /// Pulls this report stands for: 1 for every Quay release.
    public var count: Int
    public var time: Timestamp

    public init(repositoryID: Int64, reference: Reference, count: Int = 1, time: Timestamp) {
        self.repositoryID = repositoryID
        self.reference = reference
        self.count = count
        self.time = time
    }

    /// The pull as the tracker records it. Quay does not say whether it answered a GET or a HEAD,
    /// so it is a GET: run such a deployment with the `quay` counting rule.
    public func event(in repository: RepositoryName) -> PullEvent {
        switch reference {
        case .tag(let tag, let served):
            PullEvent(repository: repository, reference: .tag(tag), method: .get, servedDigest: served, time: time)
        case .digest(let digest):
            PullEvent(repository: repository, reference: .digest(digest), method: .get, time: time)
        }
    }
}

/// Quay's pull-metrics hash keys: `pull_events:repo:<repository id>:tag:<tag>:<digest>` for a
/// pull by tag, `pull_events:repo:<repository id>:digest:<digest>` for a pull by digest. A tag
/// never holds `:`, a digest always does, so the key splits without ambiguity.
enum QuayPullKey {
    static let prefix = Array("pull_events:".utf8)
    private static let repositoryPrefix = Array("pull_events:repo:".utf8)

    /// Whether `key` is in Quay's pull-metrics key space at all.
    static func isPullKey(_ key: [UInt8]) -> Bool {
        key.starts(with: prefix)
    }

    /// The repository id and reference a pull key names.
    static func parse(_ key: [UInt8]) throws(QuayInputError) -> (repositoryID: Int64, reference: QuayPull.Reference) {
        guard key.starts(with: repositoryPrefix), let text = String(validating: key[repositoryPrefix.count...], as: UTF8.self) else {
            throw .malformedKey
        }
        let parts = text.split(separator: ":", maxSplits: 2, omittingEmptySubsequences: false)
        guard parts.count == 3, let id = Int64(parts[0]), id > 0, parts[0].allSatisfy(\.isASCII) else { throw .malformedKey }
        do {
            switch parts[1] {
            case "tag":
                let rest = parts[2].split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                guard rest.count == 2 else { throw QuayInputError.malformedKey }
                return (id, .tag(try TagName(String(rest[0])), served: try Digest(String(rest[1]))))
            case "digest":
                return (id, .digest(try Digest(String(parts[2]))))
            default:
                throw QuayInputError.malformedKey
            }
        } catch let error as QuayInputError {
            throw error
        } catch {
            throw .invalidName
        }
    }
}

/// Why a command about a pull was refused; each is a label of
/// `pullsketch_quay_commands_refused_total`.
public enum QuayInputError: String, Error, Hashable, Sendable, CaseIterable {
    /// A `pull_events:` key that is not one of Quay's two shapes.
    case malformedKey = "malformed_key"
    /// A tag or digest that is not a valid name.
    case invalidName = "invalid_name"
    /// A pull count increment outside 1...1,000.
    case invalidIncrement = "invalid_increment"
    /// A key outside `pull_events:` or a script PullSketch does not recognise.
    case notAPull = "not_a_pull"

    var message: String {
        switch self {
        case .malformedKey: "ERR not a Quay pull_events key (pull_events:repo:<id>:tag:<tag>:<digest> or pull_events:repo:<id>:digest:<digest>)"
        case .invalidName: "ERR invalid tag or digest in pull_events key"
        case .invalidIncrement: "ERR pull_count increment must be 1 to 1000"
        case .notAPull: "ERR PullSketch accepts only Quay's pull writes: one pull_events key per command"
        }
    }
}
