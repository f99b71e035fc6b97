import Foundation
import Reactor
import SixteenClient
import SixteenProtocol
import TestSupport
import XCTest

/// Every signal an operator (or the system) may send the daemon, and the
/// totals that must come out however it ends. The built binary, as run.
final class SignalTests: XCTestCase {
    private var children: [ChildProcess] = []

    override func tearDown() {
        children.forEach { $0.signal(SIGKILL) }
        children = []
        super.tearDown()
    }

    private func startServer(_ arguments: [String] = [], executable: URL = sixteenExecutable, prefix: [String] = []) throws -> (ChildProcess, Int) {
        let server = try ChildProcess(executable, prefix + ["server", "-p", "0", "--reactors", "2"] + arguments)
        children.append(server)
        let line = try XCTUnwrap(server.readLine(), "no 'Listening at' line: \(server.standardError())")
        return (server, try XCTUnwrap(port(fromListeningLine: line), line))
    }

    private func session(_ port: Int) throws -> [UInt8] {
        try exchangeSixteen(host: "127.0.0.1", port: port, timeout: .seconds(5))
    }

    func testUSR1LogsEveryCounterAndKeepsServing() throws {
        let (server, port) = try startServer()
        for _ in 0..<3 { XCTAssertEqual(try session(port), sixteenReply) }
        // The client has its reply before the server has seen its EOF and
        // closed: ask until the third session is counted.
        var line = ""
        XCTAssertTrue(eventually {
            server.signal(SIGUSR1)
            usleep(20_000)
            line = server.standardError().split(separator: "\n").last { $0.contains("Counters:") }.map(String.init) ?? ""
            return line.contains(" sessions_replied=3")
        }, server.standardError())
        XCTAssertTrue(line.contains(" info sixteen: Counters: "), line)
        for pair in ["connections_accepted=3", "sessions_replied=3", "sessions_short=0", "octets_received=48", "octets_sent=48", "connections_active=0"] {
            XCTAssertTrue(line.contains(" \(pair)"), "\(pair) missing in \(line)")
        }
        XCTAssertEqual(try session(port), sixteenReply, "still serving after SIGUSR1")
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
        XCTAssertEqual(exitTotals(in: server.standardError())?["sessions_replied"], 4)
    }

    func testHUPIsReservedAndKeepsServing() throws {
        let (server, port) = try startServer()
        server.signal(SIGHUP)
        XCTAssertTrue(server.waitForStandardError(containing: "Received SIGHUP: there is no configuration to reload; still serving"), server.standardError())
        XCTAssertEqual(try session(port), sixteenReply)
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
    }

    func testQUITStopsAtOnceWithTotalsAndNoCrashReport() throws {
        let (server, port) = try startServer(["--shutdown-timeout", "60", "--request-timeout", "60"])
        XCTAssertEqual(try session(port), sixteenReply)
        let silent = try DeadlineConnection(host: "127.0.0.1", port: port, timeout: .seconds(5))
        usleep(100_000)
        let started = MonotonicClock.nanoseconds()
        server.signal(SIGQUIT)
        XCTAssertEqual(server.waitForExit(timeout: .seconds(5)), 128 + SIGQUIT)
        XCTAssertLessThan(Double(MonotonicClock.nanoseconds() - started) / 1e9, 2, "SIGQUIT must not wait for sessions")
        let stderr = server.standardError()
        XCTAssertFalse(stderr.contains("crashed") || stderr.contains("Backtrace") || stderr.contains("Fatal"), stderr)
        XCTAssertTrue(stderr.contains("Received SIGQUIT: closing every session and stopping at once"), stderr)
        let totals = try XCTUnwrap(exitTotals(in: stderr), stderr)
        XCTAssertEqual(totals["sessions_replied"], 1)
        XCTAssertEqual(totals["sessions_aborted"], 1, "the silent session is closed and counted")
        XCTAssertEqual(totals["connections_active"], 0)
        XCTAssertEqual(try silent.receiveUntilEnd(), [])
    }

    func testSecondSignalStopsAtOnceAndStillPrintsTheTotals() throws {
        let (server, port) = try startServer(["--shutdown-timeout", "30", "--request-timeout", "60"])
        let silent = try DeadlineConnection(host: "127.0.0.1", port: port, timeout: .seconds(5))
        usleep(100_000)
        server.signal(SIGTERM)
        XCTAssertTrue(server.waitForStandardError(containing: "draining 1 sessions"), server.standardError())
        XCTAssertTrue(server.process.isRunning, "the first signal must drain, not exit, with a session in flight")
        server.signal(SIGINT)
        XCTAssertEqual(server.waitForExit(timeout: .seconds(5)), 128 + SIGINT)
        let stderr = server.standardError()
        XCTAssertTrue(stderr.contains("Received SIGINT again: closing every session and stopping at once"), stderr)
        XCTAssertEqual(exitTotals(in: stderr)?["sessions_aborted"], 1, stderr)
        _ = silent
    }

    /// `timeout 1 sixteen server` signals the process and then its group:
    /// two SIGTERMs a moment apart. However they fall, the totals come out.
    func testNearSimultaneousSignalsStillPrintTheTotals() throws {
        let runs = try (0..<10).map { _ in
            try ChildProcess(URL(fileURLWithPath: "/usr/bin/timeout"), ["1", sixteenExecutable.path, "server", "-p", "0", "--reactors", "2"])
        }
        children += runs
        for (index, run) in runs.enumerated() {
            let status = run.waitForExit(timeout: .seconds(10))
            XCTAssertNotNil(status, "run \(index) did not end")
            // 124: timeout's own status when it had to signal (the daemon's is 0 or 143).
            XCTAssertEqual(status, 124, "run \(index): \(run.standardError())")
            XCTAssertNotNil(exitTotals(in: run.standardError()), "run \(index) lost its totals:\n\(run.standardError())")
        }
    }

    func testSignalsWhoseDefaultWouldKillAreIgnored() throws {
        let (server, port) = try startServer()
        let signals = [SIGALRM, SIGXFSZ, SIGXCPU, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT, SIGPIPE, 40, 64]
        for signal in signals {
            server.signal(signal)
            usleep(20_000)
            XCTAssertTrue(server.process.isRunning, "signal \(signal) killed the daemon")
            XCTAssertEqual(try session(port), sixteenReply, "signal \(signal)")
        }
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
        XCTAssertEqual(exitTotals(in: server.standardError())?["sessions_replied"], signals.count)
    }

    func testTotalsArePrintedWhateverTheLogLevel() throws {
        let (server, port) = try startServer(["--log-level", "critical"])
        XCTAssertEqual(try session(port), sixteenReply)
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
        let lines = server.standardError().split(separator: "\n")
        XCTAssertEqual(lines.count, 1, "at critical only the totals are written:\n\(server.standardError())")
        XCTAssertEqual(exitTotals(in: server.standardError())?["sessions_replied"], 1)
    }

    func testJSONLogLinesForLogShippers() throws {
        let (server, port) = try startServer(["--log-format", "json", "--log-level", "debug"])
        XCTAssertEqual(try session(port), sixteenReply)
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
        let lines = server.standardError().split(separator: "\n")
        XCTAssertGreaterThanOrEqual(lines.count, 8, server.standardError())
        var messages: [String] = []
        for line in lines {
            let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], String(line))
            let time = try XCTUnwrap(object["time"] as? String)
            XCTAssertEqual(time.count, 24, time)
            XCTAssertTrue(time.hasSuffix("Z") && time.dropLast().suffix(4).first == ".", "milliseconds: \(time)")
            XCTAssertNotNil(object["level"] as? String)
            XCTAssertEqual(object["logger"] as? String, "sixteen")
            messages.append(try XCTUnwrap(object["message"] as? String))
            if object["message"] as? String == "Stopped. Totals:" {
                XCTAssertEqual(object["sessions_replied"] as? Int, 1, String(line))
                XCTAssertEqual(object["connections_accepted"] as? Int, 1, String(line))
            }
        }
        XCTAssertTrue(messages.contains("Incoming sixteen-octet message: b'Hi there, server'"), "\(messages)")
        XCTAssertEqual(messages.last, "Stopped. Totals:")
    }

    /// 40 clients over `--max-pending` at once: a handful of warning lines,
    /// and the "more like this" tallies account for every one of them. (Each
    /// sends 8 MiB: the server's socket send buffer alone takes up to 4 MiB
    /// on loopback, tcp_wmem, before output is pending in the server.)
    func testOverLimitWarningsAreRateLimitedAndAccountedFor() throws {
        let (server, port) = try startServer(["--protocol", "upper", "--max-pending", "64K"])
        try onThreads(4) { _ in
            for _ in 0..<10 {
                (try? NonReadingClient(port: port))?.send(8 << 20)
            }
        }
        XCTAssertTrue(eventually { self.overflowCount(server) == 40 }, server.standardError())
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
        let stderr = server.standardError()
        let lines = stderr.split(separator: "\n")
        let logged = lines.filter { $0.contains("would exceed --max-pending 65536") }.count
        let heldBack = lines.compactMap { line -> Int? in
            guard let range = line.range(of: " more like this in the last ") , line.hasSuffix("clients closed past --max-pending") else { return nil }
            return Int(line[..<range.lowerBound].split(separator: " ").last ?? "")
        }.reduce(0, +)
        XCTAssertEqual(logged + heldBack, 40, stderr)
        XCTAssertGreaterThan(heldBack, 0, "40 closes in well under a second must be rate-limited")
        XCTAssertLessThanOrEqual(logged, 12, "one line per reactor per second at most:\n\(stderr)")
        XCTAssertEqual(exitTotals(in: stderr)?["sessions_overflow"], 40)
    }

    private func overflowCount(_ server: ChildProcess) -> Int {
        server.signal(SIGUSR1)
        usleep(50_000)
        guard let line = server.standardError().split(separator: "\n").last(where: { $0.contains("Counters:") }),
              let range = line.range(of: "sessions_overflow=") else { return -1 }
        return Int(line[range.upperBound...].prefix { $0.isNumber }) ?? -1
    }

    /// Under a file-size limit, a client that never reads makes the spill
    /// file hit it: that write fails with EFBIG (not a fatal SIGXFSZ), only
    /// that session ends (as `storage`), and a well-behaved stream beside it
    /// is served in full.
    func testFileSizeLimitEndsOnlyTheSessionThatNeedsTheSpace() throws {
        let (server, port) = try startServer(
            ["--protocol", "upper", "--high-water-mark", "64K", "--memory-budget", "256K"],
            executable: URL(fileURLWithPath: "/bin/bash"),
            prefix: ["-c", "ulimit -f 1024 && exec \"$0\" \"$@\"", sixteenExecutable.path])
        let hog = try NonReadingClient(port: port)
        hog.send(4 << 20)
        XCTAssertTrue(server.waitForStandardError(containing: "File too large"), server.standardError())
        let stream = try runDeadlockStream(host: "127.0.0.1", port: port, byteCount: 512 << 10, stallTimeout: .seconds(10))
        XCTAssertEqual(stream.octets, 512 << 10)
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0, server.standardError())
        let totals = try XCTUnwrap(exitTotals(in: server.standardError()), server.standardError())
        XCTAssertEqual(totals["sessions_storage"], 1)
        XCTAssertEqual(totals["sessions_replied"], 1)
        XCTAssertEqual(totals["spill_files"], 0)
    }
}
