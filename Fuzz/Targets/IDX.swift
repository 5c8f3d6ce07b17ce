// Fuzz target: the IDX reader (raw and gzip, recognised by content) and the dataset loader
// that pairs an images file with a labels file.
//
// Promises checked: any input either decodes or throws DataError (never a crash, a trap or
// an unbounded allocation); a decoded array re-encodes to the same raw bytes; the dataset
// loader on two halves of the input gives a Dataset whose sizes agree, or a DataError.
import Foundation
@testable import LatentData

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIDX(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let input = fuzzBytes(data, size)
    let isGzip = input.count >= 2 && input[0] == 0x1f && input[1] == 0x8b
    do {
        let array = try IDXFile.decode(OwnedBytes(copying: input), name: "fuzz-input")
        guard array.dimensions.reduce(1, *) == array.bytes.count else { violated("sizes disagree with the data") }
        if !isGzip && IDXFile.encode(array) != input { violated("a decoded raw file does not re-encode to itself") }
    } catch is DataError {
    } catch {
        violated("unexpected error type \(type(of: error)): \(error)")
    }

    // Dataset.load: the first two bytes (big-endian) say where to cut the rest into an
    // images file and a labels file.
    guard input.count >= 2 else { return 0 }
    let first = input[0]
    let rest = Array(input.dropFirst(2))
    let cut = min(rest.count, Int(input[0]) << 8 | Int(input[1]))
    let images = writeScratch(Array(rest[..<cut]), "images")
    let labels = writeScratch(Array(rest[cut...]), "labels")
    defer {
        unlink(images)
        unlink(labels)
    }
    do {
        let dataset = try Dataset.load(images: images, labels: labels, limit: first % 2 == 0 ? nil : Int(first))
        guard dataset.images.count == dataset.count * dataset.rows * dataset.cols else {
            violated("a loaded dataset's sizes disagree")
        }
        _ = dataset.classCounts()
        _ = dataset.pixelStatistics()
        if dataset.count > 0 { _ = dataset.image(dataset.count - 1) }
    } catch is DataError {
    } catch {
        violated("unexpected error type \(type(of: error)): \(error)")
    }
    return 0
}
