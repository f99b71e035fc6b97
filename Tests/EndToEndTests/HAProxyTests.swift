import Foundation
import Reactor
import TestSupport
import XCTest

/// Three daemons behind a real HAProxy, configured by
/// `deploy/haproxy/sixteen.cfg` as it stands (addresses from the
/// environment), with `sixteen load` driving both protocols through it:
/// a rolling restart fails no session, a crash fails only what was in
/// flight on the crashed daemon, and leastconn spreads the sessions.
///
/// The daemons listen on 127.0.0.2, .3 and .4, so that their ports, free
/// while a daemon restarts, are never taken by an outgoing connection (those
/// leave from 127.0.0.1).
final class HAProxyTests: XCTestCase {
    /// The rig did not come up: the test fails at once, saying why.
    struct SetupFailure: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    private var children: [ChildProcess] = []

    override func tearDown() {
        // XCTest keeps every test case alive until the process exits: let go
        // of the processes here, or their captured output outlives the test.
        haproxy?.signal(SIGKILL)
        haproxy = nil
        backends.forEach { $0.process?.signal(SIGKILL); $0.process = nil }
        backends = []
        children.forEach { $0.signal(SIGKILL) }
        children = []
        super.tearDown()
    }

    /// One daemon's addresses, and the totals of each of its runs.
    final class Backend {
        let name: String
        let host: String
        let sixteenPort: Int
        let upperPort: Int
        let adminPort: Int
        var process: ChildProcess?
        var totals: [[String: Int]] = []

        init(_ index: Int) throws {
            name = "s\(index)"
            host = "127.0.0.\(index + 1)"
            sixteenPort = try freePort(on: host)
            upperPort = try freePort(on: host)
            adminPort = try freePort(on: host)
        }

        /// A protocol's replied sessions over every run so far.
        func replied(_ protocolName: String) -> Int {
            totals.reduce(0) { $0 + ($1["sessions_\(protocolName)_replied"] ?? 0) }
        }
    }

    private var backends: [Backend] = []
    private var haproxy: ChildProcess?
    private var sixteenFrontend = 0
    private var upperFrontend = 0
    private var statsPort = 0

    /// The three daemons and HAProxy, every server seen up.
    private func startAll() throws {
        let haproxyExecutable = try XCTUnwrap(executable(named: "haproxy"), "haproxy is missing: scripts/ensure-test-tools installs it")
        backends = try (1...3).map { try Backend($0) }
        for backend in backends { try start(backend) }
        sixteenFrontend = try freeLoopbackPort()
        upperFrontend = try freeLoopbackPort()
        statsPort = try freeLoopbackPort()
        var environment = [
            "SIXTEEN_BIND": "127.0.0.1:\(sixteenFrontend)", "UPPER_BIND": "127.0.0.1:\(upperFrontend)",
            "STATS_BIND": "127.0.0.1:\(statsPort)", "CHECK_INTER": "200ms", "MAXCONN": "4000",
        ]
        for (index, backend) in backends.enumerated() {
            environment["BACKEND_\(index + 1)"] = backend.host
            environment["SIXTEEN_PORT_\(index + 1)"] = "\(backend.sixteenPort)"
            environment["UPPER_PORT_\(index + 1)"] = "\(backend.upperPort)"
            environment["ADMIN_PORT_\(index + 1)"] = "\(backend.adminPort)"
        }
        let config = repositoryRoot.appendingPathComponent("deploy/haproxy/sixteen.cfg").path
        let proxy = try ChildProcess(haproxyExecutable, ["-db", "-f", config], environment: environment)
        children.append(proxy)
        haproxy = proxy
        guard eventually(within: .seconds(15), { self.serversUp() == 6 }) else {
            throw SetupFailure("HAProxy never saw every server up: \(serverStats().mapValues { $0["status"] ?? "?" })\n\(proxy.standardError())")
        }
    }

    private func start(_ backend: Backend) throws {
        let process = try ChildProcess(sixteenExecutable, [
            "server", backend.host, "--listen", "sixteen:\(backend.sixteenPort)", "--listen", "upper:\(backend.upperPort)",
            "--admin", "\(backend.host):\(backend.adminPort)", "--proxy-protocol", "--drain-delay", "1",
            "--reactors", "1", "--shutdown-timeout", "20",
        ])
        children.append(process)
        backend.process = process
        XCTAssertTrue(process.waitForStandardError(containing: "Admin listener at"), process.standardError())
    }

    /// SIGTERM, a drain, exit 0; its totals kept.
    private func stop(_ backend: Backend, file: StaticString = #filePath, line: UInt = #line) throws {
        let process = try XCTUnwrap(backend.process)
        process.signal(SIGTERM)
        XCTAssertEqual(process.waitForExit(timeout: .seconds(30)), 0, process.standardError(), file: file, line: line)
        backend.totals.append(try XCTUnwrap(exitTotals(in: process.standardError()), process.standardError(), file: file, line: line))
        backend.process = nil
    }

    /// HAProxy's own view: `backend/server` → its status and counters (CSV stats).
    private func serverStats() -> [String: [String: String]] {
        guard let response = try? httpGet(port: statsPort, "/stats;csv"), response.status == 200 else { return [:] }
        let lines = response.body.split(separator: "\n").map(String.init)
        guard let header = lines.first?.dropFirst(2).split(separator: ",", omittingEmptySubsequences: false).map(String.init) else { return [:] }
        var servers: [String: [String: String]] = [:]
        for line in lines.dropFirst() {
            let fields = line.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
            guard fields.count >= header.count, !["FRONTEND", "BACKEND"].contains(fields[1]) else { continue }
            servers["\(fields[0])/\(fields[1])"] = Dictionary(uniqueKeysWithValues: zip(header, fields))
        }
        return servers
    }

    private func serversUp(_ name: String? = nil) -> Int {
        serverStats().filter { ($0.key.hasSuffix("/\(name ?? "")") || name == nil) && $0.value["status"] == "UP" }.count
    }

    private func serversDown(_ name: String) -> Int {
        serverStats().filter { $0.key.hasSuffix("/\(name)") && $0.value["status"]?.hasPrefix("DOWN") == true }.count
    }

    /// `sixteen load` through HAProxy, started now.
    private func load(_ protocolName: String, _ arguments: [String]) throws -> ChildProcess {
        let port = protocolName == "upper" ? upperFrontend : sixteenFrontend
        let process = try ChildProcess(sixteenExecutable, ["load", "127.0.0.1", "-p", "\(port)", "--protocol", protocolName, "--json"] + arguments)
        children.append(process)
        return process
    }

    /// A finished load's exit status and JSON summary.
    private func result(of load: ChildProcess, file: StaticString = #filePath, line: UInt = #line) throws -> (status: Int32?, summary: [String: Any]) {
        let status = load.waitForExit(timeout: .seconds(60))
        let output = load.remainingOutput()
        let summary = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(output.utf8)) as? [String: Any], "\(output)\n\(load.standardError())", file: file, line: line)
        return (status, summary)
    }

    func testRollingRestartFailsNoSession() throws {
        try startAll()
        let sixteen = try load("sixteen", ["-d", "12", "--rate", "1500", "-c", "32"])
        let upper = try load("upper", ["-d", "12", "--rate", "60", "-c", "16", "--bytes", "64K"])
        sleep(1)
        for backend in backends {
            try stop(backend)
            try start(backend)
            XCTAssertTrue(eventually(within: .seconds(15)) { self.serversUp(backend.name) == 2 }, "HAProxy never saw \(backend.name) up again")
        }
        let sixteenResult = try result(of: sixteen)
        let upperResult = try result(of: upper)
        let stats = serverStats()
        for backend in backends { try stop(backend) }
        for (name, outcome) in [("sixteen", sixteenResult), ("upper", upperResult)] {
            let ok = try XCTUnwrap(outcome.summary["sessions_ok"] as? Int)
            XCTAssertEqual(outcome.summary["errors_total"] as? Int, 0, "\(name): \(outcome.summary)")
            XCTAssertEqual(outcome.status, 0, "\(name): \(outcome.summary)")
            XCTAssertGreaterThan(ok, name == "sixteen" ? 10_000 : 400, "\(name): too few sessions to tell anything")
            // Every session the load counts, a daemon served, once.
            XCTAssertEqual(backends.reduce(0) { $0 + $1.replied(name) }, ok, "\(name): \(backends.map { $0.totals })")
            for backend in backends {
                XCTAssertGreaterThanOrEqual(Double(backend.replied(name)), 0.2 * Double(ok), "\(name): \(backend.name) served \(backend.replied(name)) of \(ok)")
            }
            let retried = stats.filter { $0.key.hasPrefix("\(name)/") }.map { "\($0.key): retries \($0.value["wretr"] ?? "?"), redispatches \($0.value["wredis"] ?? "?")" }
            print("rolling restart, \(name): \(ok) sessions, none failed; \(backends.map { "\($0.name) served \($0.replied(name))" }.joined(separator: ", ")); \(retried.sorted().joined(separator: "; "))")
        }
        for backend in backends {
            XCTAssertEqual(backend.totals.reduce(0) { $0 + ($1["connections_rejected_proxy_header"] ?? 0) }, 0, "every connection came with a PROXY header")
        }
    }

    func testCrashFailsOnlyTheSessionsInFlightOnIt() throws {
        try startAll()
        let sixteen = try load("sixteen", ["-d", "10", "--rate", "1500", "-c", "24"])
        let upper = try load("upper", ["-d", "10", "--rate", "60", "-c", "12", "--bytes", "64K"])
        sleep(3)
        let crashed = backends[1]
        try XCTUnwrap(crashed.process).signal(SIGKILL)
        XCTAssertTrue(eventually(within: .seconds(10)) { self.serversDown(crashed.name) == 2 }, "HAProxy never saw \(crashed.name) down")
        // Service continues on the other two: new loads meet no failure.
        let after = try load("sixteen", ["-n", "2000", "-c", "8"])
        let afterUpper = try load("upper", ["-n", "100", "-c", "4", "--bytes", "64K"])
        for (name, check) in [("sixteen", try result(of: after)), ("upper", try result(of: afterUpper))] {
            XCTAssertEqual(check.status, 0, "\(name) after the crash: \(check.summary)")
            XCTAssertEqual(check.summary["errors_total"] as? Int, 0, "\(name) after the crash: \(check.summary)")
        }
        let sixteenResult = try result(of: sixteen)
        let upperResult = try result(of: upper)
        for backend in [backends[0], backends[2]] { try stop(backend) }
        for (name, outcome, inFlight) in [("sixteen", sixteenResult, 24), ("upper", upperResult, 12)] {
            let failed = try XCTUnwrap(outcome.summary["errors_total"] as? Int)
            let ok = try XCTUnwrap(outcome.summary["sessions_ok"] as? Int)
            // At most what the load had in flight, of which the crashed daemon held about a third.
            XCTAssertLessThanOrEqual(failed, inFlight, "\(name): \(outcome.summary)")
            XCTAssertEqual(outcome.status, failed == 0 ? 0 : 1, "\(name): \(outcome.summary)")
            print("crash of \(crashed.name) under \(name) load: \(failed) sessions failed (in flight on it), \(ok) succeeded")
        }
    }
}
