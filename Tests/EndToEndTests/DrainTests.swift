import Foundation
import Reactor
import SixteenClient
import SixteenProtocol
import TestSupport
import XCTest

/// A drain loses nothing that already reached the server: connections that
/// wait in the listen queue when SIGTERM comes are accepted and served
/// before the listeners close.
final class DrainTests: XCTestCase {
    private var children: [ChildProcess] = []

    override func tearDown() {
        children.forEach { $0.signal(SIGCONT); $0.signal(SIGKILL) }
        children = []
        super.tearDown()
    }

    func testConnectionsQueuedAtSIGTERMAreAllAnswered() throws {
        // One connection per wake-up: the drain comes while most still wait
        // in the queues, however the threads are scheduled after SIGCONT.
        let server = try ChildProcess(sixteenExecutable, ["server", "-p", "0", "--reactors", "2", "--accept-batch", "1"])
        children.append(server)
        let port = try XCTUnwrap(server.readLine().flatMap(port(fromListeningLine:)))
        XCTAssertTrue(server.waitForStandardError(containing: "At most"))
        server.signal(SIGSTOP)
        // The kernel completes these handshakes into the listen queues; the
        // stopped server has accepted none of them.
        let queued = try (0..<50).map { _ in try DeadlineConnection(host: "127.0.0.1", port: port, timeout: .seconds(5)) }
        for connection in queued { try connection.sendAll(sixteenRequest) }
        server.signal(SIGTERM)
        usleep(100_000)
        server.signal(SIGCONT)
        for (index, connection) in queued.enumerated() {
            XCTAssertEqual(try connection.receiveUntilEnd(), sixteenReply, "queued connection \(index) was not answered")
        }
        XCTAssertEqual(server.waitForExit(), 0, server.standardError())
        let totals = try XCTUnwrap(exitTotals(in: server.standardError()), server.standardError())
        XCTAssertEqual(totals["connections_accepted"], 50)
        XCTAssertEqual(totals["sessions_replied"], 50)
        XCTAssertEqual(totals["sessions_aborted"], 0)
        XCTAssertEqual(totals["sessions_reset"], 0)
    }

    /// `--drain-delay`: after SIGTERM, /ready answers 503 at once while new
    /// connections are still served; when the delay is over, the listener
    /// closes and the daemon exits 0.
    func testDrainDelayKeepsAcceptingWhileUnready() throws {
        let server = try ChildProcess(sixteenExecutable, [
            "server", "-p", "0", "--reactors", "2", "--admin", "127.0.0.1:0", "--drain-delay", "1.5",
        ])
        children.append(server)
        let port = try XCTUnwrap(server.readLine().flatMap(port(fromListeningLine:)))
        XCTAssertTrue(server.waitForStandardError(containing: "Admin listener at"))
        let admin = try XCTUnwrap(adminPort(fromStandardError: server.standardError()))
        XCTAssertEqual(try httpGet(port: admin, "/ready")?.status, 200)
        server.signal(SIGTERM)
        XCTAssertTrue(server.waitForStandardError(containing: "Received SIGTERM: /ready answers 503; accepting for 1.5 seconds more (--drain-delay)"),
                      server.standardError())
        let unready = try XCTUnwrap(httpGet(port: admin, "/ready"))
        XCTAssertEqual(unready.status, 503)
        XCTAssertEqual(unready.body, "draining: accepting until --drain-delay ends\n")
        for _ in 0..<5 {
            XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: port, timeout: .seconds(5)), sixteenReply)
        }
        XCTAssertTrue(server.waitForStandardError(containing: "The --drain-delay is over: no longer accepting; draining"), server.standardError())
        XCTAssertEqual(server.waitForExit(), 0, server.standardError())
        XCTAssertThrowsError(try DeadlineConnection(host: "127.0.0.1", port: port, timeout: .seconds(2)), "the listener is closed")
        let totals = try XCTUnwrap(exitTotals(in: server.standardError()), server.standardError())
        XCTAssertEqual(totals["sessions_replied"], 5)
    }
}

/// After a flood of connections ends, the daemon gives its memory back.
final class FloodMemoryTests: XCTestCase {
    private var children: [ChildProcess] = []

    override func tearDown() {
        children.forEach { $0.signal(SIGKILL) }
        children = []
        super.tearDown()
    }

    private func residentKiB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    }

    /// 15,000 idle connections come and go; within a bounded time the
    /// resident set is back near where it started. What may remain is
    /// libev's own arrays (per descriptor number, pending events, epoll
    /// results), sized for the peak and never shrunk by libev: about 1 MB
    /// for 15,000 descriptors over two loops.
    func testRSSReturnsNearTheBaselineAfterAFlood() throws {
        let server = try ChildProcess(sixteenExecutable, ["server", "-p", "0", "--reactors", "2", "--log-level", "error"])
        children.append(server)
        let port = try XCTUnwrap(server.readLine().flatMap(port(fromListeningLine:)))
        for _ in 0..<20 { XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: port, timeout: .seconds(5)), sixteenReply) }
        usleep(300_000)
        let baseline = try XCTUnwrap(residentKiB(server.pid))
        let flood = try runToCompletion(URL(fileURLWithPath: "/bin/bash"), [
            "-c", "ulimit -n $(ulimit -Hn) && exec \"$0\" load 127.0.0.1 -p \(port) --protocol idle -c 15000 -d 3 --threads 1 --timeout 30",
            sixteenExecutable.path,
        ], timeout: .seconds(60))
        XCTAssertEqual(flood.status, 0, flood.stdout + flood.stderr)
        XCTAssertTrue(flood.stdout.contains("sessions   15000 "), flood.stdout)
        let peak = try XCTUnwrap(residentKiB(server.pid))
        XCTAssertGreaterThan(peak - baseline, 1_500, "the flood did not grow the server: no test")
        var settled = peak
        let back = eventually(within: .seconds(15)) {
            settled = self.residentKiB(server.pid) ?? settled
            return settled - baseline <= 1_280
        }
        XCTAssertTrue(back, "RSS \(settled) KiB, baseline \(baseline) KiB, peak \(peak) KiB: \(settled - baseline) KiB not given back")
        XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: port, timeout: .seconds(5)), sixteenReply, "still serving")
    }
}
