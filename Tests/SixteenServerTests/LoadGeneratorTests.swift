import Reactor
import SixteenClient
import SixteenProtocol
import SixteenServer
import TestSupport
import XCTest

/// `runLoad` against a real in-process server in every mode, and against
/// deliberately wrong servers whose every fault must be caught by kind.
final class LoadGeneratorTests: ServerTestCase {
    private func load(_ server: Server, _ mode: LoadMode, connections: Int = 20, threads: Int = 2,
                      sessions: Int? = nil, duration: Duration? = nil, rate: Double? = nil,
                      timeout: Duration = .seconds(10)) throws -> LoadReport {
        try runLoad(LoadConfiguration(
            host: "127.0.0.1", port: server.address.port, mode: mode, connections: connections, threads: threads,
            sessions: sessions, duration: duration, rate: rate, timeout: timeout))
    }

    func testSixteenClosedLoopRunsExactlyNSessions() throws {
        let server = try startServer()
        let report = try load(server, .sixteen, connections: 20, sessions: 1_000)
        XCTAssertEqual(report.outcomes[.ok], 1_000)
        XCTAssertEqual(report.errors, 0)
        XCTAssertEqual(report.sessionsStarted, 1_000)
        XCTAssertEqual(report.measuredSessions, 1_000)
        XCTAssertFalse(report.failed(countingDropped: true))
        XCTAssertGreaterThan(report.latency.p50, 0)
        XCTAssertLessThanOrEqual(report.latency.p50, report.latency.p99)
        XCTAssertLessThanOrEqual(report.latency.p99, report.latency.max)
        XCTAssertEqual(statsAfter(server, ended: 1_000).replied, 1_000)
    }

    func testDurationStopsOnTime() throws {
        let server = try startServer()
        let started = MonotonicClock.nanoseconds()
        let report = try load(server, .sixteen, connections: 10, duration: .milliseconds(800))
        let took = Double(MonotonicClock.nanoseconds() - started) / 1e9
        XCTAssertGreaterThanOrEqual(took, 0.79)
        XCTAssertLessThan(took, 3, "a -d run must stop soon after its duration")
        XCTAssertGreaterThan(report.outcomes[.ok] ?? 0, 10)
        XCTAssertEqual(report.errors, 0)
        XCTAssertEqual(report.outcomes[.ok], report.sessionsStarted)
    }

    func testOpenLoopHoldsTheRate() throws {
        let server = try startServer()
        let report = try load(server, .sixteen, connections: 10, duration: .seconds(1), rate: 500)
        // 500/s for 1 s: every intended start falls inside the second.
        XCTAssertEqual(report.sessionsStarted, 500)
        XCTAssertEqual(report.outcomes[.ok], 500)
        XCTAssertNotNil(report.rate)
        XCTAssertGreaterThanOrEqual(report.latency.p50, report.uncorrectedLatency.p50 * 0.999)
    }

    func testUpperSendAllAndInterleaved() throws {
        let server = try startUpperServer()
        for sendAll in [true, false] {
            let report = try load(server, .upper(bytes: 300_000, sendAll: sendAll), connections: 4, sessions: 8)
            XCTAssertEqual(report.outcomes[.ok], 8, "sendAll \(sendAll)")
            XCTAssertEqual(report.errors, 0)
            XCTAssertEqual(report.megabytes, Double(8 * 300_000) / 1e6, accuracy: 1e-9)
        }
    }

    func testIdleHoldsThenCompletesEveryConnection() throws {
        let server = try startServer()
        let heldAtOnce = Lock(false)
        let watcher = try ReactorThread(name: "watch") {
            let held = eventually(within: .seconds(5)) { server.metrics().active == 200 && server.metrics().ended == 0 }
            heldAtOnce.withLock { $0 = held }
        }
        let report = try load(server, .idle, connections: 200, duration: .milliseconds(700))
        watcher.join()
        XCTAssertTrue(heldAtOnce.withLock { $0 }, "all 200 connections should be open at once before any completes")
        XCTAssertEqual(report.connectionsEstablished, 200)
        XCTAssertEqual(report.outcomes[.ok], 200)
        XCTAssertEqual(report.errors, 0)
        XCTAssertLessThan(report.latency.max, 500_000, "idle latency runs from the release, not through the 700 ms hold")
        XCTAssertEqual(statsAfter(server, ended: 200).replied, 200)
    }

    func testJSONHasTheFieldsAndCounts() throws {
        let server = try startServer()
        let report = try load(server, .sixteen, connections: 5, sessions: 50)
        let json = report.json
        for field in ["\"mode\": \"sixteen\"", "\"connections\": 5", "\"sessions_ok\": 50", "\"sessions_measured\": 50",
                      "\"errors_total\": 0", "\"sessions_per_second\": ", "\"latency_us\": {\"p50\": ", "\"p99_9\": ",
                      "\"uncorrected_latency_us\": ", "\"client_cpu_us_per_session\": ", "\"wrong_octets\": 0",
                      "\"hit_deadline\": false"] {
            XCTAssertTrue(json.contains(field), "missing \(field) in \(json)")
        }
        XCTAssertTrue(json.hasPrefix("{") && json.hasSuffix("}"))
    }

    /// `--json`'s series: intervals from the run's start, warm-up included
    /// (no session measured there), adding up to the run's totals.
    func testTheSeriesAddsUpToTheTotals() throws {
        let server = try startServer()
        let report = try runLoad(LoadConfiguration(
            host: "127.0.0.1", port: server.address.port, mode: .sixteen, connections: 10, threads: 2,
            sessions: nil, duration: .seconds(1), warmup: .milliseconds(500), rate: 400, interval: .milliseconds(250)))
        XCTAssertEqual(report.series.map(\.sessions).reduce(0, +), report.measuredSessions)
        XCTAssertEqual(report.series.map(\.errors).reduce(0, +), report.errors)
        XCTAssertEqual(report.series.prefix(6).map(\.startSeconds), [0, 0.25, 0.5, 0.75, 1.0, 1.25])
        XCTAssertEqual(report.series.prefix(2).map(\.sessions), [0, 0], "the warm-up is not measured")
        XCTAssertGreaterThan(report.series[2].sessions, 50)
        XCTAssertGreaterThan(report.measuredSessions, 300, "about 400: 400/s for the second after the warm-up")
        XCTAssertTrue(report.json.contains("\"series\": [{\"start_seconds\": 0.0, \"seconds\": 0.25, \"sessions\": 0, \"errors\": 0, \"p50_us\": 0.0, \"p99_us\": 0.0}, "), report.json)
    }

    func testRefusedConnectionsAreCounted() throws {
        let listener = try Socket.listen(on: loopback, reusePort: false, backlog: 1)
        let port = try XCTUnwrap(SocketAddress.local(of: listener)?.port)
        Socket.close(listener)
        let report = try runLoad(LoadConfiguration(host: "127.0.0.1", port: port, mode: .sixteen, connections: 3, threads: 1, sessions: 9, duration: nil))
        XCTAssertEqual(report.outcomes[.refused], 9)
        XCTAssertTrue(report.failed(countingDropped: false))
    }

    /// `--source 127.0.0.2-127.0.0.4`: connections come from each of those addresses in turn.
    func testSourceAddressesAreSpreadAcrossTheRange() throws {
        let listener = try Socket.listen(on: loopback, reusePort: false, backlog: 64)
        let port = try XCTUnwrap(SocketAddress.local(of: listener)?.port)
        let peers = Lock<[String: Int]>([:])
        let thread = try ReactorThread(name: "recorder") {
            for _ in 0..<9 {
                var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 5_000) > 0, case .accepted(let fd) = Socket.accept(listener) else { return }
                let host = SocketAddress.peer(of: fd)?.host ?? "?"
                peers.withLock { $0[host, default: 0] += 1 }
                var request = [UInt8](repeating: 0, count: 16)
                var got = 0
                while got < 16 {
                    var readable = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    guard poll(&readable, 1, 5_000) > 0,
                          case .read(let n) = request.withUnsafeMutableBytes({ Socket.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[got...])) })
                    else { break }
                    got += n
                }
                _ = sixteenReply.withUnsafeBytes { Socket.send(fd, $0) }
                Socket.shutdownWrite(fd)
                usleep(5_000)
                Socket.close(fd)
            }
        }
        defer {
            thread.join()
            Socket.close(listener)
        }
        let sources = try XCTUnwrap(LoadConfiguration.parseSources("127.0.0.2-127.0.0.4"))
        XCTAssertEqual(sources.map(\.host), ["127.0.0.2", "127.0.0.3", "127.0.0.4"])
        let report = try runLoad(LoadConfiguration(host: "127.0.0.1", port: port, mode: .sixteen, connections: 3, threads: 1,
                                                   sessions: 9, duration: nil, sources: sources))
        XCTAssertEqual(report.outcomes[.ok], 9, "\(report.outcomes)")
        XCTAssertEqual(peers.withLock { $0 }, ["127.0.0.2": 3, "127.0.0.3": 3, "127.0.0.4": 3])
        XCTAssertNil(LoadConfiguration.parseSources("127.0.0.9-127.0.0.1"))
        XCTAssertNil(LoadConfiguration.parseSources("127.0.0"))
    }

    // MARK: Wrong servers

    private enum Fault { case wrongOctets, earlyClose, reset, extraOctets, silent }

    private var loopback: SocketAddress {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return .v4(address)
    }

    /// A server that reads each request and answers it wrongly.
    private func withWrongServer(_ fault: Fault, sessions: Int, _ body: (Int) throws -> Void) throws {
        let listener = try Socket.listen(on: loopback, reusePort: false, backlog: 64)
        let port = try XCTUnwrap(SocketAddress.local(of: listener)?.port)
        let thread = try ReactorThread(name: "wrong") {
            for _ in 0..<sessions {
                var ready = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 5_000) > 0, case .accepted(let fd) = Socket.accept(listener) else { return }
                var request = [UInt8](repeating: 0, count: 16)
                var got = 0
                while got < 16 {
                    var readable = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                    guard poll(&readable, 1, 5_000) > 0 else { break }
                    guard case .read(let n) = request.withUnsafeMutableBytes({ Socket.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[got...])) }) else { break }
                    got += n
                }
                let reply: [UInt8]
                switch fault {
                case .wrongOctets: reply = Array("Farewell, CLIENT".utf8)
                case .earlyClose: reply = Array("Farewell".utf8)
                case .extraOctets: reply = Array("Farewell, client!".utf8)
                case .reset, .silent: reply = []
                }
                _ = reply.withUnsafeBytes { Socket.send(fd, $0) }
                switch fault {
                case .reset: Socket.abort(fd)
                case .silent: usleep(600_000); Socket.close(fd)
                default: Socket.shutdownWrite(fd); usleep(20_000); Socket.close(fd)
                }
            }
        }
        defer {
            thread.join()
            Socket.close(listener)
        }
        try body(port)
    }

    private func expect(_ fault: Fault, _ outcome: LoadOutcome, timeout: Duration = .seconds(5)) throws {
        try withWrongServer(fault, sessions: 3) { port in
            let report = try runLoad(LoadConfiguration(host: "127.0.0.1", port: port, mode: .sixteen, connections: 1, threads: 1,
                                                       sessions: 3, duration: nil, timeout: timeout))
            XCTAssertEqual(report.outcomes[outcome], 3, "\(fault): \(report.outcomes)")
            XCTAssertEqual(report.outcomes[.ok] ?? 0, 0)
            XCTAssertTrue(report.failed(countingDropped: false))
        }
    }

    func testWrongOctetsAreCaught() throws { try expect(.wrongOctets, .wrongOctets) }
    func testEarlyCloseIsAShortReply() throws { try expect(.earlyClose, .shortReply) }
    func testOctetsAfterTheReplyAreWrong() throws { try expect(.extraOctets, .wrongOctets) }
    func testResetIsCaught() throws { try expect(.reset, .reset) }
    func testSilentServerTimesOut() throws { try expect(.silent, .timedOut, timeout: .milliseconds(200)) }
}
