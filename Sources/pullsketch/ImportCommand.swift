import ArgumentParser
import Foundation
import Logging
import PullSketchCore
import PullSketchEvents
import PullSketchHistory
import PullSketchStore
import Synchronization

/// Imports pulls from before PullSketch was deployed.
struct ImportCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import",
        abstract: "Import past pulls from Quay's audit log or a log file, once, through Redis and the reconciler (docs/operations.md).",
        discussion: """
            Needs a running reconciler. Re-running, or resuming after a crash, never counts a pull twice. Pulls at or \
            after --until are skipped: live ingestion counts them.
            """
    )

    @Flag(help: "Read Quay's logentry3 table (--quay-database or PULLSKETCH.quay.database_url).")
    var quayLogs = false

    @Option(help: "A file of lines: PullSketch pulls, registry notification envelopes, Quay audit documents (JSON), or a distribution registry's own access or application log.")
    var file: String?

    @Option(help: "libpq connection string of Quay's database (the logs, and the tag history that resolves tag pulls); default: PULLSKETCH.quay.database_url.")
    var quayDatabase: String?

    @Option(help: "The cutover: pulls at or after this RFC 3339 time are left to live ingestion.")
    var until: String

    @Option(help: "The id of Quay's pull_repo kind, for audit documents that carry kind_id instead of kind.")
    var pullKindID: Int?

    @Option(help: "Names the source across runs (default: derived from the database or the file's beginning).")
    var sourceName: String?

    @Option(help: "Rows per chunk (one window each; about 200 MB of memory at the default).")
    var chunkSize = 100_000

    @OptionGroup var options: ConfigurationOptions

    func validate() throws {
        guard quayLogs != (file != nil) else { throw ValidationError("name one source: --quay-logs or --file PATH") }
        guard RFC3339.parse(until) != nil else { throw ValidationError("--until must be an RFC 3339 time, e.g. 2026-11-30T12:00:00Z") }
        guard (1...1_000_000).contains(chunkSize) else { throw ValidationError("--chunk-size must be within 1...1000000") }
    }

    func run() async throws {
        let configuration = try options.load()
        guard !configuration.database.isEmpty else {
            throw ValidationError("no database: set PULLSKETCH.database_url or PULLSKETCH_DATABASE_URL")
        }
        let cutover = RFC3339.parse(until)!
        guard cutover.millisecondsSinceEpoch <= Timestamp.now().millisecondsSinceEpoch - 60_000 else {
            throw ValidationError("--until is less than a minute ago: the log may still be written before it")
        }
        try refuseAnUnfitRedis(configuration, logger: Logger(label: "pullsketch.import"), shardCount: false)
        let quay = try (quayDatabase ?? configuration.quay.databaseURL).map(BlockingDatabase.forBulkWork)
        let source: any HistorySource
        if quayLogs {
            guard let quay else { throw ValidationError("no Quay database: pass --quay-database or set PULLSKETCH.quay.database_url") }
            source = try await QuayLogSource.open(quay, name: sourceName, chunkSize: chunkSize, ignoring: configuration.node.ignoredClients)
        } else {
            source = try LogFileSource(
                path: file!, name: sourceName, chunkSize: chunkSize, pullKindID: pullKindID, history: quay.map { QuayTagHistory(database: $0) },
                ignoring: configuration.node.ignoredClients
            )
        }
        let history = HistoryImport(
            source: source, redis: configuration.redis, database: try .forBulkWork(configuration.database),
            tracker: configuration.tracker, cutover: cutover
        )
        let chunks = source.chunkCount
        let logger = Logger(label: "pullsketch.import")
        let logged = Mutex(0)
        let progress = try await history.run { progress in
            let examples = logged.withLock { count in
                defer { count = progress.invalidExamples.count }
                return progress.invalidExamples[count...]
            }
            // Below the progress line of the chunk before, if there was one.
            if !examples.isEmpty, progress.chunks > 1 { FileHandle.standardError.write(Data("\n".utf8)) }
            for example in examples { logger.warning("invalid entry, counted and skipped: \(example)") }
            FileHandle.standardError.write(Data("\r\(Self.bar(progress.nextChunk, of: chunks)) \(progress.line)   ".utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        print("import done (\(history.node)): \(progress.line)")
    }

    /// `[#####·····]  50 %` when the chunk count is known, else the chunks done.
    static func bar(_ done: Int, of total: Int?) -> String {
        guard let total, total > 0 else { return "chunk \(done)" }
        let filled = min(20, done * 20 / total)
        return "[" + String(repeating: "#", count: filled) + String(repeating: "·", count: 20 - filled) + "] \(min(100, done * 100 / total)) %"
    }
}
