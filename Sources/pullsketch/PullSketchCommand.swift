import ArgumentParser
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
}

enum PullSketchVersion {
    static let current = "0.1.0"
}
