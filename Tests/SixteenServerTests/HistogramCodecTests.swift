import Foundation
import Histogram
@testable import SixteenClient
import TestSupport
import XCTest

/// The V2 histogram codec against bytes HdrHistogram_py 0.10.8 produced
/// (`HdrHistogram(1000, 3600000000000, 3)`, the values recorded below,
/// `encode()`; the uncompressed form from `zlib.decompress`), and against
/// itself on random histograms.
final class HistogramCodecTests: XCTestCase {
    private func histogram(_ values: [(UInt64, UInt64)]) -> Histogram<UInt64> {
        var histogram = LatencyHistogram.make()
        for (value, count) in values { XCTAssertTrue(histogram.record(value, count: count)) }
        return histogram
    }

    private func counts(_ histogram: Histogram<UInt64>) -> [String] {
        histogram.nonzeroCounts(layout: HistogramLayout(histogram)).map { "\($0.index):\($0.count)" }
    }

    private func hex(_ bytes: [UInt8]) -> String { bytes.map { pad($0, 2, radix: 16) }.joined() }

    private func pad(_ value: UInt8, _ width: Int, radix: Int) -> String {
        let text = String(value, radix: radix)
        return String(repeating: "0", count: width - text.count) + text
    }

    /// Header: cookie 0x1c849313, payload length, offset 0, 3 digits, lowest 1000, highest 3.6e12, ratio 1.0.
    private let header = "1c849313%@000000000000000300000000000003e80000034630b8a0003ff0000000000000"

    // MARK: Against HdrHistogram_py

    func testSmallHistogramEncodesAsHdrHistogramPyDoes() throws {
        let values: [(UInt64, UInt64)] = [(1000, 1), (3000, 2), (5000, 1), (1_000_000, 7), (2_500_000, 3)]
        let ours = histogram(values)
        // Index 0 empty (a run of one zero: 0x01), 1 once, 3 zeros, 2 at index 5, 3 zeros, 1 at 9, …
        let python = header.replacingOccurrences(of: "%@", with: "0000000c") + "010205040502ad1e0ec31406"
        XCTAssertEqual(hex(HistogramCodec.payload(ours)), python)
        let pythonBase64 = "HISTFAAAAC14nJNpmSzMwMDAwwABzFDqBRC7GexYwGD/ASLCyMTKwsq0Vo7vsAgbAKZfBwo="
        let decoded = try HistogramCodec.decode(pythonBase64)
        XCTAssertEqual(counts(decoded), counts(ours))
        XCTAssertEqual(counts(decoded), ["1:1", "5:2", "9:1", "1953:7", "3268:3"])
        XCTAssertEqual(decoded.totalCount, 14)
        // Our compressed form: another zlib level, the same content.
        let encoded = HistogramCodec.encode(ours)
        XCTAssertTrue(encoded.hasPrefix("HISTFAAAA"), encoded)
        let bytes = try XCTUnwrap(Base64.decode(encoded))
        XCTAssertEqual(hex(try HistogramCodec.inflate(Array(bytes[8...]))), python)
        XCTAssertEqual(counts(try HistogramCodec.decode(encoded)), counts(ours))
    }

    func testLargeCountsAndTheHighestValueEncodeAsHdrHistogramPyDoes() throws {
        let values: [(UInt64, UInt64)] = [(1000, 1), (2047, 300), (999_999, 1), (1_000_000, 70000), (3_600_000_000_000, 5), (1_234_567, 1 << 40)]
        let ours = histogram(values)
        let python = header.replacingOccurrences(of: "%@", with: "00000016") + "010201d804b91ee2c508a504808080808040abd7020a"
        XCTAssertEqual(hex(HistogramCodec.payload(ours)), python)
        let decoded = try HistogramCodec.decode("HISTFAAAADV4nJNpmSzMwMAgxgABzFDqBRC7GexYwGD/ASLCyMR4g2Wn3KOjHEtZGkDAYfV1Ji4ALr0NqA==")
        XCTAssertEqual(counts(decoded), counts(ours))
        XCTAssertEqual(decoded.totalCount, 1_099_511_698_083)
        XCTAssertEqual(decoded.max, 3_601_330_077_695, "HdrHistogram_py's get_max_value()")
        XCTAssertEqual(LatencyPercentiles.values(at: [100], in: decoded), [3_601_330_077_695])
    }

    func testAnEmptyHistogramHasNoCounts() throws {
        let empty = LatencyHistogram.make()
        XCTAssertEqual(hex(HistogramCodec.payload(empty)), header.replacingOccurrences(of: "%@", with: "00000000"))
        let decoded = try HistogramCodec.decode(HistogramCodec.encode(empty))
        XCTAssertEqual(decoded.totalCount, 0)
        XCTAssertEqual(LatencySummary(decoded), LatencySummary(empty))
    }

    /// An interval log HdrHistogram_py's HistogramLogWriter wrote (untagged,
    /// six decimals, Interval_Max rounded down).
    func testReadsALogHdrHistogramPyWrote() throws {
        let text = """
            #[Histogram log format version 1.2]
            #[BaseTime: 1790000000.000000 (seconds since epoch)]
            "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
            0.000000,1.000000,0.000000,HISTFAAAACl4nJNpmSzMwMDAwQABzFDqBRC7GexYwGD/ASJynp2JkemxMBMAkkkHEA==
            1.000000,1.000000,1.000000,HISTFAAAACR4nJNpmSzMwMDAzAABUJr5BRC7GexYwGD/ASLyXo0DAHDyBlU=

            """
        let intervals = try IntervalLogReader.intervals(in: text, path: "py.hlog")
        XCTAssertEqual(intervals.map(\.line), [4, 5])
        XCTAssertEqual(intervals.map(\.tag), [nil, nil])
        XCTAssertEqual(intervals.map(\.start), [1_790_000_000_000_000_000, 1_790_000_001_000_000_000])
        XCTAssertEqual(intervals.map(\.end), [1_790_000_001_000_000_000, 1_790_000_002_000_000_000])
        XCTAssertEqual(counts(try intervals[0].histogram()), counts(histogram([(250_000, 1), (251_000, 1), (900_000, 1)])))
        XCTAssertEqual(counts(try intervals[1].histogram()), counts(histogram([(1_500_000, 4)])))
    }

    // MARK: Against itself

    func testRandomHistogramsRoundTrip() throws {
        var random = SplitMix64(seed: 11)
        for _ in 0..<40 {
            var values: [(UInt64, UInt64)] = []
            for _ in 0..<random.next(in: 0...60) {
                // Spread over every magnitude, 1 µs to an hour.
                let magnitude = random.next(in: 10...41)
                let value = UInt64(1000) + random.next() % (UInt64(1) << UInt64(magnitude))
                values.append((min(value, 3_600_000_000_000), UInt64(random.next(in: 1...(random.nextBool() ? 3 : 1_000_000)))))
            }
            let original = histogram(values)
            let decoded = try HistogramCodec.decode(HistogramCodec.encode(original))
            XCTAssertEqual(counts(decoded), counts(original))
            XCTAssertEqual(decoded.totalCount, original.totalCount)
            XCTAssertEqual(LatencySummary(decoded), LatencySummary(original))
            XCTAssertEqual(HistogramCodec.payload(decoded), HistogramCodec.payload(original))
        }
    }

    func testZigZagLEB128AtTheEdges() {
        let cases: [(Int64, String)] = [
            (0, "00"), (-1, "01"), (1, "02"), (63, "7e"), (-64, "7f"), (64, "8001"), (300, "d804"),
            (Int64.max, "feffffffffffffffff"), (Int64.min, "ffffffffffffffffff"),
        ]
        for (value, expected) in cases {
            var bytes: [UInt8] = []
            HistogramCodec.putZigZag(value, into: &bytes)
            XCTAssertEqual(hex(bytes), expected, "\(value)")
            var position = 0
            XCTAssertEqual(HistogramCodec.readZigZag(bytes, &position), value)
            XCTAssertEqual(position, bytes.count)
            position = 0
            XCTAssertNil(HistogramCodec.readZigZag(Array(bytes.dropLast()), &position), "\(value) cut short")
        }
    }

    func testBase64AgainstRFC4648() {
        let vectors = ["": "", "f": "Zg==", "fo": "Zm8=", "foo": "Zm9v", "foob": "Zm9vYg==", "fooba": "Zm9vYmE=", "foobar": "Zm9vYmFy"]
        for (plain, encoded) in vectors {
            XCTAssertEqual(Base64.encode(Array(plain.utf8)), encoded)
            XCTAssertEqual(Base64.decode(encoded), Array(plain.utf8))
        }
        XCTAssertEqual(Base64.encode([0xfb, 0xff, 0xfe]), "+//+")
        for bad in ["Zg=", "Zg", "Z===", "=Zg=", "Zm9v=m9v", "Zh==", "Zm9=", "Zm9v\n", "Zm-v", "Zm_v"] {
            XCTAssertNil(Base64.decode(bad), bad)
        }
    }

    // MARK: Damage

    func testDamagedHistogramsSayWhy() throws {
        let good = try XCTUnwrap(Base64.decode(HistogramCodec.encode(histogram([(1000, 1), (5000, 2)]))))
        func message(_ bytes: [UInt8]) -> String {
            do {
                _ = try HistogramCodec.decode(Base64.encode(bytes))
                return "decoded"
            } catch {
                return error.description
            }
        }
        func withLength(_ bytes: [UInt8]) -> [UInt8] {
            var out = bytes
            let length = UInt32(bytes.count - 8)
            for index in 0..<4 { out[4 + index] = UInt8(truncatingIfNeeded: length >> UInt32(24 - 8 * index)) }
            return out
        }
        XCTAssertThrowsError(try HistogramCodec.decode("not base64!")) { XCTAssertEqual("\($0)", "not base64") }
        XCTAssertEqual(message(Array(good.prefix(5))), "5 octets are too few for a compressed histogram")
        XCTAssertEqual(message([0x1c, 0x84, 0x93, 0x13] + good.dropFirst(4)), "cookie 0x1c849313 is not a V2 compressed histogram's (0x1c849314)")
        XCTAssertEqual(message(good + [0]), "its header gives \(good.count - 8) compressed octets, and \(good.count - 7) follow")
        XCTAssertEqual(message(withLength(Array(good.dropLast(3)))), "the zlib stream is cut short")
        XCTAssertEqual(message(withLength(good + [1, 2])), "2 octets follow the zlib stream")
        XCTAssertEqual(message(withLength(Array(good.prefix(8)) + [0x78, 0x9c, 0xff, 0xff])), "the zlib stream is corrupt")

        var payload = HistogramCodec.payload(histogram([(1000, 1)]))
        XCTAssertThrowsError(try HistogramCodec.decodePayload(Array(payload.prefix(39)))) { XCTAssertEqual("\($0)", "39 octets are too few for a V2 header") }
        payload[15] = 9  // significant digits
        XCTAssertThrowsError(try HistogramCodec.decodePayload(payload)) {
            XCTAssertEqual("\($0)", "impossible settings: lowest 1000, highest 3600000000000, 9 significant digits")
        }
        var runPastEnd = HistogramCodec.payload(LatencyHistogram.make())
        runPastEnd[7] = 4
        runPastEnd += [0xff, 0xff, 0xff, 0x7f]  // a run of 2^27 zeros
        XCTAssertThrowsError(try HistogramCodec.decodePayload(runPastEnd)) { XCTAssertEqual("\($0)", "a run of zeros goes past the last count") }
        var cutCount = HistogramCodec.payload(LatencyHistogram.make())
        cutCount[7] = 1
        cutCount += [0x80]
        XCTAssertThrowsError(try HistogramCodec.decodePayload(cutCount)) { XCTAssertEqual("\($0)", "a count is cut short") }
    }

    // MARK: The percentile rule

    /// HdrHistogram's rule: p% of the total, rounded up; the highest
    /// equivalent value of the bucket reached (below 1 ms a bucket is 512 ns).
    func testPercentilesDependOnTheCountsAlone() throws {
        let hundred = histogram((1...100).map { (UInt64($0) * 1024, UInt64(1)) })
        let expected: [UInt64] = [51_711, 101_887, 102_911, 102_911]  // 50, 99, 100 and 100 times 1024, plus 511
        XCTAssertEqual(LatencyPercentiles.values(at: [50, 99, 99.9, 100], in: hundred), expected)
        let summary = LatencySummary(hundred)
        XCTAssertEqual([summary.p50, summary.p99, summary.max], [51.711, 101.887, 102.911])
        // hdrhistogram-swift's valueAtPercentile clamps to the raw maximum
        // (5000), which no encoded histogram carries; this rule does not.
        let three = histogram([(5000, 3)])
        XCTAssertEqual(three.valueAtPercentile(50), 5000)
        XCTAssertEqual(LatencyPercentiles.values(at: [50], in: three), [5119])
        XCTAssertEqual(LatencyPercentiles.values(at: [50], in: try HistogramCodec.decode(HistogramCodec.encode(three))), [5119])
        XCTAssertEqual(LatencyPercentiles.values(at: [50, 99], in: LatencyHistogram.make()), [0, 0])
    }
}
