import ArgumentParser
import PullSketchPostgres
import PullSketchQuay

/// Commands about Quay's own pull statistics tables.
struct QuayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quay",
        abstract: "Keep Quay's tagpullstatistics and manifestpullstatistics in step with PullSketch.",
        subcommands: [SyncCommand.self]
    )

    struct SyncCommand: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sync",
            abstract: "Rewrite Quay's pull statistics tables from PullSketch's statistics (after Quay's garbage collection, or to start the projection)."
        )

        @OptionGroup var options: ConfigurationOptions

        func run() throws {
            let configuration = try options.load()
            guard !configuration.database.isEmpty else {
                throw ValidationError("no database: set PULLSKETCH.database_url or PULLSKETCH_DATABASE_URL")
            }
            let written = try QuayProjection(quayDatabase: configuration.quay.databaseURL).sync(statistics: PostgresConnection(configuration.database))
            print("wrote \(written[.tag] ?? 0) tagpullstatistics rows and \(written[.manifest] ?? 0) manifestpullstatistics rows")
        }
    }
}
