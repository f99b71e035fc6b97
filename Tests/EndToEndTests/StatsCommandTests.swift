import Foundation
import Reactor
import SixteenClient
import SixteenProtocol
import TestSupport
import XCTest

/// `sixteen stats HOST:PORT` against a running daemon: the same numbers as
/// its `/metrics`, as a table, as JSON, and redrawn with rates.
final class StatsCommandTests: XCTestCase {
    private var children: [ChildProcess] = []

    override func tearDown() {
        children.forEach { $0.signal(SIGKILL) }
        children = []
        super.tearDown()
    }

    /// A daemon serving both protocols with an admin listener: (it, sixteen port, upper port, admin port).
    private func startDaemon() throws -> (ChildProcess, Int, Int, Int) {
        let server = try ChildProcess(sixteenExecutable, [
            "server", "--listen", "sixteen:0", "--listen", "upper:0", "--admin", "127.0.0.1:0", "--reactors", "2",
        ])
        children.append(server)
        let sixteen = try XCTUnwrap(server.readLine().flatMap(port(fromListeningLine:)))
        let upper = try XCTUnwrap(server.readLine().flatMap(port(fromListeningLine:)))
        XCTAssertTrue(server.waitForStandardError(containing: "Admin listener at"), server.standardError())
        let admin = try XCTUnwrap(adminPort(fromStandardError: server.standardError()), server.standardError())
        return (server, sixteen, upper, admin)
    }

    func testStatsShowsWhatTheDaemonCounted() throws {
        let (server, sixteen, upper, admin) = try startDaemon()
        for _ in 0..<7 {
            XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: sixteen, timeout: .seconds(5)), sixteenReply)
        }
        XCTAssertEqual(try runDeadlockStream(host: "127.0.0.1", port: upper, byteCount: 1 << 20, stallTimeout: .seconds(10)).octets, 1 << 20)
        XCTAssertTrue(eventually { (try? httpGet(port: admin, "/metrics"))?.body.contains("sixteen_connections_active 0") == true })

        let table = try runToCompletion(sixteenExecutable, ["stats", "127.0.0.1:\(admin)"])
        XCTAssertEqual(table.status, 0, table.stderr)
        XCTAssertEqual(table.stderr, "")
        let lines = table.stdout.split(separator: "\n").map(String.init)
        XCTAssertTrue(lines[0].hasPrefix("sixteen 0.1.0 (libev 4.33) at 127.0.0.1:\(admin): accepting, up "), lines[0])
        XCTAssertEqual(lines[1], "connections accepted 8   active 0   shed 0   accept errors 0")
        XCTAssertEqual(lines[2], "octets      received 1.0 MiB   sent 1.0 MiB")
        XCTAssertEqual(lines[3], "sixteen     sessions 7   replied 7   short 0   reset 0   request_timeout 0   reply_timeout 0   aborted 0")
        XCTAssertTrue(lines[4].hasPrefix("            duration   p50 "), lines[4])
        XCTAssertEqual(lines[5], "upper       sessions 1   replied 1   reset 0   idle_timeout 0   overflow 0   storage 0   aborted 0")
        XCTAssertEqual(lines[7], "pending     memory 0 B   spill 0 B   spill files 0")
        XCTAssertTrue(lines[8].hasPrefix("process     cpu "), lines[8])

        let json = try runToCompletion(sixteenExecutable, ["stats", "127.0.0.1:\(admin)", "--json"])
        XCTAssertEqual(json.status, 0, json.stderr)
        let object = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(object["accepting"] as? Bool, true)
        XCTAssertEqual((object["connections"] as? [String: Any])?["accepted"] as? Int, 8)
        XCTAssertEqual((object["octets"] as? [String: Any])?["received"] as? Int, 7 * 16 + (1 << 20))
        let sessions = try XCTUnwrap(object["sessions"] as? [String: [String: Int]])
        XCTAssertEqual(sessions["sixteen"]?["replied"], 7)
        XCTAssertEqual(sessions["upper"]?["replied"], 1)
        let durations = try XCTUnwrap(object["duration_seconds"] as? [String: [String: Double]])
        XCTAssertEqual(durations["sixteen"]?["count"], 7)
        XCTAssertLessThanOrEqual(durations["sixteen"]?["p50"] ?? .infinity, durations["sixteen"]?["p99"] ?? 0)
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
    }

    func testWatchRedrawsWithRatesPerSecond() throws {
        let (_, sixteen, _, admin) = try startDaemon()
        let watch = try ChildProcess(sixteenExecutable, ["stats", "127.0.0.1:\(admin)", "--watch", "--json", "--interval", "0.3"])
        children.append(watch)
        let first = try XCTUnwrap(watch.readLine())
        for _ in 0..<5 {
            XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: sixteen, timeout: .seconds(5)), sixteenReply)
        }
        var rated: [String: Any] = [:]
        XCTAssertTrue(eventually(within: .seconds(5)) {
            guard let line = watch.readLine(timeout: .seconds(1)),
                  let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let accepted = (object["connections"] as? [String: Any])?["accepted"] as? Int, accepted == 5 else { return false }
            rated = object
            return true
        })
        XCTAssertNil((try JSONSerialization.jsonObject(with: Data(first.utf8)) as? [String: Any])?["rates_per_second"], "no rate without a previous scrape")
        let rates = try XCTUnwrap(rated["rates_per_second"] as? [String: Double])
        XCTAssertNotNil(rates["sessions_sixteen"])
        XCTAssertNotNil(rates["accepted"])
        watch.signal(SIGINT)
        XCTAssertNotNil(watch.waitForExit(timeout: .seconds(5)))
    }

    func testStatsFailsWithOneLine() throws {
        let (_, sixteen, _, _) = try startDaemon()
        let refused = try runToCompletion(sixteenExecutable, ["stats", "127.0.0.1:1"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertEqual(refused.stderr, "sixteen: cannot connect to 127.0.0.1:1: Connection refused\n")
        let wrongPort = try runToCompletion(sixteenExecutable, ["stats", "127.0.0.1:\(sixteen)"])
        XCTAssertEqual(wrongPort.status, 1)
        XCTAssertEqual(wrongPort.stderr, "sixteen: not an admin listener: the answer is not HTTP (it sent b'Farewell, client')\n")
        for arguments in [["stats"], ["stats", "127.0.0.1"], ["stats", "127.0.0.1:99999"], ["stats", "127.0.0.1:0"], ["stats", "x:1", "--interval", "0"]] {
            let usage = try runToCompletion(sixteenExecutable, arguments)
            XCTAssertEqual(usage.status, 2, "\(arguments): \(usage.stderr)")
            XCTAssertEqual(usage.stderr.split(separator: "\n").count, 1, "\(arguments): \(usage.stderr)")
        }
    }
}
