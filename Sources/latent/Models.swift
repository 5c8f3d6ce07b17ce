import ArgumentParser
import Foundation
import LatentModels

struct Models: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "List the model zoo: each model, the report it comes from and its defaults.",
        discussion: """
        Examples:
          latent models
          latent models --json
        """
    )

    @Flag(help: "Print a JSON array instead of text.")
    var json = false

    func run() throws {
        let descriptors = ModelKind.allCases.map(ModelCatalog.descriptor)
        if json {
            let rows = descriptors.map { descriptor -> [String: Any] in
                let defaults = descriptor.defaults
                return ["name": descriptor.kind.rawValue, "report": descriptor.report, "summary": descriptor.summary,
                        "epochs": defaults.epochs, "batch_size": defaults.batchSize, "lr": Double(defaults.learningRate),
                        "optimizer": defaults.optimizer, "latent_dim": defaults.latentDim]
            }
            let data = try JSONSerialization.data(withJSONObject: rows, options: [.sortedKeys])
            print(String(decoding: data, as: UTF8.self))
            return
        }
        for descriptor in descriptors {
            let d = descriptor.defaults
            print("\(descriptor.kind.rawValue)  (report \(descriptor.report))")
            print("    \(descriptor.summary)")
            print("    defaults: --epochs \(d.epochs) --batch-size \(d.batchSize) --optimizer \(d.optimizer) --lr \(d.learningRate) --latent-dim \(d.latentDim)"
                  + (descriptor.kind == .vaeFC || descriptor.kind == .cvae || descriptor.kind == .ae ? " --hidden \(d.hidden) --depth \(d.depth)" : ""))
        }
    }
}
