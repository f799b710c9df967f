import Foundation
import PullSketchCore
public import PullSketchEvents
import Synchronization

/// A file of lines, one entry per line, in chunks of `chunkSize` lines:
/// - a pull as `POST /api/v1/pulls` takes it (`{"repository", "tag"?, "digest"?, "method", "time"}`),
/// - a distribution notification envelope (`{"events": [...]}`: manifest pulls count),
/// - a line of distribution's own logs (`RegistryLogLine`): its access log, or its application
///   log's `response completed` lines in text or JSON. A registry writes both for every request
///   (to standard output and standard error, which `kubectl logs` and journald put together), so
///   a file that holds any access log line is counted by its access log alone; the application
///   log counts when the access log was turned off (`http.accesslog.disabled`).
/// - a Quay audit document, from Elasticsearch (`_source` or the document itself) or a log export
///   (`jq -c '.logs[]'`): `kind` (or `kind_id` equal to `pullKindID`), `metadata` with
///   `namespace`, `repo` and `tag` or `manifest_digest`, `datetime` (ISO 8601, RFC 822 or epoch
///   seconds, UTC when it names no zone), and `http_method` where extended logging recorded it.
///   A tag pull's digest comes from `history` when given.
public final class LogFileSource: HistorySource {
    public let identity: String
    public let chunkSize: Int
    private let path: String
    private let pullKindID: Int?
    private let history: QuayTagHistory?
    private let clients: IgnoredClients
    private let reader: Mutex<LineReader?>
    /// Whether the file holds a line of the registry's access log; found when first needed.
    private let accessLogHeld: Mutex<Bool?>

    /// `name` overrides the identity (`file:` and a hash of the file's first 64 KiB). Pulls by a
    /// client `clients` names are ignored, wherever the entry names its user agent.
    public init(
        path: String, name: String? = nil, chunkSize: Int = 100_000, pullKindID: Int? = nil, history: QuayTagHistory? = nil,
        ignoring clients: IgnoredClients = .none
    ) throws {
        guard let file = FileHandle(forReadingAtPath: path) else { throw ImportError("cannot read \(path)") }
        let head = try file.read(upToCount: 1 << 16) ?? Data()
        try file.close()
        identity = name ?? "file:" + String(head.reduce(UInt64(0xcbf2_9ce4_8422_2325)) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }, radix: 16)
        self.path = path
        self.chunkSize = chunkSize
        self.pullKindID = pullKindID
        self.history = history
        self.clients = clients
        reader = Mutex(nil)
        accessLogHeld = Mutex(nil)
    }

    /// Unknown until the file is read.
    public var chunkCount: Int? { nil }

    public func chunk(_ index: Int) async throws -> HistoryChunk? {
        let first = index * chunkSize
        let lines: [Data]? = try reader.withLock { reader in
            if reader == nil || reader!.nextLine > first { reader = try LineReader(path: path) }
            try reader!.skip(to: first)
            return try reader!.lines(chunkSize)
        }
        guard let lines, !lines.isEmpty else { return nil }
        var chunk = HistoryChunk()
        chunk.positions = lines.count
        var entries: [QuayPullEntry] = []
        for (offset, line) in lines.enumerated() where line.contains(where: { !Self.whitespace.contains($0) }) {
            let position = SourcePosition.line(first + offset + 1)
            switch try entry(line, at: position) {
            case .pull(let pull): chunk.pulls.append(pull)
            case .quay(let entry): entries.append(entry)
            case .ignored: chunk.ignored += 1
            case .invalid(let reason): chunk.addInvalid("\(position): \(reason)")
            }
        }
        chunk.pulls += try await entries.events(resolvingWith: history, counting: &chunk)
        return chunk
    }

    private static let whitespace: Set<UInt8> = [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n")]

    private enum Entry {
        case pull(PullEvent)
        case quay(QuayPullEntry)
        case ignored
        /// Why.
        case invalid(String)
    }

    private func entry(_ line: Data, at position: SourcePosition) throws -> Entry {
        // Only an object is an entry in JSON: the registry's log lines are not tried as JSON first.
        guard line.first(where: { !Self.whitespace.contains($0) }) == UInt8(ascii: "{"),
            var object = (try? JSONSerialization.jsonObject(with: line)) as? [String: Any]
        else { return try registryLogEntry(RegistryLogLine.record(in: line)) }
        if let record = RegistryLogLine.record(json: object) { return try registryLogEntry(record) }
        if let source = object["_source"] as? [String: Any] { object = source }
        if object["events"] != nil {
            guard let envelope = line.withUnsafeBytes({ NotificationEnvelope(json: $0) }) else {
                return .invalid("not a notification envelope, though it has events")
            }
            // An envelope holds one event as distribution sends them; more are counted alike.
            for item in envelope.events {
                switch item.event?.ingested(ignoring: clients) {
                case .pull(let pull): return .pull(pull)
                case .invalid(let reason): return .invalid("a notification event: \(reason)")
                case nil: return .invalid("a notification event that cannot be read")
                default: continue
                }
            }
            return .ignored
        }
        if let metadata = object["metadata"] as? [String: Any] {
            let kind = object["kind"] as? String
            let kindID = object["kind_id"] as? Int
            guard kind == "pull_repo" || (kind == nil && kindID != nil && kindID == pullKindID) else { return .ignored }
            // Extended logging's field, else the one Quay keeps in the metadata.
            guard !clients.ignores(userAgent: object["user_agent"] as? String ?? QuayPullEntry.userAgent(metadata)) else { return .ignored }
            guard let time = Self.time(object["datetime"]) else { return .invalid("an audit entry whose datetime is not a time") }
            let name = (object["namespace_name"] as? String).flatMap { namespace in
                (object["repository_name"] as? String).map { "\(namespace)/\($0)" }
            }
            let method = object["http_method"] as? String
            guard let entry = QuayPullEntry(metadata: metadata, repository: name, method: method, time: time, position: position) else {
                return .ignored
            }
            return .quay(entry)
        }
        guard let pull = try? JSONDecoder().decode(DirectPull.self, from: line) else {
            return .invalid("neither a pull, a notification envelope nor an audit entry")
        }
        guard pull.time != nil else { return .invalid("a pull without a time") }
        switch pull.ingested(receivedAt: .distantPast, ignoring: clients) {
        case .pull(let event): return .pull(event)
        case .invalid(let reason): return .invalid("a pull: \(reason)")
        default: return .ignored  // a direct pull is a pull or invalid
        }
    }

    /// A line of the registry's logs: an access log line counts; a request in the application log
    /// counts unless the file holds the access log, which counts the same requests; the
    /// application log's other lines are ignored.
    private func registryLogEntry(_ record: RegistryLogLine.Record) throws -> Entry {
        switch record {
        case .access(let request): return Self.entry(request.ingested(ignoring: clients))
        case .application(nil): return .ignored
        case .application(let request?): return try holdsAccessLog() ? .ignored : Self.entry(request.ingested(ignoring: clients))
        case .unknown: return .invalid("neither a JSON object PullSketch reads nor a line of the registry's logs")
        }
    }

    /// Whether the file holds an access log line, read through once when first asked.
    private func holdsAccessLog() throws -> Bool {
        try accessLogHeld.withLock { held in
            if let held { return held }
            var reader = try LineReader(path: path)
            var found = false
            while !found {
                let lines = try reader.lines(1_000)
                if lines.isEmpty { break }
                found = lines.contains {
                    if case .access = RegistryLogLine.record(in: $0) { true } else { false }
                }
            }
            held = found
            return found
        }
    }

    private static func entry(_ event: IngestedEvent) -> Entry {
        switch event {
        case .pull(let pull): .pull(pull)
        case .invalid(let reason): .invalid("a registry log line: \(reason)")
        case .catalog, .ignored: .ignored
        }
    }

    /// ISO 8601 (UTC when it names no zone), RFC 822, or epoch seconds (nil past what milliseconds
    /// in 64 bits hold, as `1e300`).
    static func time(_ value: Any?) -> Timestamp? {
        if let seconds = value as? Double {
            return Int64(exactly: (seconds * 1_000).rounded(.towardZero)).map(Timestamp.init(millisecondsSinceEpoch:))
        }
        guard let text = value as? String else { return nil }
        if let time = RFC3339.parse(text) { return time }
        let zoned = text.count == 19 || (text.count > 19 && text[text.index(text.startIndex, offsetBy: 19)] == ".") ? text + "Z" : text
        if let time = RFC3339.parse(zoned) { return time }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        for format in ["EEE, dd MMM yyyy HH:mm:ss Z", "EEE, dd MMM yyyy HH:mm:ss zzz"] {
            formatter.dateFormat = format
            if let date = formatter.date(from: text) { return Timestamp(millisecondsSinceEpoch: Int64(date.timeIntervalSince1970 * 1_000)) }
        }
        return nil
    }
}

/// Reads a file's lines in order, 1 MiB at a time.
struct LineReader {
    private let file: FileHandle
    /// What was read and not yet returned, from `start` on: a line is copied out once, and only the
    /// unfinished last line is moved when the next MiB is read.
    private var pending: [UInt8] = []
    private var start = 0
    private var atEnd = false
    private(set) var nextLine = 0
    static let maximumLineBytes = 16 << 20

    init(path: String) throws {
        guard let file = FileHandle(forReadingAtPath: path) else { throw ImportError("cannot read \(path)") }
        self.file = file
    }

    mutating func skip(to line: Int) throws {
        while nextLine < line, try next() != nil {}
    }

    mutating func lines(_ count: Int) throws -> [Data] {
        var lines: [Data] = []
        while lines.count < count, let line = try next() { lines.append(line) }
        return lines
    }

    /// The next line (blank ones included, so positions stay fixed), or nil at the end.
    private mutating func next() throws -> Data? {
        while true {
            if let newline = pending[start...].firstIndex(of: UInt8(ascii: "\n")) {
                defer { start = newline + 1 }
                nextLine += 1
                return Data(pending[start..<newline])
            }
            guard !atEnd else {
                guard start < pending.count else { return nil }
                defer { start = pending.count }
                nextLine += 1
                return Data(pending[start...])
            }
            guard pending.count - start <= Self.maximumLineBytes else { throw ImportError("line \(nextLine + 1) is longer than 16 MiB") }
            let chunk = try file.read(upToCount: 1 << 20) ?? Data()
            if chunk.isEmpty {
                atEnd = true
            } else {
                pending.removeFirst(start)
                pending.append(contentsOf: chunk)
                start = 0
            }
        }
    }
}
