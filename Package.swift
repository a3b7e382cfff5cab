// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "Pare",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "pare", targets: ["pare"]),
        .library(name: "Pare", targets: ["Pare"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/weichsel/ZIPFoundation", from: "0.9.19"),
        // File descriptors with positioned reads and whole writes that retry on EINTR (BoundedFile, .pare).
        .package(url: "https://github.com/apple/swift-system", from: "1.4.0"),
    ],
    targets: [
        // libhdf5 from Debian's libhdf5-dev; shim.h exposes the macros Swift cannot import.
        .systemLibrary(name: "CHDF5", pkgConfig: "hdf5", providers: [.apt(["libhdf5-dev"])]),
        .target(name: "HDF5", dependencies: ["CHDF5"]),
        // OpenBLAS from Debian's libopenblas-dev, for the interpreter's matrix products.
        .systemLibrary(name: "COpenBLAS", pkgConfig: "openblas", providers: [.apt(["libopenblas-dev"])]),
        // libdeflate from Debian's libdeflate-dev: zlib-format deflate and CRC-32 for .pare.
        .systemLibrary(name: "CLibDeflate", pkgConfig: "libdeflate", providers: [.apt(["libdeflate-dev"])]),
        // The .pare bitmask codec's word loops and the interpreter's direct and depthwise convolutions in
        // C, for AVX2 (compare, movemask, permute; fused multiply-adds), chosen at run time, scalar
        // otherwise: Swift's SIMD types do not lower to them on baseline x86-64.
        .target(name: "CPareKernels"),
        .target(
            name: "Pare",
            dependencies: [
                "HDF5", "COpenBLAS", "CLibDeflate", "CPareKernels", "ZIPFoundation",
                .product(name: "SystemPackage", package: "swift-system"),
            ]),
        // glibc calls Swift cannot make: mallopt (macro constants) and prctl (variadic).
        .target(name: "CProcess"),
        // The command line; its folder is not `Sources/pare`, which a case-insensitive volume merges with `Pare`.
        .executableTarget(
            name: "pare",
            dependencies: [
                "Pare", "HDF5", "CProcess",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/PareCLI"),
        // libFuzzer harnesses (tools/fuzz/README.md): replay tools in a plain build, fuzzers with
        // -sanitize=fuzzer -DFUZZING.
        .target(name: "FuzzerDriver", path: "tools/fuzz/driver"),
        .target(name: "FuzzReplay", dependencies: ["FuzzerDriver"], path: "tools/fuzz/replay"),
        .executableTarget(name: "fuzz-npy", dependencies: ["Pare", "FuzzReplay"], path: "tools/fuzz/npy"),
        .executableTarget(name: "fuzz-config", dependencies: ["Pare", "FuzzReplay"], path: "tools/fuzz/config"),
        .executableTarget(name: "fuzz-pare", dependencies: ["Pare", "FuzzReplay"], path: "tools/fuzz/pare"),
        .executableTarget(
            name: "fuzz-hdf5", dependencies: ["Pare", "HDF5", "CHDF5", "FuzzReplay"], path: "tools/fuzz/hdf5"),
        .testTarget(name: "HDF5Tests", dependencies: ["HDF5", "CHDF5"]),
        .testTarget(name: "PareTests", dependencies: ["Pare", "HDF5", "CPareKernels", "ZIPFoundation"]),
        .testTarget(name: "CLITests", dependencies: ["pare"]),
    ],
    swiftLanguageModes: [.v5]
)
