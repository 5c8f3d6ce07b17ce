/// The OpenCL C sources of Kernels/, embedded in the binary at build time (SwiftPM's
/// `.embedInCode`), so that `latent` finds its kernels wherever it runs: through
/// `swift run`, copied to another folder, or inside a test bundle.
public enum KernelSources {
    /// File name (e.g. `gemm.cl`) and UTF-8 text of every kernel file and shared header.
    public static let files: [String: String] = [
        "common.clh": text(PackageResources.common_clh),
        "philox.clh": text(PackageResources.philox_clh),
        "gemm.cl": text(PackageResources.gemm_cl),
        "conv.cl": text(PackageResources.conv_cl),
        "batchnorm.cl": text(PackageResources.batchnorm_cl),
        "elementwise.cl": text(PackageResources.elementwise_cl),
        "reduce.cl": text(PackageResources.reduce_cl),
        "loss.cl": text(PackageResources.loss_cl),
        "optim.cl": text(PackageResources.optim_cl),
        "random.cl": text(PackageResources.random_cl),
        "reproducible.cl": text(PackageResources.reproducible_cl),
    ]

    private static func text(_ bytes: [UInt8]) -> String {
        String(decoding: bytes, as: UTF8.self)
    }
}
