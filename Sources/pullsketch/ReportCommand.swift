import ArgumentParser
import Foundation
import PullSketchCore
import PullSketchPostgres
import PullSketchReport
import PullSketchStore

/// Proves how exact the numbers are: a workload through the real tracker, merge, seal and
/// reconcile arithmetic, every key compared with the truth (docs/accuracy.md).
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Run a workload through PullSketch and compare every key with the exact truth."
    )

    @Option(help: "zipf, flood or mix.") var workload: String = "zipf"
    @Option(help: ArgumentHelp(
        "Replay a file of JSON lines instead: pulls as POST /api/v1/pulls takes them (with a time), or notification envelopes.",
        valueName: "file"
    ))
    var replay: String?
    @Option(help: "Pulls to simulate.") var pulls: Int = 1_000_000
    @Option(help: "Keys (tags) the Zipf part draws from.") var keys: Int = 100_000
    @Option(help: "Repositories the keys are spread over.") var repositories: Int = 1_000
    @Option(help: "Zipf exponent s.") var exponent: Double = 1
    @Option(help: "Simulated registry nodes, pulls dealt round-robin.") var nodes: Int = 4
    @Option(help: "Simulated pulls per second over all nodes.") var rate: Int = 5_000
    @Option(help: "Sketch width w.") var width: Int = SketchParameters().width
    @Option(help: "Sketch depth d.") var depth: Int = SketchParameters().depth
    @Option(help: "Exact hot keys per node window.") var hotCapacity: Int = TrackerConfiguration().hotCapacity
    @Option(help: "Merge interval, simulated milliseconds.") var mergeIntervalMs: Int64 = 2_000
    @Option(help: "Reconcile interval, simulated milliseconds.") var reconcileIntervalMs: Int64 = 5_000
    @Option(help: "Seed: the same seed gives the same run.") var seed: UInt64 = 1
    @Option(help: "Directory for summary.json, summary.md and keys.csv.") var output: String?
    @Flag(help: "Instead of a simulation: how exact a live deployment's rows are (PULLSKETCH_DATABASE_URL or --database).")
    var fromPostgres = false
    @Flag(help: "Merge into a real Redis and reconcile into a real PostgreSQL (both empty) instead of in memory.")
    var live = false
    @Option(help: "libpq connection string for --live and --from-postgres (default: the configuration's).") var database: String?
    @OptionGroup var options: ConfigurationOptions

    func validate() throws {
        guard SyntheticWorkload.Shape(rawValue: workload) != nil else { throw ValidationError("--workload must be zipf, flood or mix") }
        guard pulls > 0, keys > 0, repositories > 0, nodes > 0, rate > 0 else { throw ValidationError("counts must be positive") }
        guard keys <= 100_000_000, nodes <= 1_024 else { throw ValidationError("--keys must be at most 100000000 and --nodes at most 1024") }
        guard (0...10).contains(exponent) else { throw ValidationError("--exponent must be within 0...10") }
        guard TrackerConfiguration.hotCapacities.contains(hotCapacity) else {
            throw ValidationError("--hot-capacity must be within \(TrackerConfiguration.hotCapacities)")
        }
        guard mergeIntervalMs > 0, reconcileIntervalMs > 0 else { throw ValidationError("intervals must be positive") }
        guard SketchParameters.isDeployable(width: width, depth: depth) else {
            throw ValidationError(
                "--width must be within \(SketchParameters.widths), --depth within \(SketchParameters.depths), "
                    + "and width × depth at most \(SketchParameters.largestCounterCount)"
            )
        }
    }

    func run() throws {
        let configuration = try options.load()
        let connectionString = database ?? configuration.database
        if fromPostgres || live, connectionString.isEmpty {
            throw ValidationError("--from-postgres and --live need --database, PULLSKETCH.database_url or PULLSKETCH_DATABASE_URL")
        }
        if fromPostgres {
            print(try DeploymentAccuracy(PostgresConnection(connectionString)).markdown())
            return
        }
        let source: AccuracyWorkload = replay.map { .replay(ReplayWorkload(path: $0)) } ?? .synthetic(SyntheticWorkload(
            shape: SyntheticWorkload.Shape(rawValue: workload)!, pulls: pulls, keys: keys, repositories: repositories,
            exponent: exponent, pullsPerSecond: rate, seed: seed
        ))
        // The configured tracker (counting rule, tail names, stripes, shards …) with this command's
        // hot capacity and sketch, and one core window: a simulated node records from one thread,
        // so the run stays the same for a seed.
        var tracker = configuration.tracker
        tracker.isEnabled = true
        tracker.hotCapacity = hotCapacity
        tracker.sketch = SketchParameters(width: width, depth: depth)
        tracker.coreWindowCount = 1
        let run = AccuracyRun(
            workload: source,
            nodes: nodes,
            tracker: tracker,
            mergeIntervalMilliseconds: mergeIntervalMs,
            reconcileIntervalMilliseconds: reconcileIntervalMs
        )
        let target: AccuracyRun.Target = live ? .live(redis: configuration.redis, database: connectionString) : .inProcess
        let result = try run.run(on: target) { done in
            FileHandle.standardError.write(Data("\r\(done / 1_000_000) M of \(replay == nil ? String(pulls) : "the") pulls".utf8))
        }
        FileHandle.standardError.write(Data("\n".utf8))
        print(result.markdown())
        if let output { try result.write(to: URL(fileURLWithPath: output)) }
    }
}
