import Reactor
import SixteenClient
import SixteenProtocol
import SixteenServer
import TestSupport
import XCTest

/// The `upper` limits over real sockets: a small `--max-pending` never
/// closes a client that reads, and a client that holds output unread while
/// trickling input is closed within the idle timeout.
final class UpperLimitsTests: ServerTestCase {
    func testAMaxPendingFarBelowTheReadSizeNeverClosesAClientThatReads() throws {
        let server = try startUpperServer(maxPending: 1_000)
        let report = try runLoad(LoadConfiguration(
            host: "127.0.0.1", port: server.address.port, mode: .upper(bytes: 4 << 20, sendAll: false),
            connections: 4, threads: 1, sessions: 8, duration: nil, timeout: .seconds(20)))
        XCTAssertEqual(report.outcomes[.ok], 8, "\(report.outcomes)")
        let stats = statsAfter(server, ended: 8)
        XCTAssertEqual(stats.streamsCompleted, 8)
        XCTAssertEqual(stats.overflows, 0)
        XCTAssertEqual(stats.octetsEchoed, 8 * (4 << 20))
    }

    func testATricklingHolderIsClosedWithinTheIdleTimeout() throws {
        let server = try startUpperServer(idle: .seconds(2), highWaterMark: 64 << 10, memoryBudget: 256 << 10)
        let holder = try NonReadingClient(port: server.address.port)
        XCTAssertEqual(holder.send(12 << 20), 12 << 20)
        XCTAssertTrue(eventually { server.metrics().spilledOctets > 1 << 20 }, server.metrics().totalsLine)
        // One octet a second: it keeps the connection "active" by the old
        // rule, but it is not progress while output is held.
        let started = MonotonicClock.nanoseconds()
        var closedAfter: Double?
        for _ in 0..<10 {
            usleep(1_000_000)
            if holder.send(1) == 0 || server.metrics().idleTimeouts == 1 {
                closedAfter = Double(MonotonicClock.nanoseconds() - started) / 1e9
                break
            }
        }
        let after = try XCTUnwrap(closedAfter, "the holder was not closed within 10 s: \(server.metrics().totalsLine)")
        XCTAssertLessThan(after, 4.5, "closed \(after) s after trickling began; idle timeout 2 s")
        let stats = statsAfter(server, ended: 1)
        XCTAssertEqual(stats.idleTimeouts, 1)
        XCTAssertEqual(stats.spillFiles, 0, "its spill file is gone")
        XCTAssertEqual(stats.spilledOctets, 0)
    }

    /// The book's client against the same idle timeout: everything sent
    /// before anything is read, for longer than the timeout, and served in full.
    func testTheBooksClientOutlastsTheIdleTimeout() throws {
        let server = try startUpperServer(idle: .seconds(1), highWaterMark: 64 << 10, memoryBudget: 256 << 10)
        let result = try runDeadlockStream(host: "127.0.0.1", port: server.address.port, byteCount: 96 << 20, stallTimeout: .seconds(20))
        XCTAssertEqual(result.octets, 96 << 20)
        XCTAssertEqual(statsAfter(server, ended: 1).streamsCompleted, 1)
    }
}
