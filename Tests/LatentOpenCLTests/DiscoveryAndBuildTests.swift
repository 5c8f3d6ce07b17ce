import Foundation
import XCTest
import LatentCore
import LatentKernels
@testable import LatentOpenCL

/// Loading, discovery, kernel sources, build errors and the binary cache.
final class DiscoveryAndBuildTests: XCTestCase {
    /// A machine without libOpenCL: discovery reports why, and lists nothing.
    func testMissingLibraryIsUnavailableNotAnError() {
        let result = OpenCLDiscovery.discover(libraryPath: "/nonexistent/latent-test/libOpenCL.so.1")
        XCTAssertTrue(result.devices.isEmpty)
        let problem = result.problem ?? ""
        XCTAssertTrue(problem.contains("OpenCL is not available"), problem)
        XCTAssertTrue(problem.contains("/nonexistent/latent-test/libOpenCL.so.1"), problem)
    }

    func testDiscoveryListsTheTestDevice() throws {
        let backend = try OpenCLTestDevice.backend()
        let device = backend.device
        XCTAssertEqual(device.index, 0)
        XCTAssertFalse(device.name.isEmpty)
        XCTAssertTrue(device.description.hasPrefix("0: "), device.description)
        XCTAssertGreaterThan(device.computeUnits, 0)
        XCTAssertTrue(backend.deviceName.contains(device.name))
    }

    func testUnwritableFolderIsDetected() {
        XCTAssertFalse(OpenCLDiscovery.isWritableOrCreatable("/proc/latent-test/pocl"))
        XCTAssertTrue(OpenCLDiscovery.isWritableOrCreatable(NSTemporaryDirectory() + "latent-test-\(getpid())/pocl"))
    }

    func testEveryKernelFileIsEmbeddedAndAssembled() throws {
        for file in KernelFile.allCases {
            XCTAssertNotNil(KernelSources.files[file.rawValue], file.rawValue)
            let source = try KernelSourceStore.assemble(file)
            XCTAssertTrue(source.contains("#line 1 \"Kernels/\(file.rawValue)\""), file.rawValue)
            XCTAssertTrue(source.contains("#line 1 \"Kernels/common.clh\""), file.rawValue)
        }
    }

    /// Every program builds on the test device with the default options of both variants.
    func testEveryProgramBuilds() throws {
        for variant in OpenCLKernelConfig.GemmVariant.allCases {
            try OpenCLTestDevice.backend(variant).buildAll()
        }
    }

    /// A kernel that does not compile reports our file name, the options and the log.
    func testBuildFailureNamesFileOptionsAndLog() throws {
        let device = try OpenCLTestDevice.backend().device
        let context = try DeviceContext.shared(for: device)
        let source = "#line 1 \"Kernels/broken.cl\"\n__kernel void broken(__global float *x) {\n    x[0] = no_such_function(1);\n}\n"
        XCTAssertThrowsError(try context.build(name: "Kernels/broken.cl", source: source, options: "-cl-std=CL1.2 -D LATENT_TEST=1")) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("Kernels/broken.cl"), message)
            XCTAssertTrue(message.contains("-D LATENT_TEST=1"), message)
            XCTAssertTrue(message.contains("build log"), message)
            XCTAssertTrue(message.contains("no_such_function"), message)
            XCTAssertTrue(message.contains("broken.cl:2:"), "the log points at our file and line: \(message)")
        }
    }

    func testBinaryCacheRoundTripAndKeyCheck() throws {
        let device = try OpenCLTestDevice.backend().device
        let folder = URL(fileURLWithPath: NSTemporaryDirectory()).appendingPathComponent("latent-cache-test-\(getpid())")
        defer { try? FileManager.default.removeItem(at: folder) }
        let key = KernelBinaryCache.key(source: "kernel text", options: "-D A=1", device: device)
        XCTAssertNil(KernelBinaryCache.load(key: key, in: folder))
        KernelBinaryCache.store(key: key, binary: [1, 2, 3, 4], in: folder)
        XCTAssertEqual(KernelBinaryCache.load(key: key, in: folder), [1, 2, 3, 4])
        let other = KernelBinaryCache.key(source: "kernel text", options: "-D A=2", device: device)
        XCTAssertNotEqual(key, other)
        XCTAssertNil(KernelBinaryCache.load(key: other, in: folder))
        // A file whose stored key differs (a hash collision) is never used.
        if let url = KernelBinaryCache.fileURL(key: key, in: folder), let otherURL = KernelBinaryCache.fileURL(key: other, in: folder) {
            try FileManager.default.copyItem(at: url, to: otherURL)
            XCTAssertNil(KernelBinaryCache.load(key: other, in: folder))
        }
        XCTAssertNil(KernelBinaryCache.load(key: key, in: nil))
    }

    /// CPU-class launches get enough work-groups for PoCL's threads to balance: the conv
    /// VAE's kernels, a row count with no divisor in between, sizes past the device's limit.
    func testBalancedLocalSizes() throws {
        let device = try OpenCLTestDevice.backend().device
        var config = OpenCLKernelConfig.defaults(for: device)
        config.gemm = .block
        config.minimumGroups = 256
        XCTAssertEqual(config.balancedLocalSize(global: [4, 49, 22], maxGroupSize: 4096), [4, 1, 1])
        XCTAssertEqual(config.balancedLocalSize(global: [4, 196, 11], maxGroupSize: 4096), [4, 7, 1])
        XCTAssertEqual(config.balancedLocalSize(global: [342, 32], maxGroupSize: 4096), [342, 1])
        XCTAssertEqual(config.balancedLocalSize(global: [2, 1046], maxGroupSize: 4096), [2, 2])
        XCTAssertEqual(config.balancedLocalSize(global: [3, 1021], maxGroupSize: 4096), [3, 1])
        XCTAssertEqual(config.balancedLocalSize(global: [64, 512], maxGroupSize: 64), [64, 1])
        // Per-dimension limits: enough work-groups with 49 rows, but at most 8 are allowed there.
        XCTAssertEqual(config.balancedLocalSize(global: [4, 49, 1024], maxGroupSize: 4096), [4, 49, 1])
        XCTAssertEqual(config.balancedLocalSize(global: [4, 49, 1024], maxGroupSize: 4096, maxItems: [4096, 8, 8]), [4, 7, 1])
        XCTAssertNil(config.balancedLocalSize(global: [342, 32], maxGroupSize: 4096, maxItems: [256, 256, 256]))
        XCTAssertGreaterThanOrEqual(device.maxWorkItemSizes.count, 3, "CL_DEVICE_MAX_WORK_ITEM_SIZES")
        XCTAssertTrue(device.maxWorkItemSizes.allSatisfy { $0 > 0 }, "\(device.maxWorkItemSizes)")
        XCTAssertNil(config.balancedLocalSize(global: [6272, 11], maxGroupSize: 4096))
        XCTAssertNil(config.balancedLocalSize(global: [401408], maxGroupSize: 4096))
        config.minimumGroups = 4
        XCTAssertEqual(config.balancedLocalSize(global: [4, 49, 2], maxGroupSize: 4096), [4, 7, 1])
        XCTAssertEqual(config.balancedLocalSize(global: [4, 49, 4], maxGroupSize: 4096), [4, 49, 1])
        XCTAssertEqual(config.balancedLocalSize(global: [16, 1024], maxGroupSize: 1024), [16, 64])
        config.minimumGroups = 0
        XCTAssertNil(config.balancedLocalSize(global: [4, 49, 22], maxGroupSize: 4096))
        config.minimumGroups = 256
        config.gemm = .tiled
        XCTAssertNil(config.balancedLocalSize(global: [4, 49, 22], maxGroupSize: 4096))
    }

    func testTunablesFromEnvironmentAreValidated() throws {
        let device = try OpenCLTestDevice.backend().device
        let invalid: [(String, (inout OpenCLKernelConfig) -> Void)] = [
            ("TILE_M not a multiple of WPT_M", { $0.tileM = 60; $0.wptM = 7 }),
            ("REDUCE_WG not a power of two", { $0.reduceGroup = 48 }),
            ("GEMM_ROWS_LARGE past 16", { $0.gemmRowsLarge = 17 }),
            ("BW_WIDTH neither 8 nor 16", { $0.weightGradientWidth = 12 }),
            ("BW_R past 8", { $0.weightGradientRows = 9 }),
            ("BD_POS past 8", { $0.narrowBackwardDataPositions = 9 }),
            ("EW_VEC past 256", { $0.elementsPerItem = 257 }),
        ]
        for (name, change) in invalid {
            var config = OpenCLKernelConfig.defaults(for: device)
            change(&config)
            XCTAssertThrowsError(try config.validate(for: device), name)
        }
    }

    /// 16 elements per work-item of the FOR_ELEMENTS kernels on CPU-class devices, 1 on GPUs,
    /// and the value reaches the kernels' build options.
    func testElementsPerItemFollowTheDeviceClass() throws {
        let device = try OpenCLTestDevice.backend().device
        let config = OpenCLKernelConfig.defaults(for: device)
        XCTAssertEqual(config.elementsPerItem, config.gemm == .block ? 16 : 1)
        XCTAssertTrue(config.defines().contains("-D EW_VEC=\(config.elementsPerItem)"))
    }

    /// The block SGEMM's rows follow the device's native float vector: 6 where a float16
    /// takes two registers, 8 where it takes one, and then 12 from the large threshold on; the
    /// weight gradient's block 4 x 3 float8 where a float16 takes two registers, else 4 x 4 float16.
    func testBlockRowsFollowTheVectorWidth() throws {
        let device = try OpenCLTestDevice.backend().device
        let config = OpenCLKernelConfig.defaults(for: device)
        guard config.gemm == .block else { throw XCTSkip("a GPU-class device: the tiled SGEMM") }
        if device.nativeFloatVectorWidth >= 16 || device.nativeFloatVectorWidth == 0 {
            XCTAssertEqual([config.gemmRows, config.gemmRowsLarge], [8, 12])
            XCTAssertEqual([config.weightGradientChannels, config.weightGradientRows, config.weightGradientWidth], [4, 4, 16])
        } else {
            XCTAssertEqual([config.gemmRows, config.gemmRowsLarge], [6, 6])
            XCTAssertEqual([config.weightGradientChannels, config.weightGradientRows, config.weightGradientWidth], [4, 3, 8])
        }
        let limit = config.gemmLargeMinimum
        XCTAssertEqual(config.blockRows(m: limit, n: limit, k: limit), config.gemmRowsLarge)
        XCTAssertEqual(config.blockRows(m: limit - 1, n: 4 * limit, k: 4 * limit), config.gemmRows)
        XCTAssertEqual(config.blockRows(m: 4 * limit, n: 4 * limit, k: limit - 1), config.gemmRows)
    }

    /// Other tile sizes (through the same -D tunables) still match the CPU.
    func testOtherTileSizes() throws {
        let device = try OpenCLTestDevice.backend().device
        var tiled = OpenCLKernelConfig(gemm: .tiled, reduceGroup: 32)
        tiled.tileM = 32; tiled.tileN = 16; tiled.tileK = 8; tiled.wptM = 2; tiled.wptN = 2
        var block = OpenCLKernelConfig(gemm: .block, reduceGroup: 128)
        block.gemmRows = 5
        for config in [tiled, block] {
            let pair = Pair(try OpenCLBackend(device: device, config: config))
            var random = TestRandom(seed: 3)
            let (m, n, k) = (37, 29, 45)
            let a = try pair.buffers(random.array(m * k)), b = try pair.buffers(random.array(n * k))
            let c = try pair.buffers(random.array(m * n))
            try pair.cpu.gemm(transA: .none, transB: .transposed, m: m, n: n, k: k, alpha: 1, a: a.cpu, lda: k, b: b.cpu, ldb: k, beta: 1, c: c.cpu, ldc: n)
            try pair.cl.gemm(transA: .none, transB: .transposed, m: m, n: n, k: k, alpha: 1, a: a.cl, lda: k, b: b.cl, ldb: k, beta: 1, c: c.cl, ldc: n)
            try pair.assertSame(c, tolerance: 1e-5, "\(config)")
            let x = try pair.buffers(random.array(5 * 3 * 17))
            let out = try pair.buffers([0, 0, 0])
            try pair.cpu.channelSum(input: x.cpu, output: out.cpu, batch: 5, channels: 3, spatial: 17, accumulate: false)
            try pair.cl.channelSum(input: x.cl, output: out.cl, batch: 5, channels: 3, spatial: 17, accumulate: false)
            try pair.assertSame(out, tolerance: 1e-6, "\(config)")
        }
    }
}
