import ArgumentParser
import Foundation
import PullSketchStore
import PullSketchSync

/// Commands about the catalog of known tags and manifests.
struct CatalogCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "catalog",
        abstract: "Manage the catalog of known tags and manifests.",
        subcommands: [SyncCommand.self]
    )

    struct SyncCommand: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sync",
            abstract: "Record every tag a registry holds, with its digest, so never-pulled tags are known (docs/operations.md).",
            discussion: """
                From a distribution registry's API (--registry) or from Quay's database (--quay-database). \
                Idempotent, resumable with --checkpoint, and safe beside live ingestion: a push or delete \
                newer than what the sync saw wins.
                """
        )

        @Option(help: "Base URL of a distribution registry, e.g. http://127.0.0.1:5000.")
        var registry: String?

        @Option(help: "libpq connection string of Quay's database; default: PULLSKETCH.quay.database_url.")
        var quayDatabase: String?

        @Flag(help: "Read Quay's database (--quay-database or PULLSKETCH.quay.database_url).")
        var quay = false

        @Option(help: "Registry user name for basic authentication (and the token service).")
        var username: String?

        @Option(help: "File holding the registry password or bearer token; default: $PULLSKETCH_REGISTRY_PASSWORD.")
        var passwordFile: String?

        @Flag(help: "Send the password as a bearer token instead of basic credentials.")
        var bearer = false

        @Option(help: "Most registry requests per second.")
        var requestsPerSecond: Double = 20

        @Option(help: "Names per page of the registry's catalog and tag lists.")
        var pageSize = 100

        @Option(help: "File recording how far the sync got; a new run resumes after it.")
        var checkpoint: String?

        @OptionGroup var options: ConfigurationOptions

        func validate() throws {
            guard (registry != nil) != (quay || quayDatabase != nil) else {
                throw ValidationError("name one source: --registry URL, or --quay (with --quay-database or PULLSKETCH.quay.database_url)")
            }
            guard (0.001...100_000).contains(requestsPerSecond) else {
                throw ValidationError("--requests-per-second must be within 0.001...100000")
            }
            guard (1...10_000).contains(pageSize) else { throw ValidationError("--page-size must be within 1...10000") }
        }

        func run() async throws {
            let configuration = try options.load()
            guard !configuration.database.isEmpty else {
                throw ValidationError("no database: set PULLSKETCH.database_url or PULLSKETCH_DATABASE_URL")
            }
            let database = try BlockingDatabase.forBulkWork(configuration.database)
            let checkpointFile = checkpoint.map { URL(fileURLWithPath: $0) }
            let report: @Sendable (SyncProgress) -> Void = { progress in
                FileHandle.standardError.write(Data("\rcatalog sync: \(progress.line)   ".utf8))
            }
            let progress: SyncProgress
            if let registry {
                guard let base = URL(string: registry), base.scheme == "http" || base.scheme == "https" else {
                    throw ValidationError("--registry must be an http:// or https:// URL")
                }
                let client = RegistryClient(base: base, credentials: try credentials(), requestsPerSecond: requestsPerSecond)
                var sync = DistributionCatalogSync(client: client, database: database, checkpointFile: checkpointFile)
                sync.pageSize = pageSize
                progress = try await sync.run(report: report)
            } else {
                guard let url = quayDatabase ?? configuration.quay.databaseURL else {
                    throw ValidationError("no Quay database: pass --quay-database or set PULLSKETCH.quay.database_url")
                }
                let quay = try BlockingDatabase.forBulkWork(url)
                progress = try await QuayCatalogSync(quay: quay, database: database, checkpointFile: checkpointFile).run(report: report)
            }
            FileHandle.standardError.write(Data("\n".utf8))
            print("catalog sync done: \(progress.line)")
        }

        private func credentials() throws -> RegistryClient.Credentials {
            let secret: String?
            if let passwordFile {
                secret = try String(contentsOfFile: passwordFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
            } else {
                secret = ProcessInfo.processInfo.environment["PULLSKETCH_REGISTRY_PASSWORD"]
            }
            if bearer {
                guard let secret else { throw ValidationError("--bearer needs a token in --password-file or $PULLSKETCH_REGISTRY_PASSWORD") }
                return .bearer(secret)
            }
            guard let username else { return .none }
            return .basic(username: username, password: secret ?? "")
        }
    }
}
