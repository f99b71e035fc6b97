import Foundation
import Reactor
import SixteenClient
import TestSupport
import XCTest

/// nginx's stream module (`proxy_protocol on`: PROXY v1) in front of three
/// daemons, with `deploy/nginx/sixteen-stream.conf` as it stands but for the
/// addresses: both protocols served, every session counted once by the
/// daemons, none refused for its header, leastconn spreading the load.
final class NginxStreamTests: XCTestCase {
    private var children: [ChildProcess] = []
    private var directory: URL?

    override func tearDown() {
        children.forEach { $0.signal(SIGKILL) }
        children = []
        if let directory { try? FileManager.default.removeItem(at: directory) }
        super.tearDown()
    }

    func testBothProtocolsThroughNginxWithProxyV1() throws {
        let nginx = try XCTUnwrap(executable(named: "nginx"), "nginx is missing: scripts/ensure-test-tools installs it")
        let temporary = FileManager.default.temporaryDirectory.appendingPathComponent("sixteen-nginx-\(getpid())")
        try FileManager.default.createDirectory(at: temporary, withIntermediateDirectories: true)
        directory = temporary

        var config = try String(contentsOf: repositoryRoot.appendingPathComponent("deploy/nginx/sixteen-stream.conf"), encoding: .utf8)
        var daemons: [ChildProcess] = []
        for index in 1...3 {
            let host = "127.0.0.\(index + 1)"
            let (sixteenPort, upperPort) = (try freePort(on: host), try freePort(on: host))
            let daemon = try ChildProcess(sixteenExecutable, [
                "server", host, "--listen", "sixteen:\(sixteenPort)", "--listen", "upper:\(upperPort)",
                "--proxy-protocol", "--reactors", "1",
            ])
            children.append(daemon)
            daemons.append(daemon)
            XCTAssertTrue(daemon.waitForStandardError(containing: "At most"), daemon.standardError())
            config = config.replacingOccurrences(of: "10.0.0.\(index):1060", with: "\(host):\(sixteenPort)")
                .replacingOccurrences(of: "10.0.0.\(index):1061", with: "\(host):\(upperPort)")
        }
        let (sixteenFrontend, upperFrontend) = (try freeLoopbackPort(), try freeLoopbackPort())
        config = config.replacingOccurrences(of: "listen 1060;", with: "listen 127.0.0.1:\(sixteenFrontend);")
            .replacingOccurrences(of: "listen 1061;", with: "listen 127.0.0.1:\(upperFrontend);")
            .replacingOccurrences(of: "/run/nginx-sixteen.pid", with: temporary.appendingPathComponent("nginx.pid").path)
        XCTAssertFalse(config.contains("10.0.0."), "every example address replaced")
        let configFile = temporary.appendingPathComponent("nginx.conf")
        try config.write(to: configFile, atomically: true, encoding: .utf8)
        // One process (no master and workers), so that killing it leaves nothing behind.
        let proxy = try ChildProcess(nginx, ["-p", temporary.path, "-c", configFile.path, "-g", "daemon off; master_process off;"])
        children.append(proxy)
        // Probed on the sixteen port: the probe reaches a daemon as a session
        // with no request (`short`), never as a replied one.
        XCTAssertTrue(eventually { (try? DeadlineConnection(host: "127.0.0.1", port: sixteenFrontend, timeout: .seconds(1))) != nil },
                      "nginx never listened: \(proxy.standardError())")

        let sixteen = try runToCompletion(sixteenExecutable, [
            "load", "127.0.0.1", "-p", "\(sixteenFrontend)", "-d", "3", "-c", "12", "--json",
        ], timeout: .seconds(30))
        let upper = try runToCompletion(sixteenExecutable, [
            "load", "127.0.0.1", "-p", "\(upperFrontend)", "--protocol", "upper", "-n", "300", "-c", "6", "--bytes", "64K", "--json",
        ], timeout: .seconds(30))
        var totals: [[String: Int]] = []
        for daemon in daemons {
            daemon.signal(SIGTERM)
            XCTAssertEqual(daemon.waitForExit(timeout: .seconds(20)), 0, daemon.standardError())
            totals.append(try XCTUnwrap(exitTotals(in: daemon.standardError()), daemon.standardError()))
        }
        for (name, run) in [("sixteen", sixteen), ("upper", upper)] {
            XCTAssertEqual(run.status, 0, "\(name): \(run.stdout) \(run.stderr)")
            let summary = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as? [String: Any], run.stdout)
            let ok = try XCTUnwrap(summary["sessions_ok"] as? Int)
            XCTAssertEqual(summary["errors_total"] as? Int, 0, "\(name): \(summary)")
            XCTAssertGreaterThan(ok, name == "sixteen" ? 1_000 : 299)
            let served = totals.map { $0["sessions_\(name)_replied"] ?? 0 }
            XCTAssertEqual(served.reduce(0, +), ok, "\(name): every session counted once: \(served)")
            for count in served { XCTAssertGreaterThanOrEqual(Double(count), 0.2 * Double(ok), "\(name): \(served)") }
        }
        XCTAssertEqual(totals.map { $0["connections_rejected_proxy_header"] ?? -1 }, [0, 0, 0], "every v1 header parsed")
    }
}
