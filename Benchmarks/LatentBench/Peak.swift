import Dispatch
import LatentCPU

/// The FP32 peak that shares of peak are stated against. Two figures:
/// - nominal: `threads * 2 FMA pipes * SIMD lanes * 2 flops * cpu MHz` from /proc/cpuinfo
///   (`CPUInfo.peakGFLOPS`), which ignores turbo;
/// - measured: independent SIMD FMAs with no memory traffic, run on all threads at once.
///   It is the clock the cores really sustain, so shares against it are the honest ones
///   (a virtual machine's nominal MHz can be far below its boost clock).
public enum Peak {
    public static func measuredGFLOPS(threads: Int) -> Double {
        let iterations = 4_000_000
        _ = runChains(iterations: 10_000, seed: 1)
        let clock = ContinuousClock()
        var best = Double.infinity
        for _ in 0..<3 {
            let start = clock.now
            DispatchQueue.concurrentPerform(iterations: threads) { thread in
                blackHole(runChains(iterations: iterations, seed: Float(thread)))
            }
            best = min(best, Timing.seconds(clock.now - start))
        }
        return Double(threads) * Double(iterations) * Double(chains * 16 * 2) / best / 1e9
    }

    /// Independent SIMD16 FMA chains per thread: 12 (AVX-512: 12 zmm), or 6 where a SIMD16 takes
    /// two registers of 16 (AVX2: 12 ymm; 12 chains would spill and measure the stack).
    static var chains: Int { RegisterFile.narrow ? 6 : 12 }

    /// The `chains`-chain loop this machine's register file holds.
    static func runChains(iterations: Int, seed: Float) -> Float {
        RegisterFile.narrow ? sixFMAChains(iterations: iterations, seed: seed) : fmaChains(iterations: iterations, seed: seed)
    }

    /// Memory bandwidth the memory-bound ops are stated against: `y = a * x + y` over two
    /// 32 MiB vectors (together twice this machine's 32 MiB L3, so DRAM-bound), split over `threads`, counting
    /// the 12 bytes each element moves; the best of five passes. Ops on data that fits in
    /// cache can exceed it (a share above 100%).
    public static func measuredGBPS(threads: Int) -> Double {
        let count = 8 << 20
        let x = UnsafeMutablePointer<Float>.allocate(capacity: count)
        let y = UnsafeMutablePointer<Float>.allocate(capacity: count)
        defer { x.deallocate(); y.deallocate() }
        x.initialize(repeating: 1, count: count)
        y.initialize(repeating: 2, count: count)
        let box = SendablePointers(x: x, y: y)
        let clock = ContinuousClock()
        var best = Double.infinity
        for _ in 0..<5 {
            let start = clock.now
            DispatchQueue.concurrentPerform(iterations: threads) { thread in
                let begin = count / threads * thread, end = thread == threads - 1 ? count : count / threads * (thread + 1)
                var i = begin
                while i + 16 <= end {
                    let xv = UnsafeRawPointer(box.x + i).loadUnaligned(as: SIMD16<Float>.self)
                    let yv = UnsafeRawPointer(box.y + i).loadUnaligned(as: SIMD16<Float>.self)
                    UnsafeMutableRawPointer(box.y + i).storeBytes(of: yv.addingProduct(xv, 0.5), as: SIMD16<Float>.self)
                    i += 16
                }
            }
            best = min(best, Timing.seconds(clock.now - start))
        }
        blackHole(y[count / 2])
        return Double(count * 12) / best / 1e9
    }

    struct SendablePointers: @unchecked Sendable {
        let x: UnsafeMutablePointer<Float>
        let y: UnsafeMutablePointer<Float>
    }

    /// Twelve independent FMA chains: enough to cover FMA latency on two pipes.
    @inline(never)
    static func fmaChains(iterations: Int, seed: Float) -> Float {
        let a = SIMD16<Float>(repeating: 0.999_9), b = SIMD16<Float>(repeating: 1e-4)
        var c0 = SIMD16<Float>(repeating: seed), c1 = c0 + 1, c2 = c0 + 2, c3 = c0 + 3
        var c4 = c0 + 4, c5 = c0 + 5, c6 = c0 + 6, c7 = c0 + 7, c8 = c0 + 8, c9 = c0 + 9, c10 = c0 + 10, c11 = c0 + 11
        for _ in 0..<iterations {
            c0 = c0.addingProduct(a, b); c1 = c1.addingProduct(a, b); c2 = c2.addingProduct(a, b)
            c3 = c3.addingProduct(a, b); c4 = c4.addingProduct(a, b); c5 = c5.addingProduct(a, b)
            c6 = c6.addingProduct(a, b); c7 = c7.addingProduct(a, b); c8 = c8.addingProduct(a, b)
            c9 = c9.addingProduct(a, b); c10 = c10.addingProduct(a, b); c11 = c11.addingProduct(a, b)
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).sum()
    }

    /// Six independent FMA chains: 12 ymm registers on AVX2, enough for 2 pipes x 5 cycles.
    @inline(never)
    static func sixFMAChains(iterations: Int, seed: Float) -> Float {
        let a = SIMD16<Float>(repeating: 0.999_9), b = SIMD16<Float>(repeating: 1e-4)
        var c0 = SIMD16<Float>(repeating: seed), c1 = c0 + 1, c2 = c0 + 2, c3 = c0 + 3, c4 = c0 + 4, c5 = c0 + 5
        for _ in 0..<iterations {
            c0 = c0.addingProduct(a, b); c1 = c1.addingProduct(a, b); c2 = c2.addingProduct(a, b)
            c3 = c3.addingProduct(a, b); c4 = c4.addingProduct(a, b); c5 = c5.addingProduct(a, b)
        }
        return (c0 + c1 + c2 + c3 + c4 + c5).sum()
    }

    @inline(never)
    static func blackHole(_ value: Float) {
        if value == .infinity { print("", terminator: "") }
    }
}
