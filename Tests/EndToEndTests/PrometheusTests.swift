import Foundation
import Reactor
import SixteenClient
import SixteenProtocol
import TestSupport
import XCTest

/// The monitoring files in `deploy/prometheus`, and a real Prometheus
/// server scraping a real daemon with them.
final class PrometheusTests: XCTestCase {
    private var children: [ChildProcess] = []
    private var scratch: URL?

    override func tearDown() {
        children.forEach { $0.signal(SIGKILL) }
        children.forEach { _ = $0.waitForExit(timeout: .seconds(5)) }
        children = []
        if let scratch { try? FileManager.default.removeItem(at: scratch) }
        super.tearDown()
    }

    private var deploy: URL { repositoryRoot.appendingPathComponent("deploy/prometheus") }

    func testShippedConfigAndAlertsPassPromtool() throws {
        let config = try runToCompletion(URL(fileURLWithPath: "/usr/bin/env"), ["promtool", "check", "config", deploy.appendingPathComponent("prometheus.yml").path])
        XCTAssertEqual(config.status, 0, config.stdout + config.stderr)
        let rules = try runToCompletion(URL(fileURLWithPath: "/usr/bin/env"), ["promtool", "check", "rules", deploy.appendingPathComponent("sixteen-alerts.yml").path])
        XCTAssertEqual(rules.status, 0, rules.stdout + rules.stderr)
        XCTAssertTrue(rules.stdout.contains("SUCCESS: 6 rules found"), rules.stdout)
    }

    /// Prometheus scrapes the daemon with the shipped job (its target
    /// rewritten to the test's ports) and reports the counts the daemon served.
    func testPrometheusScrapesTheDaemon() throws {
        let server = try ChildProcess(sixteenExecutable, ["server", "-p", "0", "--reactors", "2", "--admin", "127.0.0.1:0"])
        children.append(server)
        let port = try XCTUnwrap(server.readLine().flatMap(port(fromListeningLine:)))
        XCTAssertTrue(server.waitForStandardError(containing: "Admin listener at"))
        let admin = try XCTUnwrap(adminPort(fromStandardError: server.standardError()))
        for _ in 0..<12 {
            XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: port, timeout: .seconds(5)), sixteenReply)
        }

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sixteen-prometheus-\(getpid())-\(MonotonicClock.nanoseconds())")
        scratch = directory
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        var config = try String(contentsOf: deploy.appendingPathComponent("prometheus.yml"), encoding: .utf8)
        config = config.replacingOccurrences(of: "127.0.0.1:9160", with: "127.0.0.1:\(admin)")
            .replacingOccurrences(of: "scrape_interval: 15s", with: "scrape_interval: 1s")
            .replacingOccurrences(of: "scrape_timeout: 5s", with: "scrape_timeout: 1s")
        try config.write(to: directory.appendingPathComponent("prometheus.yml"), atomically: true, encoding: .utf8)
        try FileManager.default.copyItem(at: deploy.appendingPathComponent("sixteen-alerts.yml"), to: directory.appendingPathComponent("sixteen-alerts.yml"))
        let web = try freeLoopbackPort()
        let prometheus = try ChildProcess(URL(fileURLWithPath: "/usr/bin/env"), [
            "prometheus", "--config.file=\(directory.appendingPathComponent("prometheus.yml").path)",
            "--storage.tsdb.path=\(directory.appendingPathComponent("data").path)",
            "--web.listen-address=127.0.0.1:\(web)", "--log.level=warn",
        ])
        children.append(prometheus)

        var accepted: Double?
        let scraped = eventually(within: .seconds(30)) {
            guard let up = self.query(web, "up{job=\"sixteen\"}"), up == 1 else { return false }
            accepted = self.query(web, "sixteen_connections_accepted_total{job=\"sixteen\"}")
            return accepted != nil
        }
        XCTAssertTrue(scraped, "Prometheus never scraped the daemon:\n\(prometheus.standardError())")
        XCTAssertEqual(accepted, 12)
        XCTAssertEqual(query(web, "sum(sixteen_sessions_total{outcome=\"replied\"})"), 12)
        XCTAssertEqual(query(web, "sixteen_accepting"), 1)
        XCTAssertEqual(query(web, "count(sixteen_loop_iteration_seconds_count)"), 2)
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
    }

    /// One instant query's single value, from Prometheus' HTTP API.
    private func query(_ port: Int, _ expression: String) -> Double? {
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
        guard let response = try? httpGet(port: port, "/api/v1/query?query=\(encoded)", timeout: .seconds(5)),
              response.status == 200,
              let object = try? JSONSerialization.jsonObject(with: Data(response.body.utf8)) as? [String: Any],
              let data = object["data"] as? [String: Any],
              let result = data["result"] as? [[String: Any]], result.count == 1,
              let value = result[0]["value"] as? [Any], value.count == 2, let text = value[1] as? String else { return nil }
        return Double(text)
    }
}
