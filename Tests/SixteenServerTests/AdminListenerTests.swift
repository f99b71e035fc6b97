import Foundation
import Reactor
import SixteenClient
import SixteenProtocol
@testable import SixteenServer
import TestSupport
import XCTest

/// The admin listener against a real in-process server: what `/metrics`
/// says is exactly what was done (and a real Prometheus parser accepts it),
/// `/healthz` and `/ready` tell the truth, and no admin client can slow the
/// protocols down.
final class AdminListenerTests: ServerTestCase {
    /// Both protocols on one daemon, with an admin listener.
    private func startBoth(adminTimeout: Duration = .seconds(5), maxAdminConnections: Int = 64, shutdown: Duration = .seconds(5)) throws -> Server {
        try startServer(ServerConfiguration(
            services: [
                Service(.sixteen(SixteenTimeouts(request: .seconds(10), linger: .seconds(2))), port: 0),
                Service(.upper(UpperConfiguration()), port: 0),
            ],
            host: "127.0.0.1", reactors: 2, shutdownTimeout: shutdown,
            admin: AdminConfiguration(host: "127.0.0.1", port: 0, requestTimeout: adminTimeout, maxConnections: maxAdminConnections)))
    }

    private func adminPort(_ server: Server) throws -> Int {
        try XCTUnwrap(server.adminAddress?.port)
    }

    func testMetricsCountEverySessionOfBothProtocolsExactly() throws {
        let server = try startBoth()
        let sixteenPort = server.addresses[0].port, upperPort = server.addresses[1].port
        for _ in 0..<30 {
            let connection = try DeadlineConnection(host: "127.0.0.1", port: sixteenPort, timeout: .seconds(5))
            try connection.sendAll(sixteenRequest)
            XCTAssertEqual(try connection.receiveUntilEnd(), sixteenReply)
        }
        for _ in 0..<4 {
            let short = try DeadlineConnection(host: "127.0.0.1", port: sixteenPort, timeout: .seconds(5))
            try short.sendAll(Array(sixteenRequest.prefix(5)))
            short.shutdownWrite()
            XCTAssertEqual(try short.receiveUntilEnd(), [])
        }
        let stream = try runDeadlockStream(host: "127.0.0.1", port: upperPort, byteCount: 3 << 20, stallTimeout: .seconds(10))
        XCTAssertEqual(stream.octets, 3 << 20)
        _ = statsAfter(server, ended: 35)

        let response = try XCTUnwrap(httpGet(port: adminPort(server), "/metrics"))
        XCTAssertEqual(response.status, 200)
        XCTAssertEqual(response.headers["content-type"], "text/plain; version=0.0.4; charset=utf-8")
        XCTAssertEqual(response.headers["connection"], "close")
        XCTAssertEqual(Int(response.headers["content-length"] ?? ""), response.body.utf8.count)
        let document = try ExpositionParser.parse(response.body)
        XCTAssertEqual(document.value("sixteen_connections_accepted_total"), 35)
        XCTAssertEqual(document.value("sixteen_connections_active"), 0)
        XCTAssertEqual(document.value("sixteen_sessions_total", ["protocol": "sixteen", "outcome": "replied"]), 30)
        XCTAssertEqual(document.value("sixteen_sessions_total", ["protocol": "sixteen", "outcome": "short"]), 4)
        XCTAssertEqual(document.value("sixteen_sessions_total", ["protocol": "sixteen"]), 34)
        XCTAssertEqual(document.value("sixteen_sessions_total", ["protocol": "upper", "outcome": "replied"]), 1)
        XCTAssertEqual(document.value("sixteen_sessions_total", ["protocol": "upper"]), 1)
        let received: Int = 30 * 16 + 4 * 5 + (3 << 20)
        let sent: Int = 30 * 16 + (3 << 20)
        XCTAssertEqual(document.value("sixteen_octets_received_total"), Double(received))
        XCTAssertEqual(document.value("sixteen_octets_sent_total"), Double(sent))
        XCTAssertEqual(document.value("sixteen_session_duration_seconds_count", ["protocol": "sixteen"]), 34)
        XCTAssertEqual(document.value("sixteen_session_duration_seconds_count", ["protocol": "upper"]), 1)
        XCTAssertEqual(document.value("sixteen_session_duration_seconds_bucket", ["protocol": "sixteen", "le": "+Inf"]), 34)
        XCTAssertEqual(document.value("sixteen_pending_output_bytes", ["store": "memory"]), 0)
        XCTAssertEqual(document.value("sixteen_pending_output_bytes", ["store": "spill"]), 0)
        XCTAssertEqual(document.value("sixteen_spill_files"), 0)
        XCTAssertEqual(document.value("sixteen_accepting"), 1)
        XCTAssertEqual(document.value("sixteen_accept_shed_total"), 0)
        XCTAssertEqual(document.value("sixteen_accept_errors_total"), 0)
        XCTAssertEqual(document.value("sixteen_build_info", ["version": BuildInfo.version, "libev": libevVersion]), 1)
        XCTAssertEqual(document.labelValues("reactor", of: "sixteen_loop_iteration_seconds_count"), ["0", "1", "2", "3"])
        XCTAssertGreaterThan(document.value("sixteen_loop_iteration_seconds_count", ["protocol": "sixteen"]) ?? 0, 0)
        XCTAssertGreaterThan(document.value("sixteen_loop_iteration_seconds_count", ["protocol": "upper"]) ?? 0, 0)
        for family in ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "process_start_time_seconds"] {
            XCTAssertGreaterThan(document.value(family) ?? 0, 0, family)
        }
        XCTAssertEqual(document.types["sixteen_sessions_total"], "counter")
        XCTAssertEqual(document.types["sixteen_session_duration_seconds"], "histogram")
        XCTAssertEqual(document.types["sixteen_connections_active"], "gauge")
        // Every family has HELP and TYPE, once.
        for family in document.types.keys {
            XCTAssertEqual(response.body.components(separatedBy: "# HELP \(family) ").count, 2, family)
            XCTAssertEqual(response.body.components(separatedBy: "# TYPE \(family) ").count, 2, family)
        }
        let check = try promtoolCheckMetrics(response.body)
        XCTAssertEqual(check.status, 0, "promtool check metrics (scripts/ensure-test-tools installs it): \(check.output)")
        XCTAssertEqual(check.output, "", "promtool has lint findings")
        // The scrape itself was counted, after it was rendered.
        XCTAssertEqual(server.metrics().value("sixteen_admin_requests_total", ["code": "200"]), 1)
    }

    func testEveryErrorHasItsStatusAndHEADHasNoBody() throws {
        let server = try startBoth()
        let port = try adminPort(server)
        XCTAssertEqual(try httpGet(port: port, "/nosuch")?.status, 404)
        let post = try XCTUnwrap(httpGet(port: port, "/metrics", method: "POST"))
        XCTAssertEqual(post.status, 405)
        XCTAssertEqual(post.headers["allow"], "GET, HEAD")
        XCTAssertEqual(try httpExchange(port: port, Array("GARBAGE\r\n\r\n".utf8))?.status, 400)
        XCTAssertEqual(try httpExchange(port: port, Array("GET /metrics HTTP/1.1\r\n\r\n".utf8))?.status, 400, "HTTP/1.1 needs Host")
        XCTAssertEqual(try httpExchange(port: port, Array("GET /metrics HTTP/2.0\r\nHost: x\r\n\r\n".utf8))?.status, 505)
        let huge = "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Padding: " + String(repeating: "a", count: 9000) + "\r\n\r\n"
        XCTAssertEqual(try httpExchange(port: port, Array(huge.utf8))?.status, 431)
        let head = try XCTUnwrap(httpGet(port: port, "/ready", method: "HEAD"))
        XCTAssertEqual(head.status, 200)
        XCTAssertEqual(head.headers["content-length"], "6")
        XCTAssertEqual(head.body, "")
        XCTAssertEqual(try httpGet(port: port, "/ready")?.body, "ready\n")
        // HTTP/1.0 needs no Host; a request with a body still gets its whole answer (no reset).
        XCTAssertEqual(try httpExchange(port: port, Array("GET /healthz HTTP/1.0\r\n\r\n".utf8))?.status, 200)
        let withBody = "GET /ready HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + String(repeating: "b", count: 100_000)
        XCTAssertEqual(try httpExchange(port: port, Array(withBody.utf8))?.body, "ready\n")
        let metrics = server.metrics()
        XCTAssertEqual(metrics.value("sixteen_admin_requests_total", ["code": "404"]), 1)
        XCTAssertEqual(metrics.value("sixteen_admin_requests_total", ["code": "405"]), 1)
        XCTAssertEqual(metrics.value("sixteen_admin_requests_total", ["code": "400"]), 2)
        XCTAssertEqual(metrics.value("sixteen_admin_requests_total", ["code": "505"]), 1)
        XCTAssertEqual(metrics.value("sixteen_admin_requests_total", ["code": "431"]), 1)
        XCTAssertEqual(metrics.value("sixteen_admin_requests_total", ["code": "200"]), 4)
        XCTAssertEqual(metrics.accepted, 0, "admin connections are not client connections")
    }

    func testReadyTurnsUnavailableWhileDraining() throws {
        let server = try startBoth(shutdown: .seconds(20))
        let port = try adminPort(server)
        XCTAssertEqual(try httpGet(port: port, "/ready")?.status, 200)
        let inFlight = try DeadlineConnection(host: "127.0.0.1", port: server.address.port, timeout: .seconds(10))
        XCTAssertTrue(eventually { server.metrics().active == 1 })
        server.requestShutdown()
        let draining = try XCTUnwrap(httpGet(port: port, "/ready"))
        XCTAssertEqual(draining.status, 503)
        XCTAssertEqual(draining.body, "not accepting: draining\n")
        XCTAssertEqual(try httpGet(port: port, "/healthz")?.status, 200, "draining is not unhealthy")
        XCTAssertEqual(ExpositionParser.number(Substring("0")), server.metrics().value("sixteen_accepting"))
        try inFlight.sendAll(sixteenRequest)
        XCTAssertEqual(try inFlight.receiveUntilEnd(), sixteenReply)
        inFlight.shutdownWrite()
        let totals = server.wait()
        XCTAssertEqual(totals.sessions(.replied), 1)
    }

    func testHealthNamesEveryStalledReactor() throws {
        let server = try startBoth()
        XCTAssertEqual(server.respond(to: .health).status, .ok)
        XCTAssertEqual(server.respond(to: .health).body, "ok: 4 reactors turning\n")
        // Seen from four seconds on, every loop has gone that long without an iteration.
        let later = MonotonicClock.nanoseconds() + 4_000_000_000
        let response = server.respond(to: .health, now: later)
        XCTAssertEqual(response.status, .serviceUnavailable)
        let lines = response.body.split(separator: "\n")
        XCTAssertEqual(lines.count, 4, response.body)
        for (index, line) in lines.enumerated() {
            XCTAssertTrue(line.hasPrefix("reactor \(index) stalled: no loop iteration finished for "), String(line))
        }
        // A second later than now is not a stall: the heartbeat makes every loop turn each second.
        XCTAssertEqual(server.respond(to: .health, now: MonotonicClock.nanoseconds() + 1_000_000_000).status, .ok)
    }

    /// Silent, garbage and oversized admin clients, at once, while sessions
    /// flow: every session is served, every admin client gets its own
    /// outcome, and the admin listener answers again afterwards.
    func testHostileAdminClientsCannotSlowTheProtocols() throws {
        let server = try startBoth(adminTimeout: .milliseconds(800), maxAdminConnections: 32)
        let port = try adminPort(server)
        let silent = (0..<60).compactMap { _ in try? DeadlineConnection(host: "127.0.0.1", port: port, timeout: .seconds(5)) }
        XCTAssertEqual(silent.count, 60)
        let hostile = Tally()
        let load = Tally()
        try onThreads(3) { index in
            if index == 0 {
                do {
                    let report = try runLoad(LoadConfiguration(
                        host: "127.0.0.1", port: server.address.port, mode: .sixteen, connections: 20, threads: 1,
                        sessions: 2_000, duration: nil, timeout: .seconds(10)))
                    load.add("ok \(report.outcomes[.ok] ?? 0) errors \(report.errors)")
                } catch {
                    load.add("error: \(error)")
                }
                return
            }
            for _ in 0..<40 {
                let request = index == 1 ? Array("\u{1}\u{2}garbage\r\n\r\n".utf8)
                    : Array(("GET / HTTP/1.1\r\n" + String(repeating: "X-Flood: yes\r\n", count: 700)).utf8)
                do {
                    let response = try httpExchange(port: port, request, timeout: .seconds(10))
                    hostile.add("\(response?.status ?? 0)")
                } catch {
                    hostile.add("error: \(error)")
                }
            }
        }
        XCTAssertEqual(load.all, ["ok 2000 errors 0": 1])
        XCTAssertEqual(hostile.all, ["400": 40, "431": 40])
        XCTAssertEqual(statsAfter(server, ended: 2_000).replied, 2_000)
        for connection in silent {
            XCTAssertEqual(try connection.receiveUntilEnd(), [], "a silent admin client is closed with no answer")
        }
        XCTAssertEqual(try httpGet(port: port, "/healthz")?.status, 200)
        let metrics = server.metrics()
        XCTAssertEqual(metrics.value("sixteen_admin_requests_total", ["code": "400"]), 40)
        XCTAssertEqual(metrics.value("sixteen_admin_requests_total", ["code": "431"]), 40)
        XCTAssertEqual(metrics.value("sixteen_admin_requests_total", ["code": "200"]), 1)
    }
}
