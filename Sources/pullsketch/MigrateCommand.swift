import ArgumentParser
import PullSketchPostgres
import PullSketchStore

/// Brings the PostgreSQL schema up to date; safe to run again and from several hosts at once.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the database migrations the schema lacks (versioned, idempotent)."
    )

    @Option(help: "libpq connection string, e.g. 'host=127.0.0.1 port=5432 dbname=pullsketch'; overrides PULLSKETCH.database_url and $PULLSKETCH_DATABASE_URL.")
    var database: String?

    @Option(help: "After migrating, split the statistics tables into this many hash partitions by repository (2 to 1024; once, with the reconcilers stopped: see docs/operations.md).")
    var statisticsPartitions: Int?

    @OptionGroup var options: ConfigurationOptions

    func validate() throws {
        if let statisticsPartitions, !Schema.partitionCounts.contains(statisticsPartitions) {
            throw ValidationError("--statistics-partitions must be 2 to 1024, not \(statisticsPartitions)")
        }
    }

    func run() throws {
        let connectionString = try database ?? options.load().database
        guard !connectionString.isEmpty else {
            throw ValidationError("no database: pass --database, or set PULLSKETCH.database_url or PULLSKETCH_DATABASE_URL")
        }
        let connection = try PostgresConnection(connectionString)
        let applied = try Schema.migrate(connection)
        let current = Schema.migrations.last.map { "version \($0.version)" } ?? "empty"
        print(applied.isEmpty ? "schema is current (\(current))" : "applied \(applied.map(String.init).joined(separator: ", ")); schema is at \(current)")
        if let statisticsPartitions {
            let done = try Schema.partitionStatistics(connection, partitions: statisticsPartitions)
            print(done ? "statistics split into \(statisticsPartitions) partitions" : "statistics are partitioned already: nothing changed")
        }
    }
}
