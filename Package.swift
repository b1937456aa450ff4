// swift-tools-version: 6.1
import PackageDescription

/// Settings every target shares: the public surface is kept small by the compiler
/// (see shared/STYLE.md), and Swift 6 strict concurrency is on through the language mode.
let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
    .enableUpcomingFeature("MemberImportVisibility"),
    .enableUpcomingFeature("InternalImportsByDefault"),
]

let package = Package(
    name: "CallWindow",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "callwindow", targets: ["callwindow"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.5.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.6.0"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.0.0"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.80.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", from: "1.25.0"),
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", from: "2.10.0"),
        .package(url: "https://github.com/jpsim/Yams.git", "5.0.0"..<"7.0.0"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.6.0"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.0.0"),
    ],
    targets: [
        // libpq, from Debian's libpq-dev. Only `Postgres` imports it.
        .systemLibrary(
            name: "CLibPQ",
            pkgConfig: "libpq",
            providers: [.apt(["libpq-dev"])]
        ),
        .target(
            name: "Postgres",
            dependencies: [
                "CLibPQ",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Planning",
            swiftSettings: strict
        ),
        // config/callwindow.yaml: typed settings, environment overrides, errors naming the key.
        .target(
            name: "Config",
            dependencies: ["Planning", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        // The token ledger contract (mint budget, leased token store) and its in-memory version.
        .target(
            name: "Ledger",
            swiftSettings: strict
        ),
        .target(
            name: "Store",
            dependencies: [
                "Postgres",
                "Planning",
                "Ledger",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "CallRecordAPI",
            dependencies: [
                "Planning",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "Sandbox",
            dependencies: [
                "CallRecordAPI",
                "Planning",
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Yams", package: "Yams"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .target(
            name: "TokenPool",
            dependencies: [
                "Planning",
                "CallRecordAPI",
                "Ledger",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ],
            swiftSettings: strict
        ),
        // The daemon's services: planner loop, dispatcher (with the token pool).
        .target(
            name: "Scheduler",
            dependencies: [
                "Planning", "Store", "Postgres", "TokenPool", "CallRecordAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The daemon's wiring: services built from a configuration (planner, dispatchers, the
        // operations server), label sync, the preview's account-wide planning, the log format.
        .target(
            name: "Daemon",
            dependencies: [
                "Config", "Planning", "Postgres", "Store", "CallRecordAPI", "TokenPool", "Scheduler",
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Child processes (posix_spawn, reaped on threads of their own) and private PostgreSQL
        // clusters: shared by the benchmarks and the tests.
        .target(name: "Processes", swiftSettings: strict),
        // The benchmarks `callwindow bench` runs: sender, pipeline, process metrics.
        .target(
            name: "Benchmarks",
            dependencies: [
                "Daemon", "Config", "Planning", "Postgres", "Store", "CallRecordAPI", "TokenPool", "Scheduler", "Sandbox", "Processes",
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "callwindow",
            dependencies: [
                "Daemon", "Benchmarks", "Config", "Planning", "Postgres", "Store", "Sandbox",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Helpers shared by the test targets: the test database, the private cluster, the binary.
        .target(
            name: "TestSupport",
            dependencies: [
                "Postgres", "Planning", "Processes", "Store", "Sandbox", "CallRecordAPI",
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
            ],
            path: "Tests/TestSupport", swiftSettings: strict
        ),
        .testTarget(name: "PostgresTests", dependencies: ["Postgres", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "StoreTests",
            dependencies: ["Store", "Postgres", "Planning", "Ledger", "TestSupport", .product(name: "Crypto", package: "swift-crypto")],
            swiftSettings: strict
        ),
        .testTarget(name: "PlanningTests", dependencies: ["Planning"], swiftSettings: strict),
        .testTarget(name: "ConfigTests", dependencies: ["Config", "Planning"], swiftSettings: strict),
        .testTarget(
            name: "SchedulerTests",
            dependencies: [
                "Scheduler", "Store", "Ledger", "Planning", "Postgres", "TestSupport", "TokenPool", "Sandbox", "CallRecordAPI",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "CallRecordAPITests",
            dependencies: ["CallRecordAPI", "Planning", "Sandbox", "TestSupport"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SandboxTests",
            dependencies: [
                "Sandbox", "CallRecordAPI", "Planning", "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOFoundationCompat", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "TokenPoolTests",
            dependencies: [
                "TokenPool", "Ledger", "Planning", "CallRecordAPI", "Sandbox", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(name: "LedgerTests", dependencies: ["Ledger", "Store", "Postgres", "TestSupport"], swiftSettings: strict),
        .testTarget(name: "CLITests", dependencies: ["Postgres", "Store", "Planning", "TestSupport"], swiftSettings: strict),
        .testTarget(
            name: "DaemonTests",
            dependencies: [
                "Daemon", "Config", "Store", "Postgres", "Planning", "TestSupport",
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
    ]
)
