// swift-tools-version:6.2
import PackageDescription

/// Compiler settings every target shares: Swift 6 language mode (strict
/// concurrency is on by default there) and warnings treated as errors, so
/// "no warnings" is enforced by the build, not by review.
let strict: [SwiftSetting] = [
    .treatAllWarnings(as: .error),
]

let package = Package(
    name: "Sixteen",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "sixteen", targets: ["sixteen"]),
        .library(name: "SixteenServer", targets: ["SixteenServer"]),
        .library(name: "SixteenProtocol", targets: ["SixteenProtocol"]),
        .library(name: "SixteenClient", targets: ["SixteenClient"]),
        .library(name: "Reactor", targets: ["Reactor"]),
    ],
    // Exact versions: `sixteen` is a daemon operators deploy, so two builds
    // of one commit must be the same program. Package.resolved would pin
    // them too, but it is not committed: the package mirror builds resolve
    // from gives other commit ids than GitHub, so a resolved file from one
    // side breaks resolution on the other. Versions move by a commit here.
    // (swift-numerics comes with hdrhistogram-swift, which bounds it.)
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", exact: "0.2.0"),
        // Tests only: generators and shrinking for the state machines' laws (Tests/*/*Properties.swift).
        .package(url: "https://github.com/x-sheep/swift-property-based", exact: "2.0.1"),
    ],
    targets: [
        // libev, from Debian's libev-dev (no pkg-config file: the module map links `ev`).
        .systemLibrary(
            name: "CLibEv",
            path: "CLibEv",
            providers: [.apt(["libev-dev"])]
        ),
        // zlib, from Debian's zlib1g-dev, for the compressed histograms of .hlog files.
        .systemLibrary(
            name: "CZlib",
            path: "CZlib",
            providers: [.apt(["zlib1g-dev"])]
        ),
        // A thin layer over libev: loops, watchers, threads, and socket calls with typed outcomes.
        .target(
            name: "Reactor",
            dependencies: ["CLibEv"],
            swiftSettings: strict
        ),
        // Pure protocol state machines: events in, actions out. No syscalls, no libev, no clock.
        .target(
            name: "SixteenProtocol",
            swiftSettings: strict
        ),
        // The daemon: listeners, accept path, connection table, and the glue that
        // performs the state machines' actions on real sockets.
        .target(
            name: "SixteenServer",
            dependencies: [
                "Reactor", "SixteenProtocol",
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict,
            plugins: ["BuildInfo"]
        ),
        // Writes the git commit and the compiler version into SixteenServer at build time.
        .plugin(
            name: "BuildInfo",
            capability: .buildTool()
        ),
        // The clients: the book's one-shot and deadlock clients, and the load generator.
        .target(
            name: "SixteenClient",
            dependencies: [
                "Reactor", "SixteenProtocol", "CZlib",
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            swiftSettings: strict
        ),
        // The one thin executable.
        .executableTarget(
            name: "sixteen",
            dependencies: [
                "SixteenServer", "SixteenClient", "Reactor",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // Helpers shared by the integration and end-to-end tests (tests may use Foundation).
        .target(
            name: "TestSupport",
            dependencies: [
                "Reactor", "SixteenClient", "SixteenProtocol",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            path: "Tests/TestSupport",
            swiftSettings: strict
        ),
        .testTarget(
            name: "ReactorTests",
            dependencies: ["Reactor"],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SixteenProtocolTests",
            dependencies: [
                "SixteenProtocol", "TestSupport",
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "SixteenServerTests",
            dependencies: [
                "SixteenServer", "SixteenClient", "Reactor", "SixteenProtocol", "TestSupport",
                .product(name: "Logging", package: "swift-log"),
                .product(name: "PropertyBased", package: "swift-property-based"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "EndToEndTests",
            dependencies: ["Reactor", "TestSupport", "SixteenClient", "SixteenProtocol"],
            swiftSettings: strict
        ),
    ],
    swiftLanguageModes: [.v6]
)
