// swift-tools-version:6.0
// A SwiftNIO peer of Sixteen for the benchmarks: its own package, so the main
// build never carries NIO.
import PackageDescription

let package = Package(
    name: "sixteen-nio",
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.81.0"),
    ],
    targets: [
        .executableTarget(
            name: "sixteen-nio",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
