import Foundation
import Histogram
import Reactor
@testable import SixteenClient
import SixteenProtocol
import XCTest

/// The worker-to-collector hand-over of interval histograms, on a clock
/// driven by hand, and the `.hlog` lines the collector writes, exactly.
final class IntervalRingTests: XCTestCase {
    private func at(_ seconds: Double) -> Instant { Instant(nanoseconds: Int64(seconds * 1e9)) }

    private func record(_ ring: IntervalRing, at seconds: Double, latency: UInt64, uncorrected: UInt64? = nil) {
        let slot = ring.slot(at: at(seconds))
        slot.pointee.corrected.record(latency)
        slot.pointee.uncorrected.record(uncorrected ?? latency)
        slot.pointee.sessions += 1
    }

    func testEveryIntervalIsTakenOnceAndTotalsStayExactWhenTheCollectorLags() {
        let rings = [IntervalRing(interval: .seconds(1)), IntervalRing(interval: .seconds(1))]
        rings.forEach { $0.begin(at: .zero) }
        let collector = IntervalCollector(rings: rings, start: .zero, wallStart: WallTime(nanoseconds: 0), interval: .seconds(1),
                                          warmup: .zero, log: nil, comment: "")
        record(rings[0], at: 0.5, latency: 1_000_000)
        collector.collectReady(now: at(0.9))
        XCTAssertEqual(collector.series.count, 0, "interval 0 is not over")
        collector.collectReady(now: at(1.05))
        XCTAssertEqual(collector.series.count, 0, "interval 0 is over, but no worker has moved on")
        record(rings[0], at: 1.5, latency: 2_000_000)
        rings[1].advance(at: at(1.001))  // its boundary timer
        collector.collectReady(now: at(1.6))
        XCTAssertEqual(collector.series.map(\.sessions), [1])
        rings[0].slot(at: at(1.7)).pointee.errors += 1
        // The collector stops collecting; worker 0 runs on for six seconds.
        for second in 2...7 { record(rings[0], at: Double(second) + 0.5, latency: 3_000_000) }
        // It could not move past interval 0 + depth = 4: the rest is counted there.
        XCTAssertEqual(rings[0].completedThrough.load(ordering: .relaxed), 3)
        rings[0].finish()
        rings[1].finish()
        collector.finish(end: at(7.8))
        XCTAssertEqual(collector.series.map(\.sessions), [1, 1, 1, 1, 4, 0, 0, 0])
        XCTAssertEqual(collector.series.map(\.errors), [0, 1, 0, 0, 0, 0, 0, 0])
        XCTAssertEqual(collector.series.map(\.startSeconds), [0, 1, 2, 3, 4, 5, 6, 7])
        XCTAssertEqual(collector.series.last?.seconds ?? 0, 0.8, accuracy: 1e-9)
        XCTAssertEqual(collector.series[0].p50, 1000.447, "1 ms lies in the bucket of 999,936 to 1,000,447 ns: its highest, in µs")
        XCTAssertEqual(collector.series[4].p99, collector.series[2].p99)
    }

    func testTheLogHasTheHeaderAndBothTagsOfEveryMeasuredInterval() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ring-\(getpid())-\(MonotonicClock.nanoseconds()).hlog").path
        defer { unlink(path) }
        let writer = try IntervalLogWriter(path: path)
        let ring = IntervalRing(interval: .milliseconds(500))
        ring.begin(at: .zero)
        // Started 123.456789 ms past a whole second; a warm-up of 0.7 s.
        let collector = IntervalCollector(rings: [ring], start: .zero, wallStart: WallTime(nanoseconds: 1_790_000_000_123_456_789),
                                          interval: .milliseconds(500), warmup: .milliseconds(700), log: writer, comment: "Logged with a test")
        record(ring, at: 0.8, latency: 1_000, uncorrected: 1_000)
        record(ring, at: 1.2, latency: 5_000_000, uncorrected: 2_000)
        ring.finish()
        collector.finish(end: at(1.3))
        try writer.close()
        var first = LatencyHistogram.make()
        first.record(1_000)
        var second = LatencyHistogram.make()
        second.record(5_000_000)
        var secondUncorrected = LatencyHistogram.make()
        secondUncorrected.record(2_000)
        let expected = """
            #[Logged with a test]
            #[Values are latencies in nanoseconds (1 microsecond to 1 hour, 3 significant digits); Interval_Max is in milliseconds; Tag=corrected runs from each session's intended start, Tag=uncorrected from its actual start]
            #[Histogram log format version 1.3]
            #[StartTime: 1790000000.123 (seconds since epoch), 2026-09-21T14:13:20.123Z]
            #[BaseTime: 1790000000.123 (seconds since epoch)]
            "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
            Tag=corrected,0.700,0.300,0.001,\(HistogramCodec.encode(first))
            Tag=uncorrected,0.700,0.300,0.001,\(HistogramCodec.encode(first))
            Tag=corrected,1.000,0.300,5.001,\(HistogramCodec.encode(second))
            Tag=uncorrected,1.000,0.300,0.002,\(HistogramCodec.encode(secondUncorrected))

            """
        XCTAssertEqual(try String(contentsOfFile: path, encoding: .utf8), expected)
        // Interval 0 (0 to 0.5 s) lies inside the warm-up: no line; the series has it.
        XCTAssertEqual(collector.series.map(\.sessions), [0, 1, 1])
    }

    /// BaseTime is the start to the nearest millisecond: the first interval
    /// is logged at 0.000 however far into its millisecond the run began.
    func testTheFirstIntervalStartsAtZero() throws {
        for (nanos, header) in [(Int64(1_790_000_000_123_600_000), "1790000000.124"), (1_790_000_000_999_500_000, "1790000001.000")] {
            let path = FileManager.default.temporaryDirectory.appendingPathComponent("ring-\(getpid())-\(MonotonicClock.nanoseconds()).hlog").path
            defer { unlink(path) }
            let writer = try IntervalLogWriter(path: path)
            let ring = IntervalRing(interval: .seconds(1))
            ring.begin(at: .zero)
            let collector = IntervalCollector(rings: [ring], start: .zero, wallStart: WallTime(nanoseconds: nanos), interval: .seconds(1),
                                              warmup: .zero, log: writer, comment: "test")
            record(ring, at: 0.5, latency: 1_000)
            record(ring, at: 1.5, latency: 1_000)
            ring.finish()
            collector.finish(end: at(1.9))
            try writer.close()
            let lines = try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n")
            XCTAssertTrue(lines[3].hasPrefix("#[StartTime: \(header) "), String(lines[3]))
            XCTAssertEqual(lines.dropFirst(6).map { String($0.prefix(while: { $0 != "H" })) }, [
                "Tag=corrected,0.000,1.000,0.001,", "Tag=uncorrected,0.000,1.000,0.001,",
                "Tag=corrected,1.000,0.900,0.001,", "Tag=uncorrected,1.000,0.900,0.001,",
            ])
        }
    }
}
