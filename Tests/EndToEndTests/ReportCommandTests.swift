import Foundation
import Histogram
import Reactor
import SixteenClient
import TestSupport
import XCTest

/// `sixteen report` on logs written here with the encoder, so every figure,
/// warning and exit code is known in advance, to the octet.
final class ReportCommandTests: XCTestCase {
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sixteen-report-\(getpid())-\(MonotonicClock.nanoseconds())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        try? FileManager.default.removeItem(at: directory)
        super.tearDown()
    }

    /// 1 µs to 1 hour, 3 digits: the settings sixteen load logs with.
    private func histogram(_ milliseconds: [UInt64]) -> String {
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: 1_000, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)
        for value in milliseconds { histogram.record(value * 1_000_000) }
        return HistogramCodec.encode(histogram)
    }

    /// A log starting at `base` seconds since the epoch, one interval per
    /// element of `intervals` (latencies in ms), a second each; the
    /// uncorrected tag has each latency doubled.
    private func log(_ name: String, base: Int, _ intervals: [[UInt64]], uncorrected: Bool = true) throws -> String {
        var lines = [
            "#[Logged with a test]",
            "#[Histogram log format version 1.3]",
            "#[StartTime: \(base).000 (seconds since epoch), whenever]",
            "#[BaseTime: \(base).000 (seconds since epoch)]",
            "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"",
        ]
        for (index, values) in intervals.enumerated() {
            lines.append("Tag=corrected,\(index).000,1.000,0.000,\(histogram(values))")
            if uncorrected { lines.append("Tag=uncorrected,\(index).000,1.000,0.000,\(histogram(values.map { $0 * 2 }))") }
        }
        let path = directory.appendingPathComponent(name).path
        try (lines.joined(separator: "\n") + "\n").write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    private func report(_ arguments: [String]) throws -> (status: Int32?, stdout: String, stderr: String) {
        try runToCompletion(sixteenExecutable, ["report"] + arguments)
    }

    private let base = 1_790_000_000  // 2026-09-21T14:13:20Z

    func testTwoFilesMergeIntoTheirSum() throws {
        let a = try log("a.hlog", base: base, [[1, 1, 1], [2]])
        let b = try log("b.hlog", base: base, [[3], [3]])
        let result = try report([a, b])
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(result.stderr, "")
        // 6 sessions: 1, 1, 1, 2, 3, 3 ms; each value is its bucket's highest equivalent.
        XCTAssertEqual(result.stdout, """
            2 files merged, Tag=corrected, from 2026-09-21T14:13:20.000Z to 2026-09-21T14:13:22.000Z
              sessions   6 measured in 2.00 s
              throughput 3.0 sessions/s
              latency    p50 1.000 ms  p90 3.000 ms  p99 3.000 ms  p99.9 3.000 ms  max 3.000 ms  (Tag=corrected: from intended start)
              file       \(a): 4 sessions in 2 intervals, 2.00 s from 2026-09-21T14:13:20.000Z
              file       \(b): 2 sessions in 2 intervals, 2.00 s from 2026-09-21T14:13:20.000Z

            """)
        let uncorrected = try report([a, b, "--tag", "uncorrected", "--json"])
        XCTAssertEqual(uncorrected.status, 0)
        XCTAssertEqual(uncorrected.stdout, """
            {"tag": "uncorrected", "files": [{"file": "\(a)", "sessions_measured": 4, "intervals": 2, "start_time": "2026-09-21T14:13:20.000Z", \
            "end_time": "2026-09-21T14:13:22.000Z"}, {"file": "\(b)", "sessions_measured": 2, "intervals": 2, "start_time": "2026-09-21T14:13:20.000Z", \
            "end_time": "2026-09-21T14:13:22.000Z"}], "start_time": "2026-09-21T14:13:20.000Z", "end_time": "2026-09-21T14:13:22.000Z", \
            "sessions_measured": 6, "measured_seconds": 2.0, "sessions_per_second": 3.0, "latency_us": {"p50": 2000.895, "p90": 6000.639, \
            "p99": 6000.639, "p99_9": 6000.639, "max": 6000.639}, "overlap_seconds": 2.0, "warnings": []}

            """)
    }

    func testSpansThatDoNotOverlapAreWarnedAbout() throws {
        let a = try log("a.hlog", base: base, [[1, 1, 1], [2]])
        let b = try log("b.hlog", base: base + 10, [[3], [3]])
        let result = try report([a, b])
        XCTAssertEqual(result.status, 0)
        XCTAssertEqual(result.stderr, "sixteen: warning: the files' time spans do not overlap (\(a) 2026-09-21T14:13:20.000Z to 2026-09-21T14:13:22.000Z, "
                       + "\(b) 2026-09-21T14:13:30.000Z to 2026-09-21T14:13:32.000Z): the rate counts the time between them, and the percentiles "
                       + "mix runs that did not load together; start the machines together with --start-at\n")
        XCTAssertTrue(result.stdout.hasPrefix("""
            2 files merged, Tag=corrected, from 2026-09-21T14:13:20.000Z to 2026-09-21T14:13:32.000Z
              sessions   6 measured in 12.00 s
              throughput 0.5 sessions/s

            """), result.stdout)

        let c = try log("c.hlog", base: base + 1, [[3], [3]])
        let partly = try report([a, c, "--json"])
        XCTAssertEqual(partly.status, 0)
        let warning = "the files' time spans overlap for only 1.00 s of the 3.00 s they cover together (33.3%): the rate and the percentiles "
            + "mix time when not every machine was loading; start the machines together with --start-at"
        XCTAssertEqual(partly.stderr, "sixteen: warning: \(warning)\n")
        XCTAssertTrue(partly.stdout.hasSuffix("\"overlap_seconds\": 1.0, \"warnings\": [\"\(warning)\"]}\n"), partly.stdout)

        // 1.9 s of 2.1 s (90.5%) is overlap enough.
        let d = try log("d.hlog", base: base, [[3], [3]])
        let e = try String(contentsOfFile: d, encoding: .utf8).replacingOccurrences(of: "Tag=corrected,0.000,", with: "Tag=corrected,0.100,")
        try e.write(toFile: d, atomically: true, encoding: .utf8)
        let f = try String(contentsOfFile: a, encoding: .utf8).replacingOccurrences(of: "Tag=corrected,1.000,1.000,", with: "Tag=corrected,1.000,1.100,")
        try f.write(toFile: a, atomically: true, encoding: .utf8)
        let enough = try report([a, d])
        XCTAssertEqual(enough.status, 0)
        XCTAssertEqual(enough.stderr, "")
        XCTAssertTrue(enough.stdout.contains("from 2026-09-21T14:13:20.000Z to 2026-09-21T14:13:22.100Z"), enough.stdout)
    }

    func testBadFilesAreOneLineNamingTheFileAndTheLine() throws {
        let good = try log("good.hlog", base: base, [[1]])
        let text = try String(contentsOfFile: good, encoding: .utf8)
        let corrupt = directory.appendingPathComponent("corrupt.hlog").path
        try text.replacingOccurrences(of: "Tag=uncorrected,0.000,1.000,0.000,HISTF", with: "Tag=uncorrected,0.000,1.000,0.000,!ISTF")
            .write(toFile: corrupt, atomically: true, encoding: .utf8)
        let malformed = directory.appendingPathComponent("malformed.hlog").path
        try (text + "0.000,1.000\n").write(toFile: malformed, atomically: true, encoding: .utf8)
        let onlyCorrected = try log("corrected.hlog", base: base, [[1]], uncorrected: false)
        let missing = directory.appendingPathComponent("missing.hlog").path
        let cases: [([String], Int32, String)] = [
            ([good, missing], 1, "sixteen: \(missing): cannot open: No such file or directory\n"),
            ([corrupt, "--tag", "uncorrected"], 1, "sixteen: \(corrupt):7: the histogram does not decode: not base64\n"),
            ([malformed], 1, "sixteen: \(malformed):8: not an interval line ([Tag=NAME,]START,LENGTH,MAX,HISTOGRAM)\n"),
            ([onlyCorrected, "--tag", "uncorrected"], 1, "sixteen: \(onlyCorrected): no interval tagged uncorrected\n"),
            ([directory.path], 1, "sixteen: \(directory.path): cannot read: Is a directory\n"),
            ([], 2, "sixteen: give at least one .hlog file (written by sixteen load --hlog) (see 'sixteen report --help')\n"),
            ([good, "--tag", "both"], 2, "sixteen: The value 'both' is invalid for '--tag <tag>'. Please provide one of 'corrected' and 'uncorrected'. (see 'sixteen report --help')\n"),
        ]
        for (arguments, status, stderr) in cases {
            let result = try report(arguments)
            XCTAssertEqual(result.status, status, "\(arguments)")
            XCTAssertEqual(result.stderr, stderr, "\(arguments)")
            XCTAssertEqual(result.stdout, "", "\(arguments)")
        }
        // The corrupt line is the uncorrected one: the corrected tag still merges.
        XCTAssertEqual(try report([corrupt]).status, 0)
    }
}
