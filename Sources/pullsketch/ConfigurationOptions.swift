import ArgumentParser
import Foundation
import PullSketchConfig

/// `--config`: the Quay-style config.yaml to read; environment variables override it.
struct ConfigurationOptions: ParsableArguments {
    @Option(help: "Quay-style config.yaml with the PullSketch keys (docs/operations.md). Default: $PULLSKETCH_CONFIG, else none.")
    var config: String?

    /// The file's configuration (defaults without one) with the environment applied.
    func load() throws -> PullSketchConfiguration {
        let environment = ProcessInfo.processInfo.environment
        guard let path = config ?? environment["PULLSKETCH_CONFIG"] else {
            return try PullSketchConfiguration().applying(environment: environment)
        }
        let yaml: String
        do {
            yaml = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ValidationError("cannot read \(path): \(error.localizedDescription)")
        }
        return try PullSketchConfiguration(yaml: yaml).applying(environment: environment)
    }
}
