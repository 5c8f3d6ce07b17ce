import Foundation
import LatentCore

/// The CPU backend's two convolution algorithms.
public enum ConvolutionPath: String, Sendable {
    /// Batch-inner layout and implicit GEMM for batches of 16 and more (Winograd for the
    /// 4x4 stride-2 and 3x3 stride-1 layers with enough channels), im2col below.
    case automatic
    /// im2col + GEMM, col2im for backward-data (`CPUBackend+Conv.swift`).
    case im2col
    /// Batch-inner layout and direct implicit GEMM at every batch size (`CPUConvBatchInner.swift`).
    case batchInner = "batch-inner"
    /// Batch-inner at every batch size, with Winograd F(4x4, 2x2) for every pass of a 4x4
    /// stride-2 layer (`CPUConvWinograd.swift`; automatic takes it from 8 input and 16 output
    /// channels) and F(4x4, 3x3) for every pass of a 3x3 stride-1 layer
    /// (`CPUConvWinograd3x3.swift`; automatic from 16 channels on both sides).
    case winograd
}

/// The SIMD CPU backend: every op of `Backend` in Swift SIMD types, on `threads` cores.
/// Ops run synchronously on the calling thread (plus workers), so `synchronize` is free.
/// The ops live in one extension per family beside this file.
public final class CPUBackend: Backend {
    public let name = "cpu"
    public let parallel: CPUParallel
    /// How convolutions run (see `ConvolutionPath`).
    public let convolutionPath: ConvolutionPath
    /// Winograd's transformed filters while the weights are unchanged (`WinogradFilterCache`).
    let winogradFilters = WinogradFilterCache()
    /// Sums in Double in one fixed order, the same bits as the OpenCL backend's reproducible
    /// mode (`CPUBackend+Reproducible.swift`); several times slower.
    public let reproducible: Bool

    /// `convolution` nil: `LATENT_CPU_CONV` (`im2col`, `batch-inner`, `winograd`), else automatic.
    public init(threads: Int? = nil, convolution: ConvolutionPath? = nil, reproducible: Bool = false) {
        parallel = CPUParallel(threadCount: threads ?? CPUParallel.defaultThreadCount)
        convolutionPath = convolution ?? ProcessInfo.processInfo.environment["LATENT_CPU_CONV"].flatMap(ConvolutionPath.init(rawValue:)) ?? .automatic
        self.reproducible = reproducible
    }

    public var deviceName: String {
        "\(CPUInfo.modelName), \(parallel.threadCount) thread(s), \(CPUInfo.simdDescription)\(reproducible ? ", reproducible sums" : "")"
    }

    public func makeBuffer(count: Int) throws -> any DeviceBuffer {
        guard count >= 0 else { throw LatentError.invalidArgument("buffer size \(count) is negative") }
        guard count <= Int(Int32.max) * 8 else { throw LatentError.backend("cannot allocate \(count) floats") }
        return CPUBuffer(count: count)
    }

    public func write(_ values: UnsafeBufferPointer<Float>, to destination: BufferView) throws {
        guard values.count == destination.count else {
            throw LatentError.shape("writing \(values.count) floats into a view of \(destination.count)")
        }
        guard let base = values.baseAddress else { return }
        try destination.cpuPointer().update(from: base, count: values.count)
    }

    public func read(_ source: BufferView, into values: UnsafeMutableBufferPointer<Float>) throws {
        guard values.count == source.count else {
            throw LatentError.shape("reading \(source.count) floats into \(values.count)")
        }
        guard let base = values.baseAddress else { return }
        base.update(from: try source.cpuPointer(), count: values.count)
    }

    public func synchronize() throws {}

    public func gemm(transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int,
                     alpha: Float, a: BufferView, lda: Int, b: BufferView, ldb: Int,
                     beta: Float, c: BufferView, ldc: Int) throws {
        try GEMMArguments.check(transA: transA, transB: transB, m: m, n: n, k: k,
                                a: a.count, lda: lda, b: b.count, ldb: ldb, c: c.count, ldc: ldc)
        if reproducible {
            return reproducibleGemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                                    a: try a.cpuPointer(), lda: lda, b: try b.cpuPointer(), ldb: ldb,
                                    beta: beta, c: try c.cpuPointer(), ldc: ldc)
        }
        CPUGemm.sgemm(transA: transA, transB: transB, m: m, n: n, k: k, alpha: alpha,
                      a: try a.cpuPointer(), lda: lda, b: try b.cpuPointer(), ldb: ldb,
                      beta: beta, c: try c.cpuPointer(), ldc: ldc, parallel: parallel)
    }
}
