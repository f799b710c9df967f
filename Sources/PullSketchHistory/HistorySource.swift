public import PullSketchCore

/// Where past pulls come from, cut into numbered chunks of consecutive source positions (rows of
/// a table by id, lines of a file) that read the same on every run, so an import can tell which
/// chunks PostgreSQL already holds and never counts one twice.
public protocol HistorySource: Sendable {
    /// Names the source across runs: the importing node's id is made of it.
    var identity: String { get }
    /// Source positions per chunk.
    var chunkSize: Int { get }
    /// How many chunks the source has, when known before reading it (for a progress bar).
    var chunkCount: Int? { get }
    /// The pulls of chunk `index` (positions `index × chunkSize ..< (index + 1) × chunkSize`), or
    /// nil past the end of the source. Chunks are asked for in increasing order; a restart may
    /// ask for an earlier one again.
    func chunk(_ index: Int) async throws -> HistoryChunk?
}

/// Where an entry is in its source, named only in messages about it.
enum SourcePosition: CustomStringConvertible {
    /// A line of a file, from 1.
    case line(Int)
    /// A row of Quay's `logentry3`, by id.
    case logEntry(Int64)

    var description: String {
        switch self {
        case .line(let number): "line \(number)"
        case .logEntry(let id): "logentry3 id \(id)"
        }
    }
}

/// What one chunk of a source holds.
public struct HistoryChunk: Sendable {
    public var pulls: [PullEvent] = []
    /// Entries that are not manifest pulls (other audit kinds, blob pulls).
    public var ignored = 0
    /// Entries that could not be read or name invalid repositories, tags or digests.
    public var invalid = 0
    /// Where the first `keptExamples` of them are and what is wrong with each.
    public var invalidExamples: [String] = []
    /// Source positions the chunk covered (for the progress line).
    public var positions = 0

    public static let keptExamples = 3

    public init() {}

    /// Counts an invalid entry, keeping the reason while fewer than `keptExamples` are kept.
    mutating func addInvalid(_ reason: @autoclosure () -> String) {
        invalid += 1
        if invalidExamples.count < Self.keptExamples { invalidExamples.append(reason()) }
    }
}
