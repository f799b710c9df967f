import ArgumentParser
import Logging
import PullSketchConfig
import PullSketchCore

@main
struct PullSketchCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pullsketch",
        abstract: "Tracks when container image tags and manifests were last pulled, and how often.",
        version: PullSketchVersion.current,
        subcommands: [
            SizingCommand.self, MigrateCommand.self, ReconcileCommand.self, ServeCommand.self, ReportCommand.self, QuayCommand.self, CatalogCommand.self, ImportCommand.self,
        ]
    )

    /// Every log line in UTC (`UTCLogHandler`), then the command.
    static func main() async {
        LoggingSystem.bootstrap { UTCLogHandler(label: $0) }
        await main(nil)
    }
}

enum PullSketchVersion {
    static let current = "0.1.0"
}
