import Foundation
import Reactor
import SixteenClient
import TestSupport
import XCTest

/// `sixteen load --hlog`, `--json`'s series and `--start-at`, against a real
/// daemon, with the logs decoded by the reference implementation
/// (HdrHistogram_py, installed into .build-test-venv by
/// scripts/ensure-test-tools) and merged by `sixteen report`.
final class IntervalLogTests: XCTestCase {
    private var children: [ChildProcess] = []
    private var directory: URL!

    override func setUpWithError() throws {
        directory = FileManager.default.temporaryDirectory.appendingPathComponent("sixteen-hlog-\(getpid())-\(MonotonicClock.nanoseconds())")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
    }

    override func tearDown() {
        children.forEach { $0.signal(SIGKILL) }
        children = []
        try? FileManager.default.removeItem(at: directory)
        super.tearDown()
    }

    private func path(_ name: String) -> String { directory.appendingPathComponent(name).path }

    private func startServer() throws -> Int {
        let server = try ChildProcess(sixteenExecutable, ["server", "-p", "0"])
        children.append(server)
        let line = try XCTUnwrap(server.readLine(), "no 'Listening at' line")
        return try XCTUnwrap(port(fromListeningLine: line), line)
    }

    private func object(_ text: String) throws -> [String: Any] {
        try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], text)
    }

    /// Microseconds as JSON gives them, in whole nanoseconds.
    private func nanos(_ value: Any?) -> Int? { (value as? Double).map { Int(($0 * 1000).rounded()) } }

    // MARK: The reference decoder

    /// Per tag, what HdrHistogram_py makes of the logs at `paths`, merged.
    private func decodeWithHdrHistogramPy(_ paths: [String]) throws -> [String: [String: Any]] {
        let python = repositoryRoot.appendingPathComponent(".build-test-venv/bin/python")
        guard FileManager.default.isExecutableFile(atPath: python.path) else {
            XCTFail("\(python.path) is missing: run scripts/ensure-test-tools (it installs HdrHistogram_py, the reference .hlog decoder)")
            throw POSIXError(.ENOENT)
        }
        let script = """
            import json, math, sys
            from hdrh.histogram import HdrHistogram
            from hdrh.log import HistogramLogReader
            merged, intervals = {}, {}
            for path in sys.argv[1:]:
                reader = HistogramLogReader(path, HdrHistogram(1000, 3600000000000, 3))
                while True:
                    h = reader.get_next_interval_histogram()
                    if h is None:
                        break
                    tag = h.get_tag()
                    intervals[tag] = intervals.get(tag, 0) + 1
                    if tag in merged:
                        merged[tag].add(h)
                    else:
                        merged[tag] = h
            def java_rule(h, p):
                # HdrHistogram's getValueAtPercentile (Java 2.1.10 and later): the count rounded up.
                target = max(1, math.ceil(math.nextafter(p, -math.inf) * h.get_total_count() / 100))
                seen = 0
                for i in range(h.counts_len):
                    seen += h.get_count_at_index(i)
                    if seen >= target:
                        return h.get_highest_equivalent_value(h.get_value_from_index(i))
                return 0
            out = {}
            for tag, h in merged.items():
                out[tag] = {"intervals": intervals[tag], "total": h.get_total_count(), "max": h.get_max_value(),
                            "p50": h.get_value_at_percentile(50), "p99": h.get_value_at_percentile(99),
                            "p50_rounded_up": java_rule(h, 50.0), "p99_rounded_up": java_rule(h, 99.0),
                            "counts": [[h.get_value_from_index(i), h.get_count_at_index(i)]
                                       for i in range(h.counts_len) if h.get_count_at_index(i)]}
            print(json.dumps(out))
            """
        let result = try runToCompletion(python, ["-c", script] + paths, timeout: .seconds(60))
        XCTAssertEqual(result.status, 0, result.stderr)
        return try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: [String: Any]], result.stdout)
    }

    /// The reference's figures agree with `latency` (a `latency_us` object) to the nanosecond.
    private func assertAgree(_ reference: [String: Any], _ latency: [String: Any], _ what: String, line: UInt = #line) {
        XCTAssertEqual(reference["max"] as? Int, nanos(latency["max"]), "\(what): max", line: line)
        XCTAssertEqual(reference["p50"] as? Int, nanos(latency["p50"]), "\(what): p50", line: line)
        XCTAssertEqual(reference["p50_rounded_up"] as? Int, nanos(latency["p50"]), "\(what): p50", line: line)
        XCTAssertEqual(reference["p99_rounded_up"] as? Int, nanos(latency["p99"]), "\(what): p99", line: line)
        let total = reference["total"] as? Int ?? 0
        // HdrHistogram_py rounds the wanted count to the nearest: where that is the count rounded up, its p99 agrees too.
        if (99 * total + 50) / 100 == (99 * total + 99) / 100 {
            XCTAssertEqual(reference["p99"] as? Int, nanos(latency["p99"]), "\(what): HdrHistogram_py's own p99", line: line)
        }
    }

    // MARK: One machine

    func testTheLogDecodesWithHdrHistogramPyAndAgreesWithTheRun() throws {
        let port = try startServer()
        let log = path("a.hlog")
        let run = try runToCompletion(sixteenExecutable, ["load", "127.0.0.1", "-p", "\(port)", "-c", "8", "--threads", "2", "-d", "2",
                                                          "--interval", "0.5", "--hlog", log, "--json"], timeout: .seconds(30))
        XCTAssertEqual(run.status, 0, run.stderr)
        XCTAssertEqual(run.stderr, "")
        let json = try object(run.stdout)
        let measured = try XCTUnwrap(json["sessions_measured"] as? Int)
        XCTAssertGreaterThan(measured, 100)
        let series = try XCTUnwrap(json["series"] as? [[String: Any]])
        XCTAssertEqual(series.map { $0["sessions"] as? Int ?? -1 }.reduce(0, +), measured)
        XCTAssertEqual(series.map { $0["errors"] as? Int ?? -1 }.reduce(0, +), json["errors_total"] as? Int)
        XCTAssertEqual(series.prefix(4).map { $0["start_seconds"] as? Double }, [0, 0.5, 1, 1.5])
        XCTAssertEqual(series.prefix(4).map { $0["seconds"] as? Double }, [0.5, 0.5, 0.5, 0.5])
        XCTAssertEqual(Set(series.first!.keys), ["start_seconds", "seconds", "sessions", "errors", "p50_us", "p99_us"])

        let text = try String(contentsOfFile: log, encoding: .utf8)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines[2], "#[Histogram log format version 1.3]")
        XCTAssertTrue(lines[3].hasPrefix("#[StartTime: "), String(lines[3]))
        XCTAssertTrue(lines[4].hasPrefix("#[BaseTime: "), String(lines[4]))
        XCTAssertEqual(lines[5], "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\"")
        XCTAssertEqual(lines.count, 6 + 2 * series.count, "two tags per interval")
        XCTAssertTrue(lines[6].hasPrefix("Tag=corrected,0.000,0.500,"), String(lines[6]))
        XCTAssertTrue(lines[7].hasPrefix("Tag=uncorrected,0.000,0.500,"), String(lines[7]))

        let decoded = try decodeWithHdrHistogramPy([log])
        let latency = try XCTUnwrap(json["latency_us"] as? [String: Any])
        for tag in ["corrected", "uncorrected"] {
            let reference = try XCTUnwrap(decoded[tag], "no \(tag) intervals")
            XCTAssertEqual(reference["total"] as? Int, measured, tag)
            XCTAssertEqual(reference["intervals"] as? Int, series.count, tag)
            assertAgree(reference, latency, tag)
        }
        // A closed loop: both tags hold the same data, count for count.
        XCTAssertEqual(decoded["corrected"]?["counts"] as? [[Int]], decoded["uncorrected"]?["counts"] as? [[Int]])

        // sixteen report of the one file says what the run said.
        for tag in ["corrected", "uncorrected"] {
            let report = try runToCompletion(sixteenExecutable, ["report", log, "--json", "--tag", tag])
            XCTAssertEqual(report.status, 0, report.stderr)
            XCTAssertEqual(report.stderr, "")
            let merged = try object(report.stdout)
            XCTAssertEqual(merged["sessions_measured"] as? Int, measured)
            XCTAssertEqual(merged["latency_us"] as? [String: Double], latency as? [String: Double])
            XCTAssertEqual(merged["warnings"] as? [String], [])
        }
    }

    func testTheSeriesCountsEveryError() throws {
        let port = try freeLoopbackPort()
        let run = try runToCompletion(sixteenExecutable, ["load", "127.0.0.1", "-p", "\(port)", "-c", "2", "--threads", "1", "-d", "1", "--json"],
                                      timeout: .seconds(20))
        XCTAssertEqual(run.status, 1)
        let json = try object(run.stdout)
        let errors = try XCTUnwrap(json["errors_total"] as? Int)
        XCTAssertGreaterThan(errors, 10, "refused connects are retried every millisecond")
        XCTAssertEqual(run.stderr, "sixteen: \(errors) sessions failed\n")
        let series = try XCTUnwrap(json["series"] as? [[String: Any]])
        XCTAssertEqual(series.map { $0["errors"] as? Int ?? -1 }.reduce(0, +), errors)
        XCTAssertEqual(series.map { $0["sessions"] as? Int ?? -1 }.reduce(0, +), 0)
        XCTAssertEqual(json["sessions_measured"] as? Int, 0)
    }

    // MARK: Two machines

    /// Two load generators told to start at one time: they do, within
    /// milliseconds, and their merged logs are exactly both runs.
    func testRunsStartedTogetherMergeExactly() throws {
        let port = try startServer()
        let startAt = WallTime(nanoseconds: (WallTime.now().milliseconds + 2_500) * 1_000_000)
        let logs = [path("one.hlog"), path("two.hlog")]
        let runs = try logs.map { log in
            try ChildProcess(sixteenExecutable, ["load", "127.0.0.1", "-p", "\(port)", "-c", "4", "--threads", "1", "-d", "1.5",
                                                 "--hlog", log, "--json", "--start-at", "@\(startAt.secondsWithMilliseconds)"])
        }
        children += runs
        var measured = 0
        for run in runs {
            XCTAssertEqual(run.waitForExit(timeout: .seconds(30)), 0, run.standardError())
            XCTAssertEqual(run.standardError(), "")
            let json = try object(run.remainingOutput())
            measured += try XCTUnwrap(json["sessions_measured"] as? Int)
            let started = try XCTUnwrap(WallTime.parse(try XCTUnwrap(json["start_time"] as? String)))
            XCTAssertGreaterThanOrEqual(started, startAt, "started before --start-at")
            XCTAssertLessThan(started.nanoseconds - startAt.nanoseconds, 100_000_000, "started late")
        }
        let report = try runToCompletion(sixteenExecutable, ["report"] + logs + ["--json"])
        XCTAssertEqual(report.status, 0, report.stderr)
        XCTAssertEqual(report.stderr, "", "spans that overlap draw no warning")
        let merged = try object(report.stdout)
        XCTAssertEqual(merged["sessions_measured"] as? Int, measured)
        let decoded = try decodeWithHdrHistogramPy(logs)
        let reference = try XCTUnwrap(decoded["corrected"])
        XCTAssertEqual(reference["total"] as? Int, measured)
        assertAgree(reference, try XCTUnwrap(merged["latency_us"] as? [String: Any]), "merged")
    }

    // MARK: --start-at and --interval refused

    func testStartAtRefusesThePastAndTheFarFuture() throws {
        let past = try runToCompletion(sixteenExecutable, ["load", "127.0.0.1", "-n", "1", "--start-at", "2020-01-01T01:00:00+01:00"])
        XCTAssertEqual(past.status, 2)
        XCTAssertTrue(past.stderr.hasPrefix("sixteen: The value '2020-01-01T01:00:00+01:00' is invalid for '--start-at <time>': "
                                            + "2020-01-01T00:00:00.000Z is in the past (the clock here reads 20"), past.stderr)
        XCTAssertTrue(past.stderr.hasSuffix("Z) (see 'sixteen load --help')\n"), past.stderr)
        let later = WallTime.now().nanoseconds / 1_000_000_000 + 2 * 86_400
        let far = try runToCompletion(sixteenExecutable, ["load", "127.0.0.1", "-n", "1", "--start-at", "@\(later)"])
        XCTAssertEqual(far.status, 2)
        XCTAssertTrue(far.stderr.contains("is more than 24 hours ahead (the clock here reads "), far.stderr)
        XCTAssertEqual(far.stderr.split(separator: "\n").count, 1)
        let interval = try runToCompletion(sixteenExecutable, ["load", "127.0.0.1", "-n", "1", "--interval", "2"])
        XCTAssertEqual(interval.status, 2)
        XCTAssertEqual(interval.stderr, "sixteen: --interval sets the intervals of --hlog and of --json's series: give one of them too (see 'sixteen load --help')\n")
        let unwritable = try runToCompletion(sixteenExecutable, ["load", "127.0.0.1", "-n", "1", "--hlog", path("no/such/dir.hlog")])
        XCTAssertEqual(unwritable.status, 1)
        XCTAssertEqual(unwritable.stderr, "sixteen: cannot write the log \(path("no/such/dir.hlog")): No such file or directory\n")
    }
}
