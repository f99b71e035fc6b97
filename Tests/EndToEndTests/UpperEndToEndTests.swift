import Foundation
import Reactor
import SixteenClient
import TestSupport
import XCTest

/// `sixteen server --protocol upper` and `sixteen stream`, as an operator runs
/// them, against each other and against the book's `tcp_deadlock.py`.
final class UpperEndToEndTests: XCTestCase {
    private var children: [ChildProcess] = []

    override func tearDown() {
        children.forEach { $0.signal(SIGKILL) }
        children = []
        super.tearDown()
    }

    private var bookScript: String { repositoryRoot.appendingPathComponent("benchmarks/peers/book/tcp_deadlock.py").path }
    private var env: URL { URL(fileURLWithPath: "/usr/bin/env") }

    private func startUpperServer(_ arguments: [String] = []) throws -> (ChildProcess, Int) {
        let server = try ChildProcess(sixteenExecutable, ["server", "--protocol", "upper", "-p", "0"] + arguments)
        children.append(server)
        let line = try XCTUnwrap(server.readLine(), "no 'Listening at' line")
        return (server, try XCTUnwrap(port(fromListeningLine: line), line))
    }

    func testStreamAgainstUpperServer() throws {
        let (server, port) = try startUpperServer(["--reactors", "2"])
        let result = try runToCompletion(sixteenExecutable, ["stream", "127.0.0.1", "4M", "-p", "\(port)"])
        XCTAssertEqual(result.status, 0, result.stderr)
        let lines = result.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.first, "Sending 4194304 bytes of data, in chunks of 16 bytes")
        XCTAssertTrue(lines.last?.hasPrefix("Sent 4194304 octets and received 4194304 correct uppercase octets in ") == true, result.stdout)
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
        let stderr = server.standardError()
        XCTAssertTrue(stderr.contains("protocol upper"), stderr)
        let totals = try XCTUnwrap(exitTotals(in: stderr), stderr)
        XCTAssertEqual(totals["connections_accepted"], 1, stderr)
        XCTAssertEqual(totals["sessions_replied"], 1, stderr)
        for outcome in ["reset", "idle_timeout", "overflow", "storage", "aborted"] {
            XCTAssertEqual(totals["sessions_\(outcome)"], 0, stderr)
        }
        XCTAssertEqual(totals["octets_received"], 4_194_304, stderr)
        XCTAssertEqual(totals["octets_sent"], 4_194_304, stderr)
        XCTAssertEqual(totals["pending_output_bytes_memory"], 0, stderr)
        XCTAssertEqual(totals["pending_output_bytes_spill"], 0, stderr)
        XCTAssertEqual(totals["spill_files"], 0, stderr)
    }

    func testBookDeadlockClientAgainstUpperServer() throws {
        let (_, port) = try startUpperServer()
        // 64 KiB is already more than the book's own server survives once
        // buffers are small; the book's client sends 16 octets per call.
        let result = try runToCompletion(env, ["python3", bookScript, "client", "127.0.0.1", "65536", "-p", "\(port)"], timeout: .seconds(60))
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("The first data received says b'CAPITALIZE THIS!"), result.stdout)
        XCTAssertTrue(result.stdout.contains("65536 bytes received"), String(result.stdout.suffix(200)))
    }

    func testStreamAgainstBookServerSmallCountWorks() throws {
        let book = try ChildProcess(env, ["python3", "-u", bookScript, "server", "127.0.0.1", "-p", "0"])
        children.append(book)
        let port = try XCTUnwrap(port(fromListeningLine: try XCTUnwrap(book.readLine())))
        let result = try runToCompletion(sixteenExecutable, ["stream", "127.0.0.1", "1024", "-p", "\(port)", "--timeout", "5"])
        XCTAssertEqual(result.status, 0, result.stderr)
        XCTAssertTrue(result.stdout.contains("received 1024 correct uppercase octets"), result.stdout)
    }

    /// The book's blocking server stops reading while stuck in sendall: with
    /// enough data both sides' buffers fill and the stream stalls. `stream`
    /// notices within its --timeout and fails.
    func testStreamAgainstBookServerDeadlocksAndIsReported() throws {
        let book = try ChildProcess(env, ["python3", "-u", bookScript, "server", "127.0.0.1", "-p", "0"])
        children.append(book)
        let port = try XCTUnwrap(port(fromListeningLine: try XCTUnwrap(book.readLine())))
        let result = try runToCompletion(sixteenExecutable, ["stream", "127.0.0.1", "64M", "-p", "\(port)", "--timeout", "1"])
        XCTAssertEqual(result.status, 1)
        XCTAssertTrue(result.stderr.hasPrefix("sixteen: stalled: no progress for 1.0 seconds after sending "), result.stderr)
        XCTAssertTrue(result.stderr.hasSuffix("and receiving 0 octets (is the server deadlocked?)\n"), result.stderr)
    }

    func testOverflowIsLoggedAtWarning() throws {
        let (server, port) = try startUpperServer(["--max-pending", "1M"])
        let connection = try DeadlineConnection(host: "127.0.0.1", port: port, timeout: .seconds(10))
        let chunk = [UInt8](repeating: 0x61, count: 1 << 20)
        XCTAssertThrowsError(try (0..<64).forEach { _ in try connection.sendAll(chunk) })
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
        let stderr = server.standardError()
        XCTAssertTrue(stderr.contains("warning"), stderr)
        XCTAssertTrue(stderr.contains("would exceed --max-pending 1048576 (the client sends without reading)"), stderr)
        XCTAssertEqual(exitTotals(in: stderr)?["sessions_overflow"], 1, stderr)
    }

    func testUnusableSpillDirectoryFailsAtStart() throws {
        let result = try runToCompletion(sixteenExecutable, ["server", "--protocol", "upper", "-p", "0", "--spill-dir", "/nonexistent/spill"])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "sixteen: cannot create spill files in /nonexistent/spill: No such file or directory (choose another with --spill-dir)\n")
    }

    func testStreamUsageErrors() throws {
        for arguments in [["stream", "127.0.0.1", "lots"], ["stream", "127.0.0.1"], ["server", "--protocol", "http"], ["server", "--max-pending", "0"]] {
            let result = try runToCompletion(sixteenExecutable, arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(arguments): \(result.stderr)")
        }
    }
}
