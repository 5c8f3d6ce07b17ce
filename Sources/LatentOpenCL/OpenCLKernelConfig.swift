import Foundation
import LatentCore

/// Kernel variants and tunables for one device, passed to the kernels as `-D` defines.
/// The defaults follow the device class; `LATENT_OPENCL_GEMM=block|tiled` picks the SGEMM
/// variant and `LATENT_OPENCL_TUNE="TILE_M=32,WPT_M=2,..."` overrides tunables.
public struct OpenCLKernelConfig: Sendable, Equatable, CustomStringConvertible {
    public enum GemmVariant: String, Sendable, CaseIterable {
        /// Register-blocked, no local memory: CPU-class devices (PoCL), where local memory
        /// is ordinary memory and a work-group runs on one core.
        case block
        /// Local-memory tiles: GPUs.
        case tiled
    }

    /// How convolutions run: im2col panels + SGEMM (+ col2im), the batch-inner implicit GEMM,
    /// or (forward and backward-data of 3x3 stride-1 layers) Winograd F(4x4, 3x3).
    public enum ConvolutionVariant: String, Sendable, CaseIterable {
        /// Winograd for 3x3 stride-1 layers (forward, backward-data) with 16 channels or more
        /// on both sides and batches of 16 and more; else batch-inner for batches of 16 and more on CPU-class devices (the
        /// block SGEMM), im2col otherwise.
        case automatic
        case im2col
        case batchInner = "batch-inner"
        /// Winograd wherever the shape allows it (3x3, stride 1, padding up to 2; forward and
        /// backward-data), the automatic choice elsewhere.
        case winograd
    }

    public var gemm: GemmVariant
    /// `LATENT_OPENCL_CONV=im2col|batch-inner` overrides the automatic choice.
    public var convolution: ConvolutionVariant = .automatic
    /// gemm_block: rows of C per work-item (columns are one float16).
    public var gemmRows = 8
    /// gemm_block's rows for a plain SGEMM whose m, n and k all reach `gemmLargeMinimum`
    /// (gemm.cl built a second time with this GEMM_ROWS); batch-inner convolutions keep `gemmRows`.
    public var gemmRowsLarge = 8
    public var gemmLargeMinimum = 512
    /// bi_conv_backward_weights: output channels and (ci, ki, kj) rows per work-item, and
    /// images per vector (16 or 8).
    public var weightGradientChannels = 4
    public var weightGradientRows = 4
    public var weightGradientWidth = 16
    /// bi_conv_backward_data_narrow (layers with fewer input channels than `gemmRows`):
    /// positions per work-item.
    public var narrowBackwardDataPositions = 4
    /// CPU-class devices: launches of two or more dimensions without a local size of their
    /// own get one that makes at least this many work-groups (0: the driver's choice). See
    /// `balancedLocalSize`.
    public var minimumGroups = 256
    /// Elements per work-item of the one-dimensional elementwise, loss-gradient and optimizer kernels
    /// (`FOR_ELEMENTS` in common.clh): 1 on GPUs, 16 on CPU-class devices, where PoCL's loop
    /// over a run of elements vectorises and one element per work-item did not keep up (axpby
    /// over 64x64x196 floats: 1.33 -> 0.20 ms on PoCL, Zen 3, fastest of 5 alternating rounds;
    /// docs/PERFORMANCE.md).
    public var elementsPerItem = 1
    /// gemm_tiled: C tile per work-group, depth of a local-memory slice, work per work-item.
    public var tileM = 64
    public var tileN = 64
    public var tileK = 16
    public var wptM = 4
    public var wptN = 4
    /// Work-group size of reductions, batch norm and per-channel sums (a power of two).
    public var reduceGroup: Int

    public init(gemm: GemmVariant, reduceGroup: Int) {
        self.gemm = gemm
        self.reduceGroup = reduceGroup
    }

    /// GPUs with on-chip local memory get the tiled SGEMM and 256-wide reductions;
    /// everything else (CPU devices, PoCL) the register-blocked SGEMM and 64-wide ones.
    /// The block is `gemmRows` float16 accumulators: 8 where a float16 is one register
    /// (AVX-512: 8 of 32 zmm), 6 where it takes two of 16 (AVX2: 12 ymm; 8 rows spill, and
    /// measured 45 against 110 GFLOP/s at 1024^3 on PoCL). The weight gradient's block is
    /// 4 x 4 float16 accumulators, or 4 x 3 float8 where a float16 takes two registers.
    ///
    /// Large SGEMMs take 12 rows where a float16 is one register: 8 accumulators are just
    /// the 8 FMAs in flight that two 4-cycle FMA units need, so any stall idles a unit; 12
    /// leave slack. Measured on an Intel Xeon (PoCL, 2 cores): 1024^3 1.05-1.47x, 2048^3
    /// 1.38-1.57x the 8 rows; but 0.64-0.72x on vae-fc's batch-128 Linear layers, where
    /// fewer, shorter work-items split badly over the cores, hence the size threshold.
    public static func defaults(for device: OpenCLDeviceInfo) -> OpenCLKernelConfig {
        let gpuClass = device.kind == .gpu && device.dedicatedLocalMemory
        var reduce = gpuClass ? 256 : 64
        while reduce > max(1, device.maxWorkGroupSize) { reduce /= 2 }
        var config = OpenCLKernelConfig(gemm: gpuClass ? .tiled : .block, reduceGroup: reduce)
        config.elementsPerItem = gpuClass ? 1 : 16
        if !gpuClass && (1..<16).contains(device.nativeFloatVectorWidth) {
            config.gemmRows = 6
            config.gemmRowsLarge = 6
            // 4 x 4 float16 accumulators are 32 ymm: the weight gradient spilled on every step.
            // 4 x 3 float8 (12 ymm, 3 inputs, 1 gradient) measured 1.6-2.0x on PoCL (AVX2, Zen 3).
            config.weightGradientRows = 3
            config.weightGradientWidth = 8
        } else if !gpuClass {
            config.gemmRowsLarge = 12
        }
        return config
    }

    /// The defaults with the environment's overrides applied.
    public static func fromEnvironment(for device: OpenCLDeviceInfo) throws -> OpenCLKernelConfig {
        var config = defaults(for: device)
        let environment = ProcessInfo.processInfo.environment
        if let value = environment["LATENT_OPENCL_GEMM"], !value.isEmpty {
            guard let variant = GemmVariant(rawValue: value.lowercased()) else {
                throw LatentError.invalidArgument("LATENT_OPENCL_GEMM=\(value) is not one of block, tiled")
            }
            config.gemm = variant
        }
        if let value = environment["LATENT_OPENCL_CONV"], !value.isEmpty {
            guard let variant = ConvolutionVariant(rawValue: value.lowercased()) else {
                throw LatentError.invalidArgument("LATENT_OPENCL_CONV=\(value) is not one of automatic, im2col, batch-inner, winograd")
            }
            config.convolution = variant
        }
        if let value = environment["LATENT_OPENCL_TUNE"], !value.isEmpty {
            // GEMM_ROWS sets both row counts wherever it stands; GEMM_ROWS_LARGE then overrides.
            var largeRows: Int?
            defer { if let largeRows { config.gemmRowsLarge = largeRows } }
            for item in value.split(separator: ",") {
                let parts = item.split(separator: "=", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                // WG_MIN=0 hands the local size back to the driver; every other tunable is positive.
                guard parts.count == 2, let number = Int(parts[1]), number > 0 || (number == 0 && parts[0].uppercased() == "WG_MIN") else {
                    throw LatentError.invalidArgument("LATENT_OPENCL_TUNE: \"\(item)\" is not NAME=positive integer (WG_MIN may be 0)")
                }
                switch parts[0].uppercased() {
                case "GEMM_ROWS": config.gemmRows = number; config.gemmRowsLarge = number
                case "GEMM_ROWS_LARGE": largeRows = number
                case "GEMM_LARGE_MIN": config.gemmLargeMinimum = number
                case "TILE_M": config.tileM = number
                case "TILE_N": config.tileN = number
                case "TILE_K": config.tileK = number
                case "WPT_M": config.wptM = number
                case "WPT_N": config.wptN = number
                case "REDUCE_WG": config.reduceGroup = number
                case "BW_CO": config.weightGradientChannels = number
                case "BW_R": config.weightGradientRows = number
                case "BW_WIDTH": config.weightGradientWidth = number
                case "BD_POS": config.narrowBackwardDataPositions = number
                case "WG_MIN": config.minimumGroups = number
                case "EW_VEC": config.elementsPerItem = number
                default:
                    throw LatentError.invalidArgument("LATENT_OPENCL_TUNE: unknown tunable \(parts[0]) (GEMM_ROWS, GEMM_ROWS_LARGE, GEMM_LARGE_MIN, TILE_M, TILE_N, TILE_K, WPT_M, WPT_N, REDUCE_WG, BW_CO, BW_R, BW_WIDTH, BD_POS, WG_MIN, EW_VEC)")
                }
            }
        }
        return config
    }

    /// Throws unless the kernels can run with these values on `device`.
    func validate(for device: OpenCLDeviceInfo) throws {
        guard (1...16).contains(gemmRows) else { throw LatentError.invalidArgument("GEMM_ROWS must be 1...16, got \(gemmRows)") }
        guard (1...16).contains(gemmRowsLarge) else {
            throw LatentError.invalidArgument("GEMM_ROWS_LARGE must be 1...16, got \(gemmRowsLarge)")
        }
        guard (1...8).contains(weightGradientChannels), (1...8).contains(weightGradientRows) else {
            throw LatentError.invalidArgument("BW_CO and BW_R must be 1...8, got \(weightGradientChannels) and \(weightGradientRows)")
        }
        guard (1...256).contains(elementsPerItem) else {
            throw LatentError.invalidArgument("EW_VEC must be 1...256, got \(elementsPerItem)")
        }
        guard (1...8).contains(narrowBackwardDataPositions) else {
            throw LatentError.invalidArgument("BD_POS must be 1...8, got \(narrowBackwardDataPositions)")
        }
        guard weightGradientWidth == 8 || weightGradientWidth == 16 else {
            throw LatentError.invalidArgument("BW_WIDTH must be 8 or 16, got \(weightGradientWidth)")
        }
        guard tileM % wptM == 0, tileN % wptN == 0 else {
            throw LatentError.invalidArgument("TILE_M and TILE_N must be multiples of WPT_M and WPT_N")
        }
        let workGroup = (tileM / wptM) * (tileN / wptN)
        guard workGroup <= device.maxWorkGroupSize else {
            throw LatentError.invalidArgument("gemm_tiled work-group of \(workGroup) exceeds the device's \(device.maxWorkGroupSize)")
        }
        guard reduceGroup > 0, reduceGroup & (reduceGroup - 1) == 0, reduceGroup <= max(1, device.maxWorkGroupSize) else {
            throw LatentError.invalidArgument("REDUCE_WG must be a power of two up to \(device.maxWorkGroupSize), got \(reduceGroup)")
        }
    }

    /// The local size of a launch on a CPU-class device: [global[0], d, 1, ...] with d the
    /// largest divisor of global[1] that leaves at least `minimumGroups` work-groups (or 1).
    /// PoCL's own choice is the largest local size that divides the global one, up to 4096
    /// work-items: 2-4 work-groups for the conv VAE's big kernels, so its two threads split
    /// each launch in halves, and a core that falls behind (another process, a neighbour on
    /// the host) leaves the other idle until it finishes. Many small work-groups are handed
    /// out as threads free up. The conv VAE on PoCL (Zen 3): 536 images/s without, 686 with
    /// 256 (medians of 5 alternating rounds, 2026-12-03; docs/PERFORMANCE.md).
    /// nil: the driver chooses (GPUs, one-dimensional launches, or `minimumGroups` 0).
    /// `maxItems`: the device's limit per dimension (none: `maxGroupSize` in each).
    /// Runs on every launch, so the divisor search starts at the bound, not at global[1].
    func balancedLocalSize(global: [Int], maxGroupSize: Int, maxItems: [Int] = []) -> [Int]? {
        let limit = { (dimension: Int) in dimension < maxItems.count ? maxItems[dimension] : maxGroupSize }
        guard gemm == .block, minimumGroups > 0, global.count >= 2, global[0] <= Swift.min(maxGroupSize, limit(0)) else {
            return nil
        }
        let outer = global.dropFirst(2).reduce(1, *)
        // global[1] / d groups along the second dimension: at least this many for minimumGroups in all.
        let groupsNeeded = (minimumGroups + outer - 1) / outer
        var rows = Swift.min(global[1] / groupsNeeded, maxGroupSize / global[0], limit(1))
        while rows > 1 && global[1] % rows != 0 { rows -= 1 }
        return [global[0], Swift.max(rows, 1)] + Array(repeating: 1, count: global.count - 2)
    }

    /// gemm_block's rows for an SGEMM of this size.
    func blockRows(m: Int, n: Int, k: Int) -> Int {
        Swift.min(m, n, k) >= gemmLargeMinimum ? gemmRowsLarge : gemmRows
    }

    /// `-D` defines of every tunable (GEMM_ROWS = `rows`, default `gemmRows`).
    func defines(gemmRows rows: Int? = nil) -> String {
        "-D REDUCE_WG=\(reduceGroup) -D GEMM_ROWS=\(rows ?? gemmRows) -D TILE_M=\(tileM) -D TILE_N=\(tileN) -D TILE_K=\(tileK) "
            + "-D WPT_M=\(wptM) -D WPT_N=\(wptN) -D BW_CO=\(weightGradientChannels) -D BW_R=\(weightGradientRows) "
            + "-D BW_WIDTH=\(weightGradientWidth) -D BD_POS=\(narrowBackwardDataPositions) -D EW_VEC=\(elementsPerItem)"
    }

    public var description: String {
        switch gemm {
        case .block:
            let large = gemmRowsLarge == gemmRows ? "" : " (\(gemmRowsLarge)x16 from \(gemmLargeMinimum)^3)"
            return "gemm block \(gemmRows)x16\(large), weight gradient \(weightGradientChannels)x\(weightGradientRows)x\(weightGradientWidth), "
                + "reduce \(reduceGroup)"
        case .tiled: return "gemm tiled \(tileM)x\(tileN)x\(tileK) (\(wptM)x\(wptN) per item), reduce \(reduceGroup)"
        }
    }
}
