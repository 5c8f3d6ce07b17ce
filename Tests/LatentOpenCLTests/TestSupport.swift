import Foundation
import XCTest
import LatentCore
import LatentCPU
@testable import LatentOpenCL

/// The OpenCL device under test (the first one: PoCL on CI), or a skip. With
/// `LATENT_REQUIRE_OPENCL=1` (CI) a missing device fails the test instead of skipping it.
enum OpenCLTestDevice {
    static let discovery = OpenCLDiscovery.discover()

    static func backend(_ variant: OpenCLKernelConfig.GemmVariant? = nil,
                        convolution: OpenCLKernelConfig.ConvolutionVariant? = nil, elementsPerItem: Int? = nil,
                        reproducible: Bool = false,
                        file: StaticString = #filePath, line: UInt = #line) throws -> OpenCLBackend {
        guard let device = discovery.devices.first else {
            let reason = discovery.problem ?? "no OpenCL device"
            if ProcessInfo.processInfo.environment["LATENT_REQUIRE_OPENCL"] == "1" {
                XCTFail("LATENT_REQUIRE_OPENCL=1 but \(reason)", file: file, line: line)
                throw LatentError.backend(reason)
            }
            throw XCTSkip("OpenCL tests skipped: \(reason)")
        }
        var config = OpenCLKernelConfig.defaults(for: device)
        if let variant { config.gemm = variant }
        if let convolution { config.convolution = convolution }
        if let elementsPerItem { config.elementsPerItem = elementsPerItem }
        reportOnce(device)
        return try OpenCLBackend(device: device, config: config, reproducible: reproducible)
    }

    /// Backends for the `FOR_ELEMENTS` kernels: the device's default run of elements per
    /// work-item (16 on PoCL), one (GPUs' default) and three (runs that end mid-vector).
    static func elementBackends(file: StaticString = #filePath, line: UInt = #line) throws -> [OpenCLBackend] {
        try [nil, 1, 3].map { try backend(elementsPerItem: $0, file: file, line: line) }
    }

    private static let reported = ReportedFlag()

    /// One marker line in the test log, which .ci/run looks for.
    private static func reportOnce(_ device: OpenCLDeviceInfo) {
        if reported.setOnce() { print("LATENT_OPENCL_TESTS_RAN on \(device.name) (\(device.platformName))") }
    }
}

private final class ReportedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    func setOnce() -> Bool {
        lock.lock()
        defer { lock.unlock() }
        if done { return false }
        done = true
        return true
    }
}

/// The same data on the CPU backend and an OpenCL backend.
struct Pair {
    let cpu = CPUBackend(threads: 2)
    let cl: OpenCLBackend

    init(_ cl: OpenCLBackend) { self.cl = cl }

    /// A buffer holding `values` on each backend, optionally inside a larger buffer at
    /// `offset` (to exercise view offsets).
    func buffers(_ values: [Float], offset: Int = 0) throws -> (cpu: BufferView, cl: BufferView) {
        let padded = [Float](repeating: -7, count: offset) + values + [Float](repeating: -9, count: 3)
        let cpuBuffer = try cpu.makeBuffer(count: padded.count)
        let clBuffer = try cl.makeBuffer(count: padded.count)
        let cpuView = try BufferView(cpuBuffer, offset: 0, count: padded.count)
        let clView = try BufferView(clBuffer, offset: 0, count: padded.count)
        try padded.withUnsafeBufferPointer { try cpu.write($0, to: cpuView) }
        try padded.withUnsafeBufferPointer { try cl.write($0, to: clView) }
        return (try BufferView(cpuBuffer, offset: offset, count: values.count),
                try BufferView(clBuffer, offset: offset, count: values.count))
    }

    func read(_ views: (cpu: BufferView, cl: BufferView)) throws -> (cpu: [Float], cl: [Float]) {
        (try read(cpu, views.cpu), try read(cl, views.cl))
    }

    func read(_ backend: any Backend, _ view: BufferView) throws -> [Float] {
        var values = [Float](repeating: 0, count: view.count)
        try values.withUnsafeMutableBufferPointer { try backend.read(view, into: $0) }
        return values
    }

    /// Reads both and compares them with `assertScaled`.
    func assertSame(_ views: (cpu: BufferView, cl: BufferView), tolerance: Float = 1e-5, scale: Float = 0,
                    _ message: String = "", file: StaticString = #filePath, line: UInt = #line) throws {
        let (expected, actual) = try read(views)
        assertScaled(actual, expected, tolerance: tolerance, scale: scale, labelled(message), file: file, line: line)
    }

    /// Reads both and requires identical bits.
    func assertIdentical(_ views: (cpu: BufferView, cl: BufferView), _ message: String = "",
                         file: StaticString = #filePath, line: UInt = #line) throws {
        let (expected, actual) = try read(views)
        assertBitIdentical(actual, expected, labelled(message), file: file, line: line)
    }

    /// `message` with the kernels' run length, which `elementBackends` varies within one test.
    private func labelled(_ message: String) -> String { "\(message) (EW_VEC \(cl.config.elementsPerItem))" }
}

/// `|a - b| <= tolerance * max(|b|, scale)` elementwise, where `scale` is the largest
/// magnitude in `expected`: errors relative to the values' scale, so that a near-zero
/// element of a sum of large terms is not held to a relative bound it cannot meet.
/// `scale` raises that floor where the inputs' scale is known to exceed the result's.
func assertScaled(_ actual: [Float], _ expected: [Float], tolerance: Float = 1e-5, scale minimumScale: Float = 0,
                  _ message: String = "", file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "count \(message)", file: file, line: line)
    let scale = expected.reduce(minimumScale) { Swift.max($0, $1.isFinite ? abs($1) : 0) }
    var worst = -1, worstRatio: Float = 1
    for i in 0..<Swift.min(actual.count, expected.count) {
        let a = actual[i], b = expected[i]
        if a == b || (a.isNaN && b.isNaN) { continue }
        let bound = tolerance * Swift.max(abs(b), scale, Float.leastNormalMagnitude)
        let ratio = abs(a - b) / bound
        if !(ratio <= worstRatio) {
            worst = i
            worstRatio = ratio.isNaN ? .infinity : ratio
        }
    }
    if worst >= 0 {
        XCTFail("element \(worst) of \(actual.count): \(actual[worst]) vs CPU \(expected[worst]) (scale \(scale), "
                + "error \(worstRatio)x the tolerance \(tolerance)) \(message)", file: file, line: line)
    }
}

func assertBitIdentical(_ actual: [Float], _ expected: [Float], _ message: String = "",
                        file: StaticString = #filePath, line: UInt = #line) {
    XCTAssertEqual(actual.count, expected.count, "count \(message)", file: file, line: line)
    for i in 0..<Swift.min(actual.count, expected.count) where actual[i].bitPattern != expected[i].bitPattern {
        XCTFail("element \(i) of \(actual.count): \(actual[i]) (0x\(String(actual[i].bitPattern, radix: 16))) vs CPU "
                + "\(expected[i]) (0x\(String(expected[i].bitPattern, radix: 16))) \(message)", file: file, line: line)
        return
    }
}

/// SplitMix64 test data, independent of Philox.
struct TestRandom {
    var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func nextBits() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func uniform(_ low: Float = -1, _ high: Float = 1) -> Float {
        low + (high - low) * Float(nextBits() >> 40) * 0x1p-24
    }

    mutating func array(_ count: Int, _ low: Float = -1, _ high: Float = 1) -> [Float] {
        (0..<count).map { _ in uniform(low, high) }
    }
}
