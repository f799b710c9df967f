// swift-tools-version:6.1
import PackageDescription

/// Settings every target shares: Swift 6 language mode with strict concurrency checking.
let swiftSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "PullSketch",
    products: [
        .library(name: "PullSketchCore", targets: ["PullSketchCore"]),
        .library(name: "PullSketchRedis", targets: ["PullSketchRedis"]),
        .library(name: "PullSketchEvents", targets: ["PullSketchEvents"]),
        .library(name: "PullSketchFlusher", targets: ["PullSketchFlusher"]),
        .library(name: "PullSketchPostgres", targets: ["PullSketchPostgres"]),
        .library(name: "PullSketchStore", targets: ["PullSketchStore"]),
        .library(name: "PullSketchReconciler", targets: ["PullSketchReconciler"]),
        .library(name: "PullSketchRESP", targets: ["PullSketchRESP"]),
        .library(name: "PullSketchQuay", targets: ["PullSketchQuay"]),
        .executable(name: "pullsketch", targets: ["pullsketch"]),
        /// `libPullSketchEmbed.so`: the C ABI of `Sources/PullSketchEmbed/include/pullsketch.h`.
        .library(name: "PullSketchEmbed", type: .dynamic, targets: ["PullSketchEmbed"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.34.1"),
        .package(url: "https://github.com/apple/swift-http-types", from: "1.8.0"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/hummingbird-project/hummingbird", from: "2.28.1"),
        .package(url: "https://github.com/hummingbird-project/swift-mustache", from: "2.1.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        .systemLibrary(name: "CXXHash", pkgConfig: "libxxhash", providers: [.apt(["libxxhash-dev"])]),
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        .systemLibrary(name: "CCurrentCPU"),
        .target(
            name: "PullSketchCore",
            dependencies: ["CXXHash", "CCurrentCPU"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchBlocking",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchRedis",
            dependencies: ["PullSketchCore", "PullSketchRESP", "CHiredis"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchPostgres",
            dependencies: ["CLibPQ"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchFlusher",
            dependencies: [
                "PullSketchBlocking",
                "PullSketchCore",
                "PullSketchRedis",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchStore",
            dependencies: ["PullSketchCore", "PullSketchPostgres", "PullSketchBlocking"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchReconciler",
            dependencies: [
                "PullSketchBlocking",
                "PullSketchCore",
                "PullSketchRedis",
                "PullSketchStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchEvents",
            dependencies: ["PullSketchCore", "CXXHash"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchRESP",
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchQuay",
            dependencies: [
                "PullSketchCore",
                "PullSketchPostgres",
                "PullSketchRESP",
                "PullSketchStore",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchNode",
            dependencies: [
                "PullSketchBlocking",
                "PullSketchCore",
                "PullSketchEvents",
                "PullSketchPostgres",
                "PullSketchStore",
                "PullSketchRedis",
                "PullSketchRESP",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdCore", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOHTTPTypes", package: "swift-nio-extras"),
                .product(name: "NIOHTTPTypesHTTP1", package: "swift-nio-extras"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Mustache", package: "swift-mustache"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchSync",
            dependencies: ["PullSketchCore", "PullSketchEvents", "PullSketchPostgres", "PullSketchStore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchHistory",
            dependencies: ["PullSketchCore", "PullSketchEvents", "PullSketchPostgres", "PullSketchRedis", "PullSketchStore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchReport",
            dependencies: ["PullSketchCore", "PullSketchEvents", "PullSketchPostgres", "PullSketchRedis", "PullSketchStore"],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchConfig",
            dependencies: [
                "PullSketchCore", "PullSketchEvents", "PullSketchRedis", "PullSketchFlusher", "PullSketchReconciler", "PullSketchNode", "PullSketchQuay", "Yams",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchEmbed",
            dependencies: ["PullSketchConfig", "PullSketchCore", "PullSketchFlusher"],
            exclude: ["include", "python"],
            swiftSettings: swiftSettings,
            // The Swift runtime libraries are found beside the library first (the Python package
            // carries them there).
            linkerSettings: [.unsafeFlags(["-Xlinker", "-rpath=$ORIGIN"])]
        ),
        .executableTarget(
            name: "pullsketch",
            dependencies: [
                "PullSketchCore",
                "PullSketchPostgres",
                "PullSketchStore",
                "PullSketchReconciler",
                "PullSketchConfig",
                "PullSketchFlusher",
                "PullSketchNode",
                "PullSketchQuay",
                "PullSketchReport",
                "PullSketchSync",
                "PullSketchHistory",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .target(
            name: "PullSketchTestSupport",
            path: "Tests/TestSupport",
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchCoreTests",
            dependencies: ["PullSketchCore", "CXXHash", "PullSketchTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchEventsTests",
            dependencies: ["PullSketchEvents", "PullSketchCore", "PullSketchTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchRedisTests",
            dependencies: [
                "PullSketchRedis", "PullSketchFlusher", "PullSketchCore", "PullSketchTestSupport",
                .product(name: "MetricsTestKit", package: "swift-metrics"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchConfigTests",
            dependencies: [
                "PullSketchConfig", "PullSketchCore", "PullSketchEvents", "PullSketchNode", "PullSketchReconciler", "PullSketchRedis", "PullSketchTestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchReconcilerTests",
            dependencies: [
                "PullSketchReconciler", "PullSketchFlusher", "PullSketchStore", "PullSketchPostgres", "PullSketchRedis", "PullSketchCore",
                "PullSketchConfig", "PullSketchTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchEmbedTests",
            dependencies: ["PullSketchReconciler", "PullSketchStore", "PullSketchPostgres", "PullSketchRedis", "PullSketchTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchStoreTests",
            dependencies: ["PullSketchStore", "PullSketchPostgres", "PullSketchCore", "PullSketchTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchNodeTests",
            dependencies: [
                "PullSketchNode", "PullSketchConfig", "PullSketchCore", "PullSketchEvents", "PullSketchPostgres", "PullSketchStore", "PullSketchTestSupport",
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycleTestKit", package: "swift-service-lifecycle"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchReportTests",
            dependencies: ["PullSketchReport", "PullSketchCore", "PullSketchEvents", "PullSketchPostgres", "PullSketchRedis", "PullSketchStore", "PullSketchTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchEndToEndTests",
            dependencies: ["PullSketchTestSupport"],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchQuayTests",
            dependencies: [
                "PullSketchQuay", "PullSketchRESP", "PullSketchCore", "PullSketchPostgres", "PullSketchRedis", "PullSketchStore",
                "PullSketchTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchSyncTests",
            dependencies: [
                "PullSketchSync", "PullSketchStore", "PullSketchPostgres", "PullSketchCore", "PullSketchTestSupport",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTesting", package: "hummingbird"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchHistoryTests",
            dependencies: [
                "PullSketchHistory", "PullSketchReconciler", "PullSketchRedis", "PullSketchStore", "PullSketchPostgres", "PullSketchCore",
                "PullSketchEvents", "PullSketchTestSupport",
            ],
            swiftSettings: swiftSettings
        ),
        .testTarget(
            name: "PullSketchPostgresTests",
            dependencies: ["PullSketchPostgres", "PullSketchTestSupport"],
            swiftSettings: swiftSettings
        ),
    ],
    swiftLanguageModes: [.v6]
)
