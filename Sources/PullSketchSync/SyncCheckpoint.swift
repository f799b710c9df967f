public import Foundation

/// Where a catalog sync got to, kept in a file so a run that stopped resumes there:
/// the source it reads, the last position it finished (a repository name, a tag id) and, for a
/// registry, the address of the page that name was on (its token, where the registry pages by
/// tokens of its own).
public struct SyncCheckpoint: Codable, Hashable, Sendable {
    public var source: String
    public var position: String?
    public var page: String?

    public init(source: String, position: String? = nil, page: String? = nil) {
        self.source = source
        self.position = position
        self.page = page
    }

    /// The checkpoint in `file` for `source`; a fresh one when the file is missing or belongs to
    /// another source.
    public static func load(_ file: URL?, source: String) throws -> SyncCheckpoint {
        guard let file, let data = try? Data(contentsOf: file) else { return SyncCheckpoint(source: source) }
        let stored: SyncCheckpoint
        do {
            stored = try JSONDecoder().decode(SyncCheckpoint.self, from: data)
        } catch {
            throw SyncError("\(file.path) is not a PullSketch checkpoint: \(error)")
        }
        return stored.source == source ? stored : SyncCheckpoint(source: source)
    }

    /// Writes the checkpoint atomically (a crash leaves the old one or the new one).
    public func save(_ file: URL?) throws {
        guard let file else { return }
        try JSONEncoder().encode(self).write(to: file, options: .atomic)
    }
}

public struct SyncError: Error, CustomStringConvertible {
    public let description: String

    public init(_ description: String) {
        self.description = description
    }
}

/// How far a sync got: what it wrote, what it skipped, and how fast.
public struct SyncProgress: Sendable {
    public var repositories = 0
    public var tags = 0
    /// Names the source holds that are not valid OCI names, so not recorded.
    public var skipped = 0
    public let started = ContinuousClock.now

    public init() {}

    public var tagsPerSecond: Double {
        let elapsed = ContinuousClock.now - started
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        return seconds > 0 ? Double(tags) / seconds : 0
    }

    /// Repositories are counted by the registry sync, which walks them one by one.
    public var line: String {
        (repositories > 0 ? "\(repositories) repositories, " : "") + "\(tags) tags, \(skipped) skipped, \(Int(tagsPerSecond)) tags/s"
    }
}
