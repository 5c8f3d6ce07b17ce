import Foundation
import XCTest
import LatentCore
import LatentKernels
@testable import LatentOpenCL

/// OpenCL faults (docs/RELIABILITY.md, issue 8 item 6): each is one clear line, never a
/// trap. The CLI side (exit 1, one stderr line, `--backend auto` falling back) is in
/// scripts/fault-test.
final class OpenCLFaultTests: XCTestCase {
    /// Sets environment variables for the length of `body` (the backend reads
    /// LATENT_KERNEL_DIR and LATENT_OPENCL_OPTIONS at each build).
    private func withEnvironment<T>(_ values: [String: String], _ body: () throws -> T) rethrows -> T {
        let previous = values.keys.map { ($0, getenv($0).map { String(cString: $0) }) }
        for (name, value) in values { setenv(name, value, 1) }
        defer {
            for (name, value) in previous {
                if let value { setenv(name, value, 1) } else { unsetenv(name) }
            }
        }
        return try body()
    }

    /// Build options no earlier build used, so the process's program cache cannot answer.
    private func freshOptions() -> String { "-D LATENT_FAULT_TEST=\(UInt32.random(in: 1...UInt32.max))" }

    private func temporaryFolder() throws -> URL {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("latent-opencl-fault-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: folder, withIntermediateDirectories: true)
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        return folder
    }

    /// A kernel file that does not compile, loaded through LATENT_KERNEL_DIR: the error names
    /// that file and line (not PoCL's temporary copy), the build options and the compiler's
    /// message, on one line.
    func testBrokenKernelSourceNamesFileOptionsAndLogOnOneLine() throws {
        let backend = try OpenCLTestDevice.backend()
        let folder = try temporaryFolder()
        for (name, text) in KernelSources.files {
            var text = text
            if name == "elementwise.cl" { text = "__kernel void broken(__global float *x) { x[0] = no_such_function(1); }\n" + text }
            try Data(text.utf8).write(to: folder.appendingPathComponent(name))
        }
        let options = freshOptions()
        try withEnvironment(["LATENT_KERNEL_DIR": folder.path, "LATENT_OPENCL_OPTIONS": options]) {
            XCTAssertThrowsError(try backend.makeBuffer(count: 16)) { error in
                let message = "\(error)"
                XCTAssertTrue(message.hasPrefix("backend error: OpenCL could not build \(folder.path)/elementwise.cl"), message)
                XCTAssertTrue(message.contains(options), "names the build options: \(message)")
                XCTAssertTrue(message.contains("CL_BUILD_PROGRAM_FAILURE"), message)
                XCTAssertTrue(message.contains("elementwise.cl:1:"), "points at our file and line: \(message)")
                XCTAssertTrue(message.contains("no_such_function"), "carries the build log: \(message)")
                XCTAssertFalse(message.contains("\n"), "one line: \(message)")
                XCTAssertFalse(message.contains("generated."), message)
            }
        }
        // The good sources still build afterwards: nothing broken was cached.
        let buffer = try backend.makeBuffer(count: 16)
        XCTAssertEqual(buffer.count, 16)
    }

    /// NVIDIA's compiler ignores `#line` and names lines of the text it was given
    /// `<kernel>:LINE` (seen on an H200, 2026-12-04); the message names our file and line all
    /// the same, keeps a located warning beside a link error, and drops its per-kernel notes.
    func testNVIDIAStyleBuildLogNamesOurFileAndLine() {
        let source = "#line 1 \"Kernels/common.clh\"\nA\nB\n\n#line 1 \"Kernels/optim.cl\"\n__kernel void k(__global float *x) {\n  x[0] = y;\n}\n"
        let log = "<kernel>:7:10: error: use of undeclared identifier 'y'\n<kernel>:2:1: warning: odd\n"
            + "(): Warning: Function k is a kernel, so overriding noinline attribute. The function may be inlined when called.\n"
        let named = DeviceContext.namingOurLines(log, source: source)
        XCTAssertTrue(named.contains("Kernels/optim.cl:2:10: error: use of undeclared identifier 'y'"), named)
        XCTAssertTrue(named.contains("Kernels/common.clh:1:1: warning"), named)
        XCTAssertFalse(DeviceContext.condensed(named).contains("noinline"), DeviceContext.condensed(named))
        let linkLog = "<kernel>:7:12: warning: implicit declaration of function 'no_such_function' is invalid in OpenCL\n"
            + "  x[0] = no_such_function(1);\n(): Warning: Function k is a kernel, so overriding noinline attribute.\n"
            + "ptxas fatal   : Unresolved extern function 'no_such_function'\n"
        let condensed = DeviceContext.condensed(DeviceContext.namingOurLines(linkLog, source: source))
        XCTAssertEqual(condensed, "Kernels/optim.cl:2:12: warning: implicit declaration of function 'no_such_function' is invalid in OpenCL"
                       + " | ptxas fatal   : Unresolved extern function 'no_such_function'")
        XCTAssertEqual(DeviceContext.namingOurLines("plain log", source: source), "plain log")
    }

    /// Reproducible mode sums in double: a device without it is refused in one clear line.
    func testReproducibleModeNeedsDoublePrecision() throws {
        var device = try OpenCLTestDevice.backend().device
        device.hasFP64 = false
        XCTAssertThrowsError(try OpenCLBackend(device: device, reproducible: true)) { error in
            XCTAssertEqual("\(error)", "backend error: --reproducible sums in double precision, which OpenCL device \(device.name) "
                           + "lacks (no cl_khr_fp64); use --backend cpu")
        }
        XCTAssertFalse(try OpenCLBackend(device: device).reproducible, "the default mode does not need doubles")
    }

    /// The embedded sources are named `Kernels/FILE` in build errors.
    func testEmbeddedSourcesAreNamedAsKernelsFiles() throws {
        let device = try OpenCLTestDevice.backend().device
        let context = try DeviceContext.shared(for: device)
        let source = "#line 1 \"\(KernelSourceStore.displayName("optim.cl"))\"\n__kernel void k(__global float *x) {\n  x[0] = y;\n}\n"
        XCTAssertThrowsError(try context.build(name: KernelSourceStore.displayName("optim.cl"), source: source, options: freshOptions())) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("could not build Kernels/optim.cl for"), message)
            XCTAssertTrue(message.contains("build log: ") && message.contains("Kernels/optim.cl:2:"), message)
            XCTAssertFalse(message.contains("\n"), message)
        }
    }

    /// The build log condensed to its error lines.
    func testBuildLogIsCondensedToItsErrors() {
        let log = "warning: Kernels/a.cl:1:2: unused\nerror: Kernels/a.cl:3:4: bad thing\n\n2 errors generated.\nerror: Kernels/a.cl:5:6: other\n"
        XCTAssertEqual(DeviceContext.condensed(log), "error: Kernels/a.cl:3:4: bad thing | error: Kernels/a.cl:5:6: other")
        XCTAssertEqual(DeviceContext.condensed("just text\nmore"), "just text | more")
        XCTAssertEqual(DeviceContext.condensed(""), "(empty)")
        XCTAssertEqual(DeviceContext.condensed(String(repeating: "error x\n", count: 1000)).count, 2002)
    }

    /// LATENT_KERNEL_DIR naming an empty or missing folder: the first file that is not
    /// there is named, with the variable.
    func testMissingKernelFilesAreAClearError() throws {
        let backend = try OpenCLTestDevice.backend()
        let empty = try temporaryFolder()
        for folder in [empty.path, empty.path + "/no-such-folder"] {
            try withEnvironment(["LATENT_KERNEL_DIR": folder, "LATENT_OPENCL_OPTIONS": freshOptions()]) {
                XCTAssertThrowsError(try backend.makeBuffer(count: 16)) { error in
                    XCTAssertEqual("\(error)", "I/O error: cannot read kernel source \(folder)/common.clh (LATENT_KERNEL_DIR=\(folder))")
                }
            }
        }
    }

    /// A buffer larger than CL_DEVICE_MAX_MEM_ALLOC_SIZE, or than the kernels' 32-bit
    /// indices, is refused before the driver is asked.
    func testBufferAboveTheDeviceLimitsIsRefused() throws {
        let backend = try OpenCLTestDevice.backend()
        let budget = try DeviceMemoryBudget(device: backend.device, environment: [:])
        XCTAssertGreaterThan(budget.maxAllocationBytes, 0)
        XCTAssertThrowsError(try budget.reserve(Int(budget.maxAllocationBytes) + 4)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("takes at most") && message.contains("CL_DEVICE_MAX_MEM_ALLOC_SIZE"), message)
            XCTAssertTrue(message.hasSuffix("try a smaller --batch-size"), message)
        }
        XCTAssertEqual(budget.heldBytes, 0)
        XCTAssertThrowsError(try backend.makeBuffer(count: Int(Int32.max))) { error in
            XCTAssertTrue("\(error)".contains("beyond the OpenCL kernels' 32-bit indices; try a smaller --batch-size"), "\(error)")
        }
    }

    /// Buffers beyond the device's memory (here a limit just above what is held) are
    /// refused with what is held and what was asked; the backend keeps working, and the
    /// count of held memory goes back to where it was when the buffers are freed.
    func testAllocationBeyondTheDeviceMemoryIsRefusedAndTheBackendGoesOn() throws {
        let backend = try OpenCLTestDevice.backend()
        let budget = backend.shared.memory
        _ = try backend.makeBuffer(count: 1)   // programs built, scratch made
        let before = budget.heldBytes
        let previous = budget.setLimit(before + (2 << 20), source: "the test's limit")
        defer { budget.setLimit(previous.bytes, source: previous.source) }
        var kept: [any DeviceBuffer] = []
        for _ in 0..<3 { kept.append(try backend.makeBuffer(count: 100_000)) }   // 1.2 MB
        XCTAssertEqual(budget.heldBytes, before + 1_200_000)
        XCTAssertThrowsError(try backend.makeBuffer(count: 1 << 20)) { error in
            let message = "\(error)"
            XCTAssertTrue(message.contains("is out of memory: an op needs 4.0 MB more, Latent holds"), message)
            XCTAssertTrue(message.contains("of the test's limit; try a smaller --batch-size"), message)
        }
        XCTAssertEqual(budget.heldBytes, before + 1_200_000, "a refused buffer holds nothing")
        let values: [Float] = [1, 2, 3]
        let small = try backend.makeBuffer(count: 3)
        try values.withUnsafeBufferPointer { try backend.write($0, to: BufferView(small)) }
        var back = [Float](repeating: 0, count: 3)
        try back.withUnsafeMutableBufferPointer { try backend.read(BufferView(small), into: $0) }
        XCTAssertEqual(back, values)
        kept.removeAll()
        XCTAssertEqual(budget.heldBytes, before + 12)
    }

    func testInvalidMemoryLimitIsRefused() throws {
        let device = try OpenCLTestDevice.backend().device
        for text in ["abc", "0", "-5", "1.5"] {
            XCTAssertThrowsError(try DeviceMemoryBudget(device: device, environment: ["LATENT_OPENCL_MEMORY_MB": text])) { error in
                XCTAssertEqual("\(error)", "invalid argument: LATENT_OPENCL_MEMORY_MB=\(text) is not a positive number of megabytes")
            }
        }
        let budget = try DeviceMemoryBudget(device: device, environment: ["LATENT_OPENCL_MEMORY_MB": "1"])
        XCTAssertThrowsError(try budget.reserve(2 << 20)) { error in
            XCTAssertTrue("\(error)".contains("of the 1.0 MB of LATENT_OPENCL_MEMORY_MB"), "\(error)")
        }
    }

    /// Running out of device memory at a launch (GPU drivers allocate lazily) says so.
    func testOutOfMemoryAtLaunchSaysSo() {
        for code: Int32 in [-4, -6] {
            XCTAssertThrowsError(try CL.check(code, "launch of fill")) { error in
                XCTAssertTrue("\(error)".hasSuffix("the device ran out of memory, try a smaller --batch-size"), "\(error)")
            }
        }
        // CL_OUT_OF_RESOURCES may also be a work-group too large for the kernel's registers.
        XCTAssertThrowsError(try CL.check(-5, "launch of fill")) { error in
            XCTAssertTrue("\(error)".hasSuffix("the device ran out of memory or of resources for this launch, try a smaller --batch-size"), "\(error)")
        }
        XCTAssertThrowsError(try CL.check(-30, "launch of fill")) { error in
            XCTAssertEqual("\(error)", "backend error: OpenCL launch of fill failed: CL_INVALID_VALUE (-30)")
        }
    }

    /// A device index that does not exist.
    func testInvalidDeviceIndex() throws {
        _ = try OpenCLTestDevice.backend()
        let count = OpenCLDiscovery.discover().devices.count
        XCTAssertThrowsError(try OpenCLBackend(deviceIndex: count + 7)) { error in
            XCTAssertTrue("\(error)".hasPrefix("invalid argument: there is no OpenCL device \(count + 7); `latent devices` lists"), "\(error)")
        }
    }
}
