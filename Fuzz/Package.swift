// swift-tools-version:6.2
import PackageDescription

// Coverage-guided fuzzing of Sixteen's parsers and state machines with
// libFuzzer. A package of its own, beside the main one: an executable that
// defines `LLVMFuzzerTestOneInput` links only with `-sanitize=fuzzer`, so
// inside the main package it would break `swift build` and `swift test`.
// Build and run it with `Fuzz/run` (see README.md), which passes the flags
// these targets need: `-Xswiftc -sanitize=fuzzer,address` (one flag: as
// two, the driver keeps only the last), and `-Xswiftc -enable-testing` for
// the `@testable import SixteenServer` of the OutputQueue and DeadlineHeap
// targets.

/// Swift 6 language mode and warnings as errors, as in the main package.
let strict: [SwiftSetting] = [.treatAllWarnings(as: .error)]

let sixteenProtocol = Target.Dependency.product(name: "SixteenProtocol", package: "Sixteen")
let sixteenServer = Target.Dependency.product(name: "SixteenServer", package: "Sixteen")

/// One executable per parser or machine: `Fuzz<Name>`, its seeds in `Corpus/<Name>/`.
let fuzzTargets: [(name: String, dependencies: [Target.Dependency])] = [
    ("SixteenSession", [sixteenProtocol]),
    ("UpperSession", [sixteenProtocol]),
    ("LoadSession", [sixteenProtocol]),
    ("OutputQueue", [sixteenServer]),
    ("DeadlineHeap", [sixteenServer]),
    ("HTTPRequestParser", [sixteenProtocol]),
    ("ProxyHeaderParser", [sixteenProtocol]),
]

let package = Package(
    name: "SixteenFuzz",
    platforms: [.macOS(.v15)],
    dependencies: [
        .package(name: "Sixteen", path: ".."),
    ],
    targets: [
        // libFuzzer's driver entry, and AddressSanitizer's allocator
        // statistics and malloc hook for the parsers' "bounded memory" and
        // "no allocation" invariants.
        .target(
            name: "CFuzzSupport",
            cSettings: [.treatAllWarnings(as: .error)]
        ),
        // Input decoding, the clock, splits, and the invariant check.
        .target(
            name: "FuzzSupport",
            dependencies: ["CFuzzSupport", sixteenProtocol],
            swiftSettings: strict
        ),
    ] + fuzzTargets.map { target in
        .executableTarget(
            name: "Fuzz" + target.name,
            dependencies: ["FuzzSupport"] + target.dependencies,
            swiftSettings: strict,
            // Linked by the toolchain's lld: Debian's gold stops with an
            // internal error (dwarf_reader.cc:2713) on FuzzUpperSession's
            // sanitized objects, which lld links cleanly.
            linkerSettings: [.unsafeFlags(["-use-ld=lld"])]
        )
    },
    swiftLanguageModes: [.v6]
)
