// swift-tools-version:6.1
import PackageDescription

/// libFuzzer harnesses for what the network feeds PullSketch. Built by `scripts/fuzz`, with
/// `-sanitize=fuzzer,address`, which links libFuzzer.
let package = Package(
    name: "PullSketchFuzz",
    dependencies: [.package(name: "PullSketch", path: "../..")],
    targets: [
        .target(name: "FuzzDriver"),
        .executableTarget(
            name: "QuayWireFuzz",
            dependencies: [
                "FuzzDriver",
                .product(name: "PullSketchCore", package: "PullSketch"),
                .product(name: "PullSketchRESP", package: "PullSketch"),
                .product(name: "PullSketchQuay", package: "PullSketch"),
            ]
        ),
        .executableTarget(
            name: "IngestionFuzz",
            dependencies: ["FuzzDriver", .product(name: "PullSketchEvents", package: "PullSketch")]
        ),
    ],
    swiftLanguageModes: [.v6]
)
