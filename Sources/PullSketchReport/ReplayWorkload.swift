import Foundation
import PullSketchCore
import PullSketchEvents

/// Pulls replayed from a file of JSON lines. Each line is either one pull as `POST /api/v1/pulls`
/// takes it (`{"repository", "tag"?, "digest"?, "method", "time"}`, the time required) or one
/// distribution notification envelope (`{"events": [...]}`) as a registry sends it. Events get the
/// node's own validation: pulls are replayed, pushes put their keys in the catalog, blob events and
/// deletes are skipped, a repeated event id (a registry's retry) counts once. A line that is
/// neither, or an event the node would drop, stops the run with its line number.
public struct ReplayWorkload: Sendable {
    public let path: String
    /// The longest line the file may have (a line is one envelope or one pull); a longer one stops
    /// the run, so memory stays bounded. Default 16 MiB.
    public let maximumLineBytes: Int

    public init(path: String, maximumLineBytes: Int = 16 << 20) {
        self.path = path
        self.maximumLineBytes = maximumLineBytes
    }

    /// Every key the file pulls or pushes, in one pass.
    func scan() throws -> NamedKeys {
        var keys = NamedKeys()
        try forEachEvent { event in
            switch event {
            case .pull(let pull):
                for touch in CountingRule.resolutions.touches(for: pull) {
                    keys.insert(touch.key.kind, repository: pull.repository.value, reference: touch.key.name)
                }
            case .catalog(.pushTag(let repository, let tag, let digest, _)):
                keys.insert(.tag, repository: repository.value, reference: tag.value)
                keys.insert(.manifest, repository: repository.value, reference: digest.value)
            case .catalog(.pushManifest(let repository, let digest, _)):
                keys.insert(.manifest, repository: repository.value, reference: digest.value)
            case .catalog(.pushIndex(let repository, let tag, let digest, _, _)):
                if let tag { keys.insert(.tag, repository: repository.value, reference: tag.value) }
                keys.insert(.manifest, repository: repository.value, reference: digest.value)
            default:
                break
            }
        }
        return keys
    }

    /// Calls `body(index, pull)` for every pull, in file order.
    func forEachPull(_ body: (Int, PullEvent) throws -> Void) throws {
        var index = 0
        try forEachEvent { event in
            guard case .pull(let pull) = event else { return }
            try body(index, pull)
            index += 1
        }
    }

    /// Every pull and catalog change of the file, in order.
    private func forEachEvent(_ body: (IngestedEvent) throws -> Void) throws {
        let seen = RecentEventIDs()
        let decoder = JSONDecoder()
        try forEachLine { number, bytes in
            func refuse(_ reason: String) -> ReportError { ReportError("\(path):\(number): \(reason)") }
            guard let line = try? decoder.decode(Line.self, from: bytes) else {
                throw refuse("neither a pull ({\"repository\", \"method\", \"time\", ...}) nor a notification envelope ({\"events\": [...]})")
            }
            switch line {
            case .pull(let pull):
                guard pull.time != nil else { throw refuse("a replayed pull needs a time") }
                let meaning = pull.ingested(receivedAt: .distantPast)
                if case .invalid(let reason) = meaning { throw refuse(reason) }
                if let id = pull.id, !seen.insert(id) { return }
                try body(meaning)
            case .envelope(let envelope):
                for (position, item) in envelope.events.enumerated() {
                    guard let event = item.event else { throw refuse("event \(position + 1) is not an object of the expected shape") }
                    let meaning = event.ingested()
                    if case .invalid(let reason) = meaning { throw refuse("event \(position + 1): \(reason)") }
                    guard let id = event.id, !id.isEmpty else { throw refuse("event \(position + 1) has no id") }
                    if seen.insert(id) { try body(meaning) }
                }
            }
        }
    }

    /// Calls `body(lineNumber, line)` for every line that is not blank, reading 1 MiB at a time;
    /// a line longer than `maximumLineBytes` stops the run, so memory stays bounded.
    private func forEachLine(_ body: (Int, Data) throws -> Void) throws {
        guard let file = FileHandle(forReadingAtPath: path) else { throw ReportError("cannot read \(path)") }
        defer { try? file.close() }
        var pending = Data()
        var number = 0
        func emit(_ line: Data) throws {
            number += 1
            if line.contains(where: { !Self.whitespace.contains($0) }) { try body(number, line) }
        }
        while let chunk = try file.read(upToCount: 1 << 20), !chunk.isEmpty {
            var searched = pending.endIndex  // what came before holds no newline
            pending.append(chunk)
            var start = pending.startIndex
            while let newline = pending[searched...].firstIndex(of: UInt8(ascii: "\n")) {
                try emit(pending[start..<newline])
                start = newline + 1
                searched = start
            }
            pending = Data(pending[start...])
            guard pending.count <= maximumLineBytes else {
                throw ReportError("\(path):\(number + 1): longer than \(maximumLineBytes) bytes")
            }
        }
        if !pending.isEmpty { try emit(pending) }
    }

    private static let whitespace: Set<UInt8> = [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"), UInt8(ascii: "\n")]

    /// One line of a replay file.
    private enum Line: Decodable {
        case pull(DirectPull)
        case envelope(NotificationEnvelope)

        private enum Key: CodingKey {
            case events
        }

        init(from decoder: any Decoder) throws {
            self = try decoder.container(keyedBy: Key.self).contains(.events)
                ? .envelope(NotificationEnvelope(from: decoder))
                : .pull(DirectPull(from: decoder))
        }
    }
}
