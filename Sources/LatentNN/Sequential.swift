import LatentCore

/// `torch.nn.Sequential`: layers applied in order, children named "0", "1", ... so that
/// parameter names match PyTorch's ("encoder.0.weight").
public final class Sequential: Layer {
    public private(set) var layers: [any Layer]

    public init(_ layers: [any Layer]) {
        self.layers = layers
    }

    public convenience init(_ layers: any Layer...) {
        self.init(layers)
    }

    public func append(_ layer: any Layer) {
        layers.append(layer)
    }

    public var count: Int { layers.count }

    public subscript(index: Int) -> any Layer { layers[index] }

    public var children: [(name: String, module: any Module)] {
        layers.enumerated().map { (String($0.offset), $0.element as any Module) }
    }

    // input -> layers[0] -> ... -> layers[n-1]
    public func forward(_ input: Tensor, training: Bool) throws -> Tensor {
        var x = input
        for layer in layers {
            x = try layer.forward(x, training: training)
        }
        return x
    }

    // gradOutput -> layers[n-1].backward -> ... -> layers[0].backward
    public func backward(_ gradOutput: Tensor) throws -> Tensor {
        var g = gradOutput
        for layer in layers.reversed() {
            g = try layer.backward(g)
        }
        return g
    }

    // gradOutput -> layers[n-1].backward -> ... -> layers[first].backwardParameters, where
    // `first` is the first layer with parameters: the parameter-free layers before it
    // (reshapes, activations on the data) have nothing to accumulate.
    public func backwardParameters(_ gradOutput: Tensor) throws {
        guard let first = layers.firstIndex(where: { !$0.parameters().isEmpty }) else { return }
        var g = gradOutput
        for index in layers.indices.reversed() where index > first {
            g = try layers[index].backward(g)
        }
        try layers[first].backwardParameters(g)
    }
}
