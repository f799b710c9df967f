import Logging
import PullSketchPostgres
import PullSketchStore

/// Refuses a database that lacks migrations this build has: every batch would fail on it. When
/// PostgreSQL cannot be reached, the process starts anyway and retries, as it would later.
func refuseAnOutdatedSchema(_ database: String, logger: Logger) throws {
    do {
        try Schema.requireCurrent(try PostgresConnection(database))
    } catch let outdated as OutdatedSchema {
        throw StartupRefusal(outdated.description)
    } catch {
        logger.warning("could not check the database schema before starting", metadata: ["error": "\(error)"])
    }
}
