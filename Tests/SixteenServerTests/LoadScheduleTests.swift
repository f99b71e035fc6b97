#if canImport(Glibc)
import Glibc
#endif
import Reactor
import SixteenClient
import SixteenProtocol
import SixteenServer
import TestSupport
import XCTest

/// The load generator's schedule and its honest accounting: a run stops at
/// `-d` whatever the rate, what the schedule could not start is dropped,
/// what the hard deadline cut off is unfinished, and running out of
/// descriptors mid-run is counted and survived.
final class LoadScheduleTests: ServerTestCase {
    /// A rate no server here can follow: the run still ends at -d (plus the
    /// late-start grace), and the sessions it could not start are dropped.
    func testARunStopsAtItsDurationWhateverTheRate() throws {
        let server = try startServer(reactors: 1)
        let started = MonotonicClock.nanoseconds()
        let report = try runLoad(LoadConfiguration(
            host: "127.0.0.1", port: server.address.port, mode: .sixteen, connections: 8, threads: 1,
            sessions: nil, duration: .seconds(1), rate: 10_000_000, timeout: .seconds(5)))
        let took = Double(MonotonicClock.nanoseconds() - started) / 1e9
        XCTAssertLessThan(took, 2.5, "a 1 s run took \(took) s")
        XCTAssertEqual(report.errors, 0)
        XCTAssertGreaterThan(report.sessionsStarted, 0)
        // 10 million a second for a second, less what started.
        XCTAssertEqual(Double(report.dropped + report.sessionsStarted), 10_000_000, accuracy: 10_000_000 * 0.01)
        XCTAssertFalse(report.failed(countingDropped: false))
        XCTAssertTrue(report.failed(countingDropped: true))
        XCTAssertTrue(report.humanSummary.contains("dropped (never started)"), report.humanSummary)
    }

    /// A rate the server follows: nothing dropped, the throughput is the rate.
    func testAFollowableRateDropsNothing() throws {
        let server = try startServer(reactors: 1)
        let report = try runLoad(LoadConfiguration(
            host: "127.0.0.1", port: server.address.port, mode: .sixteen, connections: 10, threads: 1,
            sessions: nil, duration: .seconds(1), rate: 200, timeout: .seconds(5)))
        XCTAssertEqual(report.dropped, 0)
        XCTAssertEqual(report.outcomes[.ok], 200)
        XCTAssertEqual(report.sessionsPerSecond, 200, accuracy: 20)
    }

    /// `-n 10 --rate 0.01 --max-time 3`: one session starts, nine never do,
    /// and the summary says so consistently.
    func testTheHardDeadlineLeavesAnHonestSummary() throws {
        let server = try startServer(reactors: 1, request: .seconds(30))
        let report = try runLoad(LoadConfiguration(
            host: "127.0.0.1", port: server.address.port, mode: .sixteen, connections: 1, threads: 1,
            sessions: 10, duration: nil, rate: 0.01, timeout: .seconds(5), hardDeadline: .seconds(1)))
        XCTAssertEqual(report.sessionsStarted, 1)
        XCTAssertEqual(report.outcomes[.ok], 1)
        XCTAssertEqual(report.dropped, 9)
        XCTAssertEqual(report.unfinished, 0)
        XCTAssertEqual(report.sessionsPerSecond, 1, accuracy: 0.2, "one session over the one-second run")
        let summary = report.humanSummary
        XCTAssertTrue(summary.hasPrefix("sixteen: 1 connection on 1 thread, open loop at 0.01 sessions/s\n"), summary)
        XCTAssertTrue(summary.contains("1 started in all, 9 dropped (never started)"), summary)
    }

    /// A session still in flight at the hard deadline is unfinished, not timed out.
    func testSessionsCutByTheHardDeadlineAreUnfinished() throws {
        let server = try startServer(reactors: 1)
        let report = try runLoad(LoadConfiguration(
            host: "127.0.0.1", port: server.address.port, mode: .upper(bytes: 64 << 30, sendAll: true), connections: 2, threads: 1,
            sessions: 2, duration: nil, timeout: .seconds(30), hardDeadline: .milliseconds(500)))
        XCTAssertEqual(report.unfinished, 2)
        XCTAssertEqual(report.outcomes[.timedOut] ?? 0, 0)
        XCTAssertEqual(report.errors, 0)
        XCTAssertTrue(report.failed(countingDropped: false))
        XCTAssertTrue(report.humanSummary.contains("stopped by the hard deadline (--max-time): 2 sessions unfinished"), report.humanSummary)
        XCTAssertTrue(report.json.contains("\"sessions_unfinished\": 2"), report.json)
    }

    /// Connects that fail at once for want of descriptors are counted and
    /// retried after a pause: no crash, no spin, and the run ends on time.
    func testTheGeneratorSurvivesRunningOutOfDescriptors() throws {
        let server = try startServer(reactors: 1)
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        let saved = limit.rlim_cur
        // Made before the limit drops: the threads and loops the run needs.
        let open = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
        limit.rlim_cur = rlim_t(open + 12)
        XCTAssertEqual(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit), 0)
        defer {
            limit.rlim_cur = saved
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
        let started = MonotonicClock.nanoseconds()
        let report = try runLoad(LoadConfiguration(
            host: "127.0.0.1", port: server.address.port, mode: .sixteen, connections: 40, threads: 1,
            sessions: nil, duration: .milliseconds(500), timeout: .seconds(1)))
        // The in-process server is short of descriptors too: what it cannot accept times out after 1 s.
        XCTAssertLessThan(Double(MonotonicClock.nanoseconds() - started) / 1e9, 3)
        XCTAssertGreaterThan(report.outcomes[.connectFailed] ?? 0, 0, "\(report.outcomes)")
        XCTAssertLessThan(report.outcomes[.connectFailed] ?? 0, 40 * 1_000, "retries paused, not spun")
    }

    /// Idle mode opens every connection, however long that takes against
    /// the hold: none is left out (as happened when opening them outlasted -d).
    func testIdleOpensEveryConnectionWhateverTheHold() throws {
        let server = try startServer(reactors: 2)
        let report = try runLoad(LoadConfiguration(
            host: "127.0.0.1", port: server.address.port, mode: .idle, connections: 3_000, threads: 1,
            sessions: nil, duration: .milliseconds(1), timeout: .seconds(10)))
        XCTAssertEqual(report.sessionsStarted, 3_000)
        XCTAssertEqual(report.outcomes[.ok], 3_000)
        XCTAssertEqual(statsAfter(server, ended: 3_000).replied, 3_000)
    }
}
