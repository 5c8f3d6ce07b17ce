// swift-tools-version:6.1
import PackageDescription
import Foundation

// Native code generation by default: without it swiftc targets baseline x86-64 (no FMA)
// and SIMD16.addingProduct lowers to scalar fmaf calls. LATENT_PORTABLE=1 builds
// for the toolchain's default target instead (a binary that runs on any x86-64/arm64).
let portable = ProcessInfo.processInfo.environment["LATENT_PORTABLE"].map { $0 != "" && $0 != "0" } ?? false
// On x86-64 also turn off LLVM's "prefer 256-bit vectors" tuning, which its models of
// Intel's AVX-512 cores carry: with it LLVM re-vectorised the SIMD16 arithmetic it had
// scalarised (BCE's log and log1p, Adam's divisions) in 8-, 4- and 1-lane pieces, and the BCE
// loss ran 4x slower on the Xeon machine. (A Clang target feature: Swift's code generation
// takes its target options from the Clang importer.)
#if arch(x86_64)
let wideVectors = ["-Xcc", "-Xclang", "-Xcc", "-target-feature", "-Xcc", "-Xclang", "-Xcc", "-prefer-256-bit"]
#else
let wideVectors: [String] = []
#endif
let speed: [SwiftSetting] = (portable ? [] : [.unsafeFlags(["-target-cpu", "native"] + wideVectors)])
    + [.unsafeFlags(["-enforce-exclusivity=unchecked"])]
let cSpeed: [CSetting] = portable ? [] : [.unsafeFlags(["-march=native"])]
// The libraries are optimised in debug builds too: `swift test` builds debug, and the
// kernels at -Onone are tens of times slower, which made the test suite take a quarter of
// an hour on two cores. Test targets and the CLI keep -Onone for debugging.
let library: [SwiftSetting] = speed + [.unsafeFlags(["-O"], .when(configuration: .debug))]

let package = Package(
    name: "Latent",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "latent", targets: ["latent"]),
        .library(name: "LatentNN", targets: ["LatentNN"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "CLatentSupport", cSettings: cSpeed),
        .target(name: "LatentCore", dependencies: ["CLatentSupport"], swiftSettings: library),
        .target(name: "LatentCPU", dependencies: ["LatentCore", "CLatentSupport"], swiftSettings: library),
        .target(name: "LatentNN", dependencies: ["LatentCore"], swiftSettings: library),
        // The system zlib (zlib1g-dev; part of the SDK on macOS): gzip datasets and PNG deflate.
        .systemLibrary(name: "CZlib", path: "Sources/CZlib"),
        .target(name: "LatentData", dependencies: ["LatentCore", "CZlib"], swiftSettings: library),
        .target(name: "LatentModels", dependencies: ["LatentCore", "LatentNN", "LatentData"], swiftSettings: library),
        .target(name: "LatentExplore", dependencies: ["LatentCore", "LatentNN", "LatentData", "LatentModels"], swiftSettings: library),
        // OpenCL: headers at build time (opencl-headers), libOpenCL opened at run time.
        .target(name: "COpenCL", path: "Sources/COpenCL",
                linkerSettings: [.linkedLibrary("dl", .when(platforms: [.linux]))]),
        .target(name: "LatentKernels", path: "Kernels",
                resources: ["common.clh", "philox.clh", "gemm.cl", "conv.cl", "batchnorm.cl", "elementwise.cl",
                            "reduce.cl", "loss.cl", "optim.cl", "random.cl", "reproducible.cl"].map { .embedInCode($0) }),
        .target(name: "LatentOpenCL", dependencies: ["LatentCore", "COpenCL", "LatentKernels"], swiftSettings: library),
        .target(name: "LatentBench", dependencies: ["LatentCore", "LatentCPU", "LatentNN", "LatentOpenCL"],
                path: "Benchmarks/LatentBench", swiftSettings: speed),
        .executableTarget(
            name: "latent",
            dependencies: [
                "LatentCore", "LatentCPU", "LatentNN", "LatentData", "LatentModels", "LatentBench", "LatentOpenCL",
                "LatentExplore",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            swiftSettings: speed),
        .testTarget(name: "LatentOpenCLTests", dependencies: ["LatentCore", "LatentCPU", "LatentNN", "LatentOpenCL", "LatentModels"],
                    swiftSettings: speed),
        .testTarget(name: "LatentCoreTests", dependencies: ["LatentCore"], swiftSettings: speed),
        .testTarget(name: "LatentCPUTests", dependencies: ["LatentCore", "LatentCPU"], swiftSettings: speed),
        .testTarget(name: "LatentNNTests", dependencies: ["LatentCore", "LatentCPU", "LatentNN"], swiftSettings: speed),
        .testTarget(name: "LatentModelsTests", dependencies: ["LatentCore", "LatentCPU", "LatentNN", "LatentData", "LatentModels", "LatentBench"], swiftSettings: speed),
        .testTarget(name: "LatentDataTests", dependencies: ["LatentCore", "LatentData"], swiftSettings: speed),
        .testTarget(name: "LatentExploreTests", dependencies: ["LatentCore", "LatentCPU", "LatentNN", "LatentData", "LatentModels", "LatentExplore"], swiftSettings: speed),
    ],
    swiftLanguageModes: [.v6]
)
