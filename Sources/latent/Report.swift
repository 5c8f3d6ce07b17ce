import ArgumentParser
import Foundation
import LatentModels

/// `latent report DIR`: the run's self-contained HTML page, for any run folder.
struct Report: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a run's self-contained HTML report (curves, sample grids, final metrics, config).",
        discussion: """
        Reads DIR/config.json, DIR/metrics.jsonl and DIR/samples-eNNN.png and writes one page \
        that opens offline in any browser: loss curves as inline SVG, every epoch's sample grid \
        embedded as PNG, the final metrics, a table of all epochs and the run's options. \
        `latent train` rewrites DIR/report.html after each epoch; this command makes it for an \
        older run, or anew.

        Examples:
          latent report runs/vae-fc
          latent report runs/vae-conv --output vae-conv.html
        """
    )

    @Argument(help: ArgumentHelp("A run folder written by `latent train` or `latent reproduce`.", valueName: "DIR"))
    var directory: String

    @Option(help: ArgumentHelp("Where to write the page (default DIR/report.html).", valueName: "FILE.html"))
    var output: String?

    func validate() throws {
        if let output, !output.lowercased().hasSuffix(".html") && !output.lowercased().hasSuffix(".htm") {
            throw ValidationError("--output must name an .html file, got '\(output)'")
        }
    }

    func run() throws {
        let report = try RunReport(directory: URL(fileURLWithPath: directory))
        let url = try report.write(to: output.map { URL(fileURLWithPath: $0) })
        print(url.path)
    }
}
