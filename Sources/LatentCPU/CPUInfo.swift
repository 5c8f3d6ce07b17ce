import Foundation

/// What the CPU offers, read from /proc/cpuinfo on Linux, and the FP32 peak that
/// benchmarks compare against:
/// `peak = cores * FMA pipes per core (2) * datapath lanes (16 for AVX-512 on full-width
/// units, 8 for AVX2/FMA and for Zen 4's AVX-512, 4 for NEON or SSE) * 2 flops per FMA * clock (cpu MHz)`.
/// The clock is the nominal one the kernel reports; turbo can exceed it, so a share
/// above 100% is possible and honest.
public enum CPUInfo {
    public static let modelName: String = cpuinfoField("model name") ?? cpuinfoField("Hardware") ?? "unknown CPU"

    static let flags: Set<String> = Set((cpuinfoField("flags") ?? cpuinfoField("Features") ?? "").split(separator: " ").map(String.init))

    /// FP32 lanes of the widest vector FMA this build can use.
    public static var simdLanes: Int {
        #if arch(x86_64)
        if flags.contains("avx512f") { return 16 }
        if flags.contains("fma") && flags.contains("avx2") { return 8 }
        return 4
        #else
        return 4
        #endif
    }

    /// FP32 lanes one FMA pipe computes per cycle. Zen 4 (AMD family 25) decodes AVX-512 but
    /// runs each 512-bit operation as two 256-bit halves, so its throughput is AVX2's.
    public static var datapathLanes: Int {
        #if arch(x86_64)
        if simdLanes == 16 && isZen4 { return 8 }
        #endif
        return simdLanes
    }

    /// AMD's CPU family (25 Zen 3/4, 26 Zen 5), nil on other vendors; /proc/cpuinfo read once.
    static let amdFamily: Int? = cpuinfoField("vendor_id") == "AuthenticAMD" ? cpuinfoField("cpu family").flatMap { Int($0) } : nil

    static let isZen4: Bool = amdFamily == 25

    /// Whether the GEMM should pack a row-major A rather than read it in place. On Zen 5 (AMD
    /// family 26) the 12 x 32 kernel fed from twelve rows in place ran the Linear layers'
    /// forward and backward-data GEMMs 1.35-1.48x slower than from a packed panel, and SGEMM
    /// 256^3 and 512^3 1.3-1.5x (2026-12-04, docs/PERFORMANCE.md); on the Xeon and Zen 3
    /// machines reading in place was the faster one.
    static let prefersPackedA: Bool = (amdFamily ?? 0) >= 26

    public static var simdDescription: String {
        #if arch(x86_64)
        if flags.contains("avx512f") { return isZen4 ? "AVX-512 (256-bit datapath)" : "AVX-512" }
        if flags.contains("fma") && flags.contains("avx2") { return "AVX2+FMA" }
        return "SSE"
        #elseif arch(arm64)
        return "NEON"
        #else
        return "scalar"
        #endif
    }

    public static let fmaPipesPerCore = 2

    /// Nominal clock in GHz (`cpu MHz` of the first processor), 2.0 when unknown.
    public static var clockGHz: Double {
        if let mhz = cpuinfoField("cpu MHz").flatMap(Double.init) { return mhz / 1000 }
        return 2.0
    }

    /// FP32 peak of `threads` cores in GFLOP/s.
    public static func peakGFLOPS(threads: Int) -> Double {
        Double(threads * fmaPipesPerCore * datapathLanes * 2) * clockGHz
    }

    static func cpuinfoField(_ name: String) -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: ":", maxSplits: 1)
            if parts.count == 2, parts[0].trimmingCharacters(in: .whitespaces) == name {
                return parts[1].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }
}
