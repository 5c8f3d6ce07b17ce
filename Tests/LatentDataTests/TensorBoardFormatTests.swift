import Foundation
import LatentData
import XCTest

/// The event-file format piece by piece. The golden bytes come from TensorBoard's own
/// Python protobuf classes (`event_pb2.Event(...).SerializeToString()`) and its
/// `masked_crc32c`, an implementation independent of ours.
final class TensorBoardFormatTests: XCTestCase {
    func testCRC32CKnownVectors() {
        // The check value of the CRC catalogue and the vectors of RFC 3720, appendix B.4.
        XCTAssertEqual(CRC32C.checksum(Array("123456789".utf8)), 0xE306_9283)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0, count: 32)), 0x8A91_36AA)
        XCTAssertEqual(CRC32C.checksum([UInt8](repeating: 0xFF, count: 32)), 0x62A8_AB43)
        XCTAssertEqual(CRC32C.checksum((0..<32).map { UInt8($0) }), 0x46DD_794E)
        XCTAssertEqual(CRC32C.checksum([UInt8]()), 0)
    }

    func testMaskedCRC() {
        // tensorboard.compat.tensorflow_stub.pywrap_tensorflow.masked_crc32c(b"123456789")
        XCTAssertEqual(CRC32C.masked(CRC32C.checksum(Array("123456789".utf8))), 0xC78A_B0E5)
        for value: UInt32 in [0, 1, 0xE306_9283, 0xFFFF_FFFF, 0x1234_5678] {
            XCTAssertEqual(CRC32C.unmasked(CRC32C.masked(value)), value)
        }
    }

    func testVarints() {
        func encoded(_ value: UInt64) -> [UInt8] {
            var writer = ProtobufWriter()
            writer.varint(value)
            return writer.bytes
        }
        XCTAssertEqual(encoded(0), [0x00])
        XCTAssertEqual(encoded(1), [0x01])
        XCTAssertEqual(encoded(127), [0x7F])
        XCTAssertEqual(encoded(128), [0x80, 0x01])
        XCTAssertEqual(encoded(300), [0xAC, 0x02])
        XCTAssertEqual(encoded(16_384), [0x80, 0x80, 0x01])
        XCTAssertEqual(encoded(UInt64.max), [0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])
    }

    func testFieldEncodings() {
        var writer = ProtobufWriter()
        writer.int64(field: 2, -1)
        // Negative int64: ten bytes of two's complement (golden: Event(step=-1)).
        XCTAssertEqual(writer.bytes, [0x10, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01])

        writer = ProtobufWriter()
        writer.double(field: 1, 1.5)
        XCTAssertEqual(writer.bytes, [0x09, 0, 0, 0, 0, 0, 0, 0xF8, 0x3F])

        writer = ProtobufWriter()
        writer.float(field: 2, 0.25)
        XCTAssertEqual(writer.bytes, [0x15, 0, 0, 0x80, 0x3E])

        writer = ProtobufWriter()
        writer.string(field: 1, "img")
        XCTAssertEqual(writer.bytes, [0x0A, 0x03, 0x69, 0x6D, 0x67])

        // A field number above 15 takes a two-byte key.
        writer = ProtobufWriter()
        writer.int64(field: 16, 1)
        XCTAssertEqual(writer.bytes, [0x80, 0x01, 0x01])
    }

    static let versionEvent: [UInt8] = [
        0x09, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xF8, 0x3F, 0x1A, 0x0D, 0x62, 0x72, 0x61, 0x69, 0x6E,
        0x2E, 0x45, 0x76, 0x65, 0x6E, 0x74, 0x3A, 0x32,
    ]

    func testFileVersionEventMatchesProtobuf() {
        // event_pb2.Event(wall_time=1.5, step=0, file_version="brain.Event:2")
        XCTAssertEqual(TensorBoardEvent.fileVersion(wallTime: 1.5), Self.versionEvent)
    }

    func testSummaryEventMatchesProtobuf() {
        // Event(wall_time=1700000000.25, step=300, summary=Summary(value=[
        //   Value(tag="train/loss", simple_value=0.25),
        //   Value(tag="img", image=Image(height=2, width=3, colorspace=1, encoded_image_string=b"\x01\x02"))]))
        let golden: [UInt8] = [
            0x09, 0x00, 0x00, 0x10, 0x40, 0xFC, 0x54, 0xD9, 0x41, 0x10, 0xAC, 0x02, 0x2A, 0x26, 0x0A, 0x11,
            0x0A, 0x0A, 0x74, 0x72, 0x61, 0x69, 0x6E, 0x2F, 0x6C, 0x6F, 0x73, 0x73, 0x15, 0x00, 0x00, 0x80,
            0x3E, 0x0A, 0x11, 0x0A, 0x03, 0x69, 0x6D, 0x67, 0x22, 0x0A, 0x08, 0x02, 0x10, 0x03, 0x18, 0x01,
            0x22, 0x02, 0x01, 0x02,
        ]
        let image = TensorBoardEvent.Image(height: 2, width: 3, colorspace: 1, encoded: [1, 2])
        let event = TensorBoardEvent.summary([.scalar(tag: "train/loss", value: 0.25), .image(tag: "img", image: image)],
                                             step: 300, wallTime: 1_700_000_000.25)
        XCTAssertEqual(event, golden)
    }

    func testRecordFramingMatchesTensorFlow() throws {
        // struct.pack("<Q", n) + masked_crc32c(that) + data + masked_crc32c(data)
        let golden: [UInt8] = [0x18, 0, 0, 0, 0, 0, 0, 0, 0xA3, 0x7F, 0x4B, 0x22] + Self.versionEvent + [0x2A, 0x28, 0x64, 0x6C]
        XCTAssertEqual(TFRecord.frame(Self.versionEvent), golden)
        XCTAssertEqual(try TFRecord.records(in: golden + TFRecord.frame([]) + TFRecord.frame([7, 8, 9])),
                       [Self.versionEvent, [], [7, 8, 9]])
    }

    func testReaderRejectsDamage() {
        let record = TFRecord.frame([1, 2, 3, 4, 5])
        for index in record.indices {
            var damaged = record
            damaged[index] ^= 0x10
            XCTAssertThrowsError(try TFRecord.records(in: damaged), "flipped byte \(index) was not noticed")
        }
        XCTAssertThrowsError(try TFRecord.records(in: Array(record.dropLast())))
        XCTAssertThrowsError(try TFRecord.records(in: Array(record.prefix(10))))
    }

    func testImageHeaderFromPNG() throws {
        let gray = RasterImage(width: 5, height: 3, format: .gray, fill: [128]).pngData()
        let image = try XCTUnwrap(TensorBoardEvent.Image(png: gray))
        XCTAssertEqual([image.width, image.height, image.colorspace], [5, 3, 1])
        XCTAssertEqual(image.encoded, gray)
        let rgb = RasterImage(width: 2, height: 7, format: .rgb, fill: [1, 2, 3]).pngData()
        XCTAssertEqual(TensorBoardEvent.Image(png: rgb)?.colorspace, 3)
        XCTAssertNil(TensorBoardEvent.Image(png: Array("not a png at all, just some text....".utf8)))
        XCTAssertNil(TensorBoardEvent.Image(png: []))
    }

    func testWriterFileHoldsFramedEvents() throws {
        let folder = FileManager.default.temporaryDirectory.appendingPathComponent("latent-tb-\(UUID().uuidString)")
        addTeardownBlock { try? FileManager.default.removeItem(at: folder) }
        let writer = try TensorBoardWriter(directory: folder, wallTime: 1_700_000_000)
        XCTAssertTrue(writer.url.lastPathComponent.hasPrefix("events.out.tfevents.1700000000."), writer.url.lastPathComponent)
        try writer.addScalar("train/loss", 2.5, step: 1, wallTime: 1_700_000_001)
        writer.close()
        // A second writer in the same second gets a file of its own.
        let second = try TensorBoardWriter(directory: folder, wallTime: 1_700_000_000)
        XCTAssertNotEqual(second.url, writer.url)
        second.close()

        let records = try TFRecord.records(in: Array(try Data(contentsOf: writer.url)))
        XCTAssertEqual(records.count, 2)
        XCTAssertEqual(records.first, TensorBoardEvent.fileVersion(wallTime: 1_700_000_000))
        XCTAssertEqual(records.last, TensorBoardEvent.summary([.scalar(tag: "train/loss", value: 2.5)], step: 1, wallTime: 1_700_000_001))
    }

    func testSVGLineChart() {
        var chart = LineChart(title: "loss <&>", xLabel: "epoch", yLabel: "per image",
                              series: [LineChart.Series(name: "train", y: [3, 2, .nan, 1]),
                                       LineChart.Series(name: "test", y: [3.5, 2.5, 2, 1.5])])
        chart.width = 400
        chart.height = 300
        let svg = chart.svg()
        XCTAssertTrue(svg.hasPrefix("<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 400 300\""))
        XCTAssertTrue(svg.hasSuffix("</svg>"))
        XCTAssertTrue(svg.contains("loss &lt;&amp;&gt;"))
        XCTAssertFalse(svg.contains("<&>"))
        // The NaN splits the training line: one two-point polyline, the lone last point as a
        // marker only; the test line is whole.
        XCTAssertEqual(svg.components(separatedBy: "<polyline").count - 1, 2)
        XCTAssertEqual(svg.components(separatedBy: "<circle").count - 1, 7)
        XCTAssertFalse(svg.contains("nan"))
        XCTAssertFalse(svg.contains("inf"))
    }
}
