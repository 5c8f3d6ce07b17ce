import ArgumentParser
import Foundation
import LatentData
import LatentExplore
import LatentNN

/// `latent compare`: a table of runs and one chart of their loss curves.
struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compare run folders: a Markdown and CSV table (model, knobs, final losses, images/s) and one loss-curve PNG.",
        discussion: """
        Reads DIR/config.json and DIR/metrics.jsonl of each run. Knobs are the `latent train` \
        flags that differ from the model's defaults; losses are the last epoch's, per image; \
        images/s is the mean over the epochs. With --output FILE.md the table goes to FILE.md, \
        the CSV to FILE.csv and the chart to FILE.png (unless --csv / --plot name other files); \
        without it the Markdown table is printed.

        Examples:
          latent compare runs/vae-fc runs/cvae
          latent compare runs/reproduce/report000-optimizers/runs/* --output optimizers.md
          latent compare runs/a runs/b --curve test --plot curves.png --json
        """
    )

    @Argument(help: ArgumentHelp("Run folders written by `latent train` or `latent reproduce`.", valueName: "DIR"))
    var directories: [String]

    @Option(help: ArgumentHelp("Markdown file to write (with FILE.csv and FILE.png beside it).", valueName: "FILE.md"))
    var output: String?

    @Option(help: ArgumentHelp("CSV file to write.", valueName: "FILE.csv"))
    var csv: String?

    @Option(help: ArgumentHelp("Loss-curve PNG to write.", valueName: "FILE.png"))
    var plot: String?

    @Option(help: ArgumentHelp("Which loss the chart shows.", valueName: "train|test"))
    var curve: Curve = .train

    @Flag(help: "Print the rows as a JSON array instead of the Markdown table.")
    var json = false

    enum Curve: String, ExpressibleByArgument, CaseIterable {
        case train, test
    }

    func validate() throws {
        guard !directories.isEmpty else { throw ValidationError("name at least one run folder") }
        if let output { try PictureOutput.check(output, extensions: ["md"]) }
        if let csv { try PictureOutput.check(csv, extensions: ["csv"]) }
        if let plot { try PictureOutput.check(plot, extensions: ["png"]) }
    }

    func run() throws {
        let records = try directories.map(RunRecord.read)
        let table = ComparisonTable(records: records, terms: ComparisonTable.commonTerms(records))
        let stem = output.map { String($0.dropLast(3)) }
        let csvPath = csv ?? stem.map { $0 + ".csv" }
        let plotPath = plot ?? stem.map { $0 + ".png" }
        var written: [String] = []
        if let output {
            try PictureOutput.prepare(output)
            try AtomicFile.write(Data(("# Runs compared\n\n" + table.markdown).utf8), to: URL(fileURLWithPath: output))
            written.append(output)
        }
        if let csvPath {
            try PictureOutput.prepare(csvPath)
            try AtomicFile.write(Data(table.csv.utf8), to: URL(fileURLWithPath: csvPath))
            written.append(csvPath)
        }
        if let plotPath {
            try PictureOutput.write(table.lossChart(field: curve == .train ? "train_loss" : "test_loss").render(), to: plotPath)
            written.append(plotPath)
        }
        if json {
            let data = try JSONSerialization.data(withJSONObject: table.jsonObjects(), options: [.sortedKeys, .withoutEscapingSlashes])
            print(String(decoding: data, as: UTF8.self))
        } else if output == nil {
            print(table.markdown, terminator: "")
        }
        if !written.isEmpty {
            FileHandle.standardError.write(Data("wrote \(written.joined(separator: ", ")) (\(records.count) runs)\n".utf8))
        }
    }
}
