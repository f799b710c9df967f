import ArgumentParser
import Foundation
import PullSketchPostgres

/// Brings the PostgreSQL schema up to date; safe to run again and from several hosts at once.
struct MigrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "migrate",
        abstract: "Apply the database migrations the schema lacks (versioned, idempotent)."
    )

    @Option(help: "libpq connection string, e.g. 'host=127.0.0.1 port=5432 dbname=pullsketch'. Default: $PULLSKETCH_DATABASE_URL.")
    var database: String?

    func run() throws {
        guard let connectionString = database ?? ProcessInfo.processInfo.environment["PULLSKETCH_DATABASE_URL"] else {
            throw ValidationError("no database: pass --database or set PULLSKETCH_DATABASE_URL")
        }
        let connection = try PostgresConnection(connectionString)
        let applied = try Schema.migrate(connection)
        let current = Schema.migrations.last.map { "version \($0.version)" } ?? "empty"
        print(applied.isEmpty ? "schema is current (\(current))" : "applied \(applied.map(String.init).joined(separator: ", ")); schema is at \(current)")
    }
}
