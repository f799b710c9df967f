// swift-tools-version:6.1
import PackageDescription

/// PullSketch's benchmarks, beside the baselines they are compared with. A sibling package, so
/// the benchmark library never enters the product's build. Run with `scripts/bench`.
let package = Package(
    name: "Benchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "PullSketch", path: "../"),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
    ],
    targets: [
        .target(
            name: "BenchmarkSupport",
            dependencies: [
                .product(name: "PullSketchCore", package: "PullSketch"),
                .product(name: "PullSketchPostgres", package: "PullSketch"),
                .product(name: "PullSketchRedis", package: "PullSketch"),
            ],
            path: "Sources/BenchmarkSupport"
        ),
        .executableTarget(
            name: "RedisTraffic",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "PullSketchCore", package: "PullSketch"),
                .product(name: "PullSketchRedis", package: "PullSketch"),
            ],
            path: "Sources/RedisTraffic"
        ),
        .executableTarget(
            name: "FloodMemory",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "PullSketchCore", package: "PullSketch"),
                .product(name: "PullSketchRedis", package: "PullSketch"),
            ],
            path: "Sources/FloodMemory"
        ),
        .executableTarget(
            name: "PostgresTraffic",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "PullSketchCore", package: "PullSketch"),
                .product(name: "PullSketchPostgres", package: "PullSketch"),
                .product(name: "PullSketchStore", package: "PullSketch"),
                .product(name: "PullSketchRedis", package: "PullSketch"),
            ],
            path: "Sources/PostgresTraffic"
        ),
        .executableTarget(
            name: "PostgresAtScale",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "PullSketchCore", package: "PullSketch"),
                .product(name: "PullSketchPostgres", package: "PullSketch"),
                .product(name: "PullSketchStore", package: "PullSketch"),
            ],
            path: "Sources/PostgresAtScale"
        ),
        .executableTarget(
            name: "ReconcilerThroughput",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "PullSketchCore", package: "PullSketch"),
                .product(name: "PullSketchPostgres", package: "PullSketch"),
                .product(name: "PullSketchStore", package: "PullSketch"),
                .product(name: "PullSketchRedis", package: "PullSketch"),
            ],
            path: "Sources/ReconcilerThroughput"
        ),
        .executableTarget(
            name: "ClusterThroughput",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "PullSketchCore", package: "PullSketch"),
                .product(name: "PullSketchPostgres", package: "PullSketch"),
                .product(name: "PullSketchStore", package: "PullSketch"),
                .product(name: "PullSketchRedis", package: "PullSketch"),
            ],
            path: "Sources/ClusterThroughput"
        ),
        .executableTarget(
            name: "QuayWireLoad",
            dependencies: [.product(name: "PullSketchRedis", package: "PullSketch")],
            path: "Sources/QuayWireLoad"
        ),
        .executableTarget(
            name: "WebhookLoad",
            path: "Sources/WebhookLoad"
        ),
        .executableTarget(
            name: "BareWebhookServer",
            dependencies: [.product(name: "Hummingbird", package: "hummingbird")],
            path: "Sources/BareWebhookServer"
        ),
        .executableTarget(
            name: "EventLoopWebhookServer",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/EventLoopWebhookServer"
        ),
        .executableTarget(
            name: "TrackerBenchmarks",
            dependencies: [
                "BenchmarkSupport",
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "PullSketchCore", package: "PullSketch"),
                .product(name: "PullSketchEvents", package: "PullSketch"),
                .product(name: "PullSketchRedis", package: "PullSketch"),
            ],
            path: "Benchmarks/TrackerBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
