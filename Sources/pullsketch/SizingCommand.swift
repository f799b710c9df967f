import ArgumentParser
import PullSketchCore

/// Prints the sketch shape and memory for a target error, so operators can size the tracker.
struct SizingCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sizing",
        abstract: "Sketch width, depth and memory for an error ε and failure probability δ."
    )

    @Option(help: "Relative error ε: an estimate exceeds the truth by at most ε·N (N = tail pulls).")
    var epsilon: Double = SketchParameters().epsilon

    @Option(help: "Probability δ that an estimate exceeds that bound.")
    var delta: Double = SketchParameters().delta

    @Option(help: "Lock stripes of the tracker (each holds one sketch). Default: the configuration's.")
    var stripes: Int?

    @Option(help: "Exact hot keys per window. Default: the configuration's.")
    var hotCapacity: Int?

    @OptionGroup var options: ConfigurationOptions

    func validate() throws {
        guard epsilon > 0, epsilon < 1 else { throw ValidationError("--epsilon must be in (0, 1)") }
        guard delta > 0, delta < 1 else { throw ValidationError("--delta must be in (0, 1)") }
        guard SketchParameters(epsilon: epsilon, delta: delta) != nil else {
            throw ValidationError(
                "that sketch is larger than a deployment takes (width ≤ \(SketchParameters.widths.upperBound), depth ≤ \(SketchParameters.depths.upperBound), "
                    + "width × depth ≤ \(SketchParameters.largestCounterCount)): raise --epsilon or --delta"
            )
        }
        guard TrackerConfiguration.stripeCounts.contains(stripes ?? 1) else {
            throw ValidationError("--stripes must be within \(TrackerConfiguration.stripeCounts)")
        }
        guard TrackerConfiguration.hotCapacities.contains(hotCapacity ?? 0) else {
            throw ValidationError("--hot-capacity must be within \(TrackerConfiguration.hotCapacities)")
        }
    }

    func run() throws {
        let configured = try options.load().tracker
        let sketch = SketchParameters(epsilon: epsilon, delta: delta)!  // checked in `validate`
        let stripes = stripes ?? configured.stripeCount, hotCapacity = hotCapacity ?? configured.hotCapacity
        let tracker = TrackerConfiguration(
            hotCapacity: hotCapacity, stripeCount: stripes, coreWindowCount: configured.coreWindowCount, shardCount: 1, sketch: sketch
        )
        print("""
            width w             \(sketch.width)
            depth d             \(sketch.depth)
            epsilon (e/w)       \(sketch.epsilon)
            delta (e^-d)        \(sketch.delta)
            bound per 1M tail   \(sketch.errorBound(tailMass: 1_000_000)) pulls
            sketch bytes        \(sketch.byteCount)
            window bytes (max)  \(tracker.windowByteBound) with \(stripes) stripes, \(hotCapacity) hot keys, \(tracker.coreWindowCount) core window(s)
            """)
    }
}
