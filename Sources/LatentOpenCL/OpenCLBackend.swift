import COpenCL
import Foundation
import LatentCore

/// Device memory of the OpenCL backend: one `cl_mem` of `count` floats.
public final class OpenCLBuffer: DeviceBuffer, @unchecked Sendable {
    public let count: Int
    let mem: cl_mem
    let context: DeviceContext

    init(count: Int, context: DeviceContext) throws {
        var status: cl_int = 0
        let bytes = Swift.max(count, 1) * MemoryLayout<Float>.stride
        try context.memory.reserve(bytes)
        guard let mem = latent_clCreateBuffer(context.context, cl_mem_flags(CL_MEM_READ_WRITE), bytes, nil, &status),
              status == CL_SUCCESS else {
            context.memory.release(bytes)
            throw LatentError.backend("OpenCL could not allocate \(DeviceMemoryBudget.megabytes(UInt64(bytes))) on \(context.device.name): "
                + "\(CL.errorName(status)); try a smaller --batch-size")
        }
        self.count = count
        self.mem = mem
        self.context = context
    }

    deinit {
        // OpenCL frees the memory once the commands already enqueued on it have finished.
        _ = latent_clReleaseMemObject(mem)
        context.memory.release(Swift.max(count, 1) * MemoryLayout<Float>.stride)
    }
}

/// The OpenCL backend: every op of `Backend` runs as a kernel from Kernels/*.cl on one
/// in-order queue. Ops only enqueue work; `read` and `synchronize` wait. Scalars (losses,
/// counts) stay in device buffers, scratch buffers (packed GEMM operands, column matrices,
/// partial sums) are allocated once and grown, and programs are built once per process and
/// device (and cached on disk, see `KernelBinaryCache`). The ops live in one extension per
/// family beside this file.
public final class OpenCLBackend: Backend, @unchecked Sendable {
    public let name = "opencl"
    public let device: OpenCLDeviceInfo
    public let config: OpenCLKernelConfig
    let shared: DeviceContext
    let queue: cl_command_queue
    /// Serialises enqueues: kernel objects hold their arguments, and scratch is shared.
    let lock = NSLock()
    /// Each kernel with its CL_KERNEL_WORK_GROUP_SIZE: a GPU's register file can hold fewer
    /// work-items of a large kernel than the device's maximum (NVIDIA: 288 of a block kernel failed).
    private var kernels: [String: (kernel: cl_kernel, groupLimit: Int)] = [:]
    private var scratch: [ScratchSlot: OpenCLBuffer] = [:]
    /// Host copies of written data, freed once the queue has drained past their writes.
    private var staging: [UnsafeMutableRawPointer] = []
    private var stagingBytes = 0
    /// With profiling on: events of enqueued kernels, and device time per kernel name.
    public let profiling: Bool
    /// Profile rows per kernel name and global size (which layer's call is which).
    public let profilingBySize: Bool
    /// Sums in double in the CPU backend's order (`OpenCLBackend+Reproducible.swift`).
    public let reproducible: Bool
    private var pendingEvents: [(String, cl_event)] = []
    private var kernelTimes: [String: (calls: Int, nanoseconds: UInt64)] = [:]

    enum ScratchSlot: Hashable {
        case packA, packB, columns, partials, temporary
        /// Batch-inner images of a convolution (OpenCLBackend+ConvBatchInner.swift).
        case layoutIn, layoutOut
        /// Winograd F(4x4, 3x3)'s transformed filters, inputs and point products (OpenCLBackend+Winograd.swift).
        case winogradFilters, winogradInputs, winogradProducts
    }

    public var deviceName: String {
        "\(device.name) (\(device.platformName), \(device.kind.rawValue), \(config))\(reproducible ? ", reproducible sums" : "")"
    }

    /// The device with index `deviceIndex` in `latent devices` order (default 0) and the
    /// configuration from the environment (`OpenCLKernelConfig.fromEnvironment`) unless given.
    public convenience init(deviceIndex: Int? = nil, config: OpenCLKernelConfig? = nil, reproducible: Bool = false) throws {
        let found = OpenCLDiscovery.discover()
        guard !found.devices.isEmpty else {
            throw LatentError.backend(found.problem ?? "OpenCL offers no device")
        }
        let index = deviceIndex ?? 0
        guard found.devices.indices.contains(index) else {
            throw LatentError.invalidArgument("there is no OpenCL device \(index); `latent devices` lists \(found.devices.count) (0...\(found.devices.count - 1))")
        }
        try self.init(device: found.devices[index], config: config, reproducible: reproducible)
    }

    /// `profiling` records the device time of every kernel (see `kernelProfile`); it adds
    /// an event per op, so it is for benchmarks, not training. `bySize` keys its rows by
    /// kernel name and global size.
    /// `reproducible` needs double precision (cl_khr_fp64) and is refused without it.
    public init(device: OpenCLDeviceInfo, config: OpenCLKernelConfig? = nil, profiling: Bool = false,
                bySize: Bool = false, reproducible: Bool = false) throws {
        let config = try config ?? OpenCLKernelConfig.fromEnvironment(for: device)
        try config.validate(for: device)
        guard !reproducible || device.hasFP64 else {
            throw LatentError.backend("--reproducible sums in double precision, which OpenCL device \(device.name) lacks (no cl_khr_fp64); use --backend cpu")
        }
        self.reproducible = reproducible
        self.device = device
        self.config = config
        self.profiling = profiling
        profilingBySize = bySize
        shared = try DeviceContext.shared(for: device)
        var status: cl_int = 0
        let properties = cl_command_queue_properties(profiling ? CL_QUEUE_PROFILING_ENABLE : 0)
        guard let queue = latent_clCreateCommandQueue(shared.context, device.handle.id, properties, &status), status == CL_SUCCESS else {
            throw LatentError.backend("OpenCL could not create a command queue on \(device.name): \(CL.errorName(status))")
        }
        self.queue = queue
    }

    deinit {
        _ = latent_clFinish(queue)
        releaseStaging()
        collectProfile()
        for entry in kernels.values { _ = latent_clReleaseKernel(entry.kernel) }
        _ = latent_clReleaseCommandQueue(queue)
    }

    // MARK: Memory

    public func makeBuffer(count: Int) throws -> any DeviceBuffer {
        guard count >= 0 else { throw LatentError.invalidArgument("buffer size \(count) is negative") }
        guard count < Int(Int32.max) else {
            throw LatentError.backend("an op needs \(count) floats in one buffer, beyond the OpenCL kernels' 32-bit indices; try a smaller --batch-size")
        }
        return try withLock {
            let buffer = try OpenCLBuffer(count: count, context: shared)
            // Zeroed, as the CPU backend's buffers are.
            if count > 0 {
                try enqueue(.elementwise, "fill", global: elementItems(count), [.mem(buffer.mem), .int(0), .int(count), .float(0)])
            }
            return buffer
        }
    }

    public func write(_ values: UnsafeBufferPointer<Float>, to destination: BufferView) throws {
        guard values.count == destination.count else {
            throw LatentError.shape("writing \(values.count) floats into a view of \(destination.count)")
        }
        guard let base = values.baseAddress, values.count > 0 else { return }
        let mem = try memory(of: destination)
        let bytes = values.count * MemoryLayout<Float>.stride
        try withLock {
            // A non-blocking write from a private copy: no wait for the queue here.
            let copy = UnsafeMutableRawPointer.allocate(byteCount: bytes, alignment: 64)
            copy.copyMemory(from: base, byteCount: bytes)
            let status = latent_clEnqueueWriteBuffer(queue, mem, cl_bool(CL_FALSE), destination.offset * MemoryLayout<Float>.stride,
                                                     bytes, copy, 0, nil, nil)
            guard status == CL_SUCCESS else {
                copy.deallocate()
                throw LatentError.backend("OpenCL write of \(values.count) floats failed: \(CL.errorName(status))")
            }
            staging.append(copy)
            stagingBytes += bytes
            if stagingBytes > 64 << 20 {
                try CL.check(latent_clFinish(queue), "finish")
                releaseStaging()
            }
        }
    }

    public func read(_ source: BufferView, into values: UnsafeMutableBufferPointer<Float>) throws {
        guard values.count == source.count else {
            throw LatentError.shape("reading \(source.count) floats into \(values.count)")
        }
        let mem = try memory(of: source)
        try withLock {
            if let base = values.baseAddress, values.count > 0 {
                // Blocking, on an in-order queue: every earlier op has finished when it returns.
                try CL.check(latent_clEnqueueReadBuffer(queue, mem, cl_bool(CL_TRUE), source.offset * MemoryLayout<Float>.stride,
                                                        values.count * MemoryLayout<Float>.stride, base, 0, nil, nil),
                             "read of \(values.count) floats")
            } else {
                try CL.check(latent_clFinish(queue), "finish")
            }
            releaseStaging()
        }
    }

    public func synchronize() throws {
        try withLock {
            try CL.check(latent_clFinish(queue), "finish")
            releaseStaging()
        }
    }

    private func releaseStaging() {
        for pointer in staging { pointer.deallocate() }
        staging.removeAll()
        stagingBytes = 0
        collectProfile()
    }

    /// Adds the device times of finished kernels to the profile (queue drained).
    private func collectProfile() {
        for (name, event) in pendingEvents {
            var start: cl_ulong = 0, end: cl_ulong = 0
            if latent_clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_START), 8, &start, nil) == CL_SUCCESS,
               latent_clGetEventProfilingInfo(event, cl_profiling_info(CL_PROFILING_COMMAND_END), 8, &end, nil) == CL_SUCCESS,
               end >= start {
                let previous = kernelTimes[name] ?? (0, 0)
                kernelTimes[name] = (previous.calls + 1, previous.nanoseconds + (end - start))
            }
            _ = latent_clReleaseEvent(event)
        }
        pendingEvents.removeAll()
    }

    /// Device time per kernel since the last reset (profiling backends only), longest first.
    public func kernelProfile(reset: Bool = true) throws -> [(kernel: String, calls: Int, milliseconds: Double)] {
        try synchronize()
        return withLock {
            let rows = kernelTimes.map { (kernel: $0.key, calls: $0.value.calls, milliseconds: Double($0.value.nanoseconds) / 1e6) }
            if reset { kernelTimes.removeAll() }
            return rows.sorted { $0.milliseconds > $1.milliseconds }
        }
    }

    // MARK: Enqueueing kernels

    enum Argument {
        case mem(cl_mem)
        /// A view's buffer and its offset (two kernel arguments).
        case view(BufferView)
        /// An optional view: buffer and offset, then 1; or a placeholder buffer, 0 and 0.
        case optionalView(BufferView?, placeholder: cl_mem)
        case int(Int)
        case float(Float)
        case ulong(UInt64)
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    /// The `cl_mem` behind a view, refusing other backends' buffers.
    func memory(of view: BufferView) throws -> cl_mem {
        guard let buffer = view.buffer as? OpenCLBuffer else {
            throw LatentError.backend("a buffer of another backend was passed to the OpenCL backend")
        }
        guard buffer.context === shared else {
            throw LatentError.backend("a buffer of another OpenCL device was passed to the backend on \(device.name)")
        }
        return buffer.mem
    }

    /// Build options of a file on this device (`gemmRows`: gemm.cl's build for those rows).
    func options(for file: KernelFile, gemmRows: Int? = nil) -> String {
        var options = "-cl-std=CL1.2 " + config.defines(gemmRows: gemmRows)
        if file.needsCorrectRounding && device.correctlyRoundedDivideSqrt {
            options += " -cl-fp32-correctly-rounded-divide-sqrt"
        }
        if let extra = ProcessInfo.processInfo.environment["LATENT_OPENCL_OPTIONS"], !extra.isEmpty {
            options += " " + extra
        }
        return options
    }

    /// Builds every program now rather than on first use (for timing and to report build errors early).
    public func buildAll() throws {
        try withLock {
            for file in KernelFile.allCases where file != .reproducible || device.hasFP64 {
                _ = try shared.program(file, options: options(for: file))
            }
            if config.gemm == .block && config.gemmRowsLarge != config.gemmRows {
                _ = try shared.program(.gemm, options: options(for: .gemm, gemmRows: config.gemmRowsLarge))
            }
        }
    }

    private func kernel(_ file: KernelFile, _ name: String, gemmRows: Int?) throws -> (kernel: cl_kernel, groupLimit: Int) {
        let key = file.rawValue + ":" + name + (gemmRows.map { ":\($0)" } ?? "")
        if let entry = kernels[key] { return entry }
        let program = try shared.program(file, options: options(for: file, gemmRows: gemmRows))
        var status: cl_int = 0
        guard let kernel = latent_clCreateKernel(program.program, name, &status), status == CL_SUCCESS else {
            throw LatentError.backend("OpenCL has no kernel \(name) in \(KernelSourceStore.displayName(file.rawValue)): \(CL.errorName(status))")
        }
        var limit = 0
        let infoStatus = latent_clGetKernelWorkGroupInfo(kernel, device.handle.id, cl_kernel_work_group_info(CL_KERNEL_WORK_GROUP_SIZE),
                                                      MemoryLayout<Int>.size, &limit, nil)
        let groupLimit = infoStatus == CL_SUCCESS && limit > 0 ? Swift.min(limit, device.maxWorkGroupSize) : device.maxWorkGroupSize
        kernels[key] = (kernel, groupLimit)
        return (kernel, groupLimit)
    }

    /// Sets the arguments and enqueues `name` from `file` (call with the lock held). A global
    /// size is rounded up to a multiple of the local size; an empty range enqueues nothing.
    /// `gemmRows` picks the build of `file` with that GEMM_ROWS (default: the configured one).
    func enqueue(_ file: KernelFile, _ name: String, gemmRows: Int? = nil, global: [Int], local: [Int]? = nil,
                 _ arguments: [Argument]) throws {
        guard !global.contains(where: { $0 <= 0 }) else { return }
        let (kernel, groupLimit) = try kernel(file, name, gemmRows: gemmRows == config.gemmRows ? nil : gemmRows)
        if let local, local.reduce(1, *) > groupLimit {
            throw LatentError.backend("OpenCL kernel \(name) needs work-groups of \(local.reduce(1, *)) but \(device.name) runs at most \(groupLimit) of it; set a smaller tunable (docs/OPENCL.md)")
        }
        var index: cl_uint = 0
        func set<T>(_ value: T) throws {
            var copy = value
            let status = withUnsafeBytes(of: &copy) { raw in latent_clSetKernelArg(kernel, index, raw.count, raw.baseAddress) }
            try CL.check(status, "argument \(index) of \(name)")
            index += 1
        }
        func int32(_ value: Int) throws -> Int32 {
            guard let narrow = Int32(exactly: value) else {
                throw LatentError.invalidArgument("\(name): \(value) does not fit the kernels' 32-bit indices")
            }
            return narrow
        }
        for argument in arguments {
            switch argument {
            case .mem(let mem):
                try set(Optional(mem))
            case .view(let view):
                try set(Optional(try memory(of: view)))
                try set(try int32(view.offset))
            case .optionalView(let view, let placeholder):
                if let view {
                    try set(Optional(try memory(of: view)))
                    try set(try int32(view.offset))
                    try set(Int32(1))
                } else {
                    try set(Optional(placeholder))
                    try set(Int32(0))
                    try set(Int32(0))
                }
            case .int(let value): try set(try int32(value))
            case .float(let value): try set(value)
            case .ulong(let value): try set(value)
            }
        }
        var globalSize = global
        let local = local ?? config.balancedLocalSize(global: global, maxGroupSize: groupLimit,
                                                      maxItems: device.maxWorkItemSizes)
        if let local {
            for d in globalSize.indices { globalSize[d] = (globalSize[d] + local[d] - 1) / local[d] * local[d] }
        }
        var event: cl_event?
        let status: cl_int = globalSize.withUnsafeBufferPointer { g in
            withUnsafeMutablePointer(to: &event) { eventPointer in
                let eventOut = profiling ? eventPointer : nil
                if let local {
                    return local.withUnsafeBufferPointer { l in
                        latent_clEnqueueNDRangeKernel(queue, kernel, cl_uint(g.count), nil, g.baseAddress, l.baseAddress, 0, nil, eventOut)
                    }
                }
                return latent_clEnqueueNDRangeKernel(queue, kernel, cl_uint(g.count), nil, g.baseAddress, nil, 0, nil, eventOut)
            }
        }
        try CL.check(status, "launch of \(name) (global \(globalSize), local \(local.map { "\($0)" } ?? "auto"))")
        if let event { pendingEvents.append((profilingBySize ? "\(name) \(globalSize)" : name, event)) }
    }

    /// The global size of a one-dimensional `FOR_ELEMENTS` kernel over `count` elements.
    func elementItems(_ count: Int) -> [Int] {
        [(count + config.elementsPerItem - 1) / config.elementsPerItem]
    }

    /// A scratch buffer of at least `floats` floats (call with the lock held). Growing
    /// replaces it; OpenCL keeps the old one alive until the ops using it have run.
    func scratchBuffer(_ slot: ScratchSlot, floats: Int) throws -> cl_mem {
        if let buffer = scratch[slot], buffer.count >= floats { return buffer.mem }
        guard floats < Int(Int32.max) else {
            throw LatentError.backend("an op needs \(floats) floats of scratch, beyond the kernels' 32-bit indices")
        }
        let size = Swift.max(floats, (scratch[slot]?.count ?? 0) * 5 / 4, 1024)
        let buffer = try OpenCLBuffer(count: Swift.min(size, Int(Int32.max) - 1), context: shared)
        scratch[slot] = buffer
        return buffer.mem
    }

    /// Any valid buffer, for an optional argument that is absent.
    func placeholder() throws -> cl_mem {
        try scratchBuffer(.temporary, floats: 1)
    }
}

/// The shared argument checks (LatentCore.OpCheck).
typealias Check = OpCheck

/// The double a Python float literal with the same decimal digits holds, as the CPU
/// backend computes optimizer and batch-norm scalars (`Float(0.9)` becomes 0.9 exactly).
func decimalDouble(_ value: Float) -> Double {
    guard value.isFinite else { return Double(value) }
    return Double(value.description) ?? Double(value)
}
