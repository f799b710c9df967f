#if canImport(Glibc)
import Glibc
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
import Darwin
private let systemWrite = Darwin.write
#endif
public import Logging
import PullSketchCore
import PullSketchEvents

/// The processes' log lines on standard error, one per call, stamped in UTC with milliseconds:
///
///     2026-12-02T11:30:00.123Z warning pullsketch.node: reason=timeout [PullSketchNode] dropped an invalid event
///
/// swift-log's `StreamLogHandler` writes the machine's local time, and formats a logger's metadata
/// again whenever a key is set; the HTTP server sets a request id on every request's logger, so
/// that formatting was a cost of every notification (about 2 % of the node's CPU under load).
/// Metadata here is formatted only when a line is written.
public struct UTCLogHandler: LogHandler {
    public var logLevel: Logger.Level = .info
    public var metadata: Logger.Metadata = [:]
    private let label: String
    private let write: @Sendable (String) -> Void

    /// `write` receives each whole line, newline included.
    public init(label: String, write: @escaping @Sendable (String) -> Void = Self.standardError) {
        self.label = label
        self.write = write
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let explicit = event.metadata { merged.merge(explicit) { _, explicit in explicit } }
        if let error = event.error { merged["error"] = "\(error)" }
        let fields = merged.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        write("\(RFC3339.format(.now())) \(event.level) \(label):\(fields) [\(event.source)] \(event.message)\n")
    }

    /// One `write(2)` per line, so lines from different threads never interleave.
    public static let standardError: @Sendable (String) -> Void = { line in
        var line = line
        line.withUTF8 { bytes in
            var written = 0
            while written < bytes.count {
                let result = systemWrite(STDERR_FILENO, bytes.baseAddress! + written, bytes.count - written)
                if result < 0, errno == EINTR { continue }
                guard result > 0 else { return }
                written += result
            }
        }
    }
}
