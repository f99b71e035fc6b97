// swift-tools-version:6.1
import PackageDescription

// A package of its own, so the benchmark dependency (and its malloc
// interposer) never touches the main package's build. Run from this folder:
//   swift package --allow-writing-to-package-directory benchmark
let package = Package(
    name: "SixteenMallocBenchmarks",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Sixteen", path: "../.."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
        // 1.11.0 introduced `LogHandler.log(event:)`, which the control's
        // discarding handler implements (the older entry point is deprecated).
        .package(url: "https://github.com/apple/swift-log", from: "1.11.0"),
    ],
    targets: [
        // The in-process server and the non-allocating client, shared by both executables.
        .target(
            name: "SessionRig",
            dependencies: [
                .product(name: "SixteenServer", package: "Sixteen"),
                .product(name: "SixteenProtocol", package: "Sixteen"),
                .product(name: "Reactor", package: "Sixteen"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        // The same sessions in a plain loop, for whole-process counts (valgrind-check).
        .executableTarget(
            name: "session-loop",
            dependencies: ["SessionRig"]
        ),
        // Steady-state serving, one complete session per iteration, with a
        // client that allocates nothing: malloc counts are process-wide
        // (server reactor thread + client), so 0 means the server allocates
        // nothing per session either.
        .executableTarget(
            name: "Sessions",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                "SessionRig",
            ],
            path: "Benchmarks/Sessions",
            plugins: [
                .plugin(name: "BenchmarkPlugin", package: "benchmark"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
