/// Storage owned by one backend: host memory for the CPU backend, a `cl_mem` for OpenCL.
/// Sizes are in `Float` elements.
public protocol DeviceBuffer: AnyObject, Sendable {
    var count: Int { get }
}

/// A contiguous range of a buffer: what every op reads and writes. Offsets let one
/// allocation hold several tensors (parameters, concatenations) without copies.
public struct BufferView: Sendable {
    public let buffer: any DeviceBuffer
    public let offset: Int
    public let count: Int

    public init(_ buffer: any DeviceBuffer, offset: Int = 0, count: Int? = nil) throws {
        let count = count ?? (buffer.count - offset)
        guard offset >= 0, count >= 0, offset <= buffer.count, count <= buffer.count - offset else {
            throw LatentError.shape("view [\(offset), \(offset + count)) is outside a buffer of \(buffer.count) floats")
        }
        self.buffer = buffer
        self.offset = offset
        self.count = count
    }

    /// A sub-range, `start` counted from this view's own start.
    public func slice(_ start: Int, count: Int) throws -> BufferView {
        guard start >= 0, count >= 0, start <= self.count, count <= self.count - start else {
            throw LatentError.shape("slice [\(start), \(start + count)) is outside a view of \(self.count) floats")
        }
        return try BufferView(buffer, offset: offset + start, count: count)
    }
}

/// The ops every backend implements, with the same names and the same maths. Layers call
/// only these, so a model runs unchanged on the CPU or through OpenCL. Tensors are
/// row-major NCHW; `spatial` is `H * W` (1 for fully connected layers).
///
/// Ops may run asynchronously (OpenCL enqueues them); `read` and `synchronize` wait.
/// Scalars (losses, counts) are written into one-element buffers so that a training step
/// needs no host round trip. Gradient-producing ops take `accumulate`: `true` adds into
/// the destination, as PyTorch's `.grad` accumulation does.
public protocol Backend: AnyObject, Sendable {
    /// `cpu` or `opencl`.
    var name: String { get }
    /// A human-readable description of the device the ops run on.
    var deviceName: String { get }
    /// Whether the ops that sum accumulate in Double in one fixed order and round once, so
    /// that every backend gives the same floats (`--reproducible`).
    var reproducible: Bool { get }

    // MARK: Memory
    func makeBuffer(count: Int) throws -> any DeviceBuffer
    func write(_ values: UnsafeBufferPointer<Float>, to destination: BufferView) throws
    func read(_ source: BufferView, into values: UnsafeMutableBufferPointer<Float>) throws
    /// Waits until every op enqueued so far has finished.
    func synchronize() throws

    // MARK: Linear algebra
    /// `C = alpha * op(A) * op(B) + beta * C`, row-major; `op(A)` is m x k, `op(B)` k x n.
    /// `lda`, `ldb`, `ldc` are the row strides of the matrices as stored.
    func gemm(transA: Transpose, transB: Transpose, m: Int, n: Int, k: Int,
              alpha: Float, a: BufferView, lda: Int, b: BufferView, ldb: Int,
              beta: Float, c: BufferView, ldc: Int) throws

    // MARK: Convolution
    /// `output (N, Cout, Ho, Wo) = conv(input (N, Cin, H, W), weight (Cout, Cin, kH, kW)) + bias (Cout)`.
    func conv2dForward(_ geometry: ConvGeometry, input: BufferView, weight: BufferView,
                       bias: BufferView?, output: BufferView) throws
    /// Gradient of `conv2dForward` with respect to its input; with a `bias` (Cin) it is
    /// also a transposed convolution's forward pass.
    func conv2dBackwardData(_ geometry: ConvGeometry, gradOutput: BufferView, weight: BufferView,
                            bias: BufferView?, gradInput: BufferView, accumulate: Bool) throws
    /// Gradient of `conv2dForward` with respect to its weight; with input and gradOutput
    /// swapped it is a transposed convolution's weight gradient.
    func conv2dBackwardWeights(_ geometry: ConvGeometry, input: BufferView, gradOutput: BufferView,
                               gradWeight: BufferView, accumulate: Bool) throws

    // MARK: Batch normalisation (affine, PyTorch semantics)
    /// Normalises with the batch's statistics over (N, H, W), updates running mean and the
    /// *unbiased* running variance with `momentum`, and saves mean and 1/sqrt(var + eps).
    func batchNormForwardTraining(input: BufferView, output: BufferView, gamma: BufferView, beta: BufferView,
                                  runningMean: BufferView, runningVariance: BufferView,
                                  savedMean: BufferView, savedInverseStd: BufferView,
                                  batch: Int, channels: Int, spatial: Int, momentum: Float, epsilon: Float) throws
    /// Normalises with the running statistics.
    func batchNormForwardInference(input: BufferView, output: BufferView, gamma: BufferView, beta: BufferView,
                                   runningMean: BufferView, runningVariance: BufferView,
                                   batch: Int, channels: Int, spatial: Int, epsilon: Float) throws
    /// Gradients of `batchNormForwardTraining`; `gradInput` is overwritten, gamma and beta
    /// gradients follow `accumulate`.
    func batchNormBackward(gradOutput: BufferView, input: BufferView, gamma: BufferView,
                           savedMean: BufferView, savedInverseStd: BufferView,
                           gradInput: BufferView, gradGamma: BufferView, gradBeta: BufferView,
                           batch: Int, channels: Int, spatial: Int, accumulate: Bool) throws

    // MARK: Elementwise
    func fill(_ destination: BufferView, value: Float) throws
    func copy(_ source: BufferView, to destination: BufferView) throws
    /// Copies `blockCount` runs of `blockLength` floats, the i-th from `source` at
    /// `i * sourceStride` to `destination` at `i * destinationStride` (concat and split).
    func copyBlocks(_ source: BufferView, sourceStride: Int, to destination: BufferView, destinationStride: Int,
                    blockLength: Int, blockCount: Int) throws
    /// `y = alpha * x + beta * y`.
    func axpby(alpha: Float, x: BufferView, beta: Float, y: BufferView) throws
    /// `output = a * b` elementwise.
    func multiply(_ a: BufferView, _ b: BufferView, output: BufferView) throws
    /// `output[n, c, s] = activation(input[n, c, s] + bias[c])`; no bias adds nothing.
    func biasActivationForward(input: BufferView, bias: BufferView?, activation: Activation, output: BufferView,
                               channels: Int, spatial: Int) throws
    /// `gradInput = gradOutput * activation'(input)`, reading whichever of the pre-activation
    /// `input` and the post-activation `output` the derivative is cheapest from.
    func activationBackward(_ activation: Activation, input: BufferView, output: BufferView,
                            gradOutput: BufferView, gradInput: BufferView, accumulate: Bool) throws
    /// `output = mean + std(parameter) * noise`.
    func reparameterize(mean: BufferView, parameter: BufferView, noise: BufferView, output: BufferView,
                        parameterization: GaussianParameterization) throws
    /// `gradMean = gradOutput`, `gradParameter = gradOutput * noise * dstd/dparameter`.
    func reparameterizeBackward(parameter: BufferView, noise: BufferView, gradOutput: BufferView,
                                gradMean: BufferView, gradParameter: BufferView,
                                parameterization: GaussianParameterization, accumulate: Bool) throws
    /// Inverted dropout: `mask = (u >= p) / (1 - p)` from the uniform stream, `output = input * mask`.
    func dropoutForward(input: BufferView, output: BufferView, mask: BufferView, probability: Float,
                        seed: UInt64, counter: UInt64) throws

    // MARK: Reductions and losses
    /// `output[0] = sum(x)`.
    func sum(_ x: BufferView, output: BufferView) throws
    /// `output[c] = sum over n, s of input[n, c, s]` (bias gradients).
    func channelSum(input: BufferView, output: BufferView, batch: Int, channels: Int, spatial: Int, accumulate: Bool) throws
    /// `output[0]` = the loss reduced over every element.
    func lossForward(_ kind: LossKind, prediction: BufferView, target: BufferView, output: BufferView,
                     reduction: Reduction) throws
    /// `gradPrediction = scale * d(loss)/d(prediction)`, the reduction's 1/count included.
    func lossBackward(_ kind: LossKind, prediction: BufferView, target: BufferView, gradPrediction: BufferView,
                      reduction: Reduction, scale: Float, accumulate: Bool) throws
    /// `output[0] = sum of KL(N(mean, std^2) || N(0, 1))` over every element.
    func klDivergence(mean: BufferView, parameter: BufferView, parameterization: GaussianParameterization,
                      output: BufferView) throws
    /// Gradients of `scale * klDivergence`.
    func klDivergenceBackward(mean: BufferView, parameter: BufferView, parameterization: GaussianParameterization,
                              scale: Float, gradMean: BufferView, gradParameter: BufferView, accumulate: Bool) throws
    /// `output[0]` = the number of NaN and infinite elements of `x`.
    func countNonFinite(_ x: BufferView, output: BufferView) throws
    /// For each row of `input` (rows x width), the index (stored as a Float) of the nearest
    /// row of `codebook` (entries x width) in squared Euclidean distance; ties take the lowest index.
    func nearestCodebookEntry(input: BufferView, codebook: BufferView, indices: BufferView,
                              rows: Int, entries: Int, width: Int) throws
    /// `output[r] = table[indices[r]]`, rows of `width` floats.
    func gatherRows(table: BufferView, indices: BufferView, output: BufferView, rows: Int, width: Int) throws
    /// `gradTable[indices[r]] += gradOutput[r]`.
    func scatterAddRows(gradOutput: BufferView, indices: BufferView, gradTable: BufferView, rows: Int, width: Int) throws

    // MARK: Optimizers
    /// One `torch.optim` step for one parameter. `step` counts from 1.
    func optimizerStep(_ rule: OptimizerRule, parameter: BufferView, gradient: BufferView,
                       state: [BufferView], step: Int) throws

    // MARK: Random numbers (Philox4x32-10, see `Philox`)
    func fillUniform(_ destination: BufferView, low: Float, high: Float, seed: UInt64, counter: UInt64) throws
    func fillNormal(_ destination: BufferView, mean: Float, std: Float, seed: UInt64, counter: UInt64) throws
    /// `output = u < probability ? 1 : 0`, elementwise.
    func fillBernoulli(probabilities: BufferView, output: BufferView, seed: UInt64, counter: UInt64) throws
}
