import Foundation
import Reactor
import SixteenClient
import SixteenProtocol
import TestSupport
import XCTest

/// SIGUSR2 under load: the binary on disk takes the listening sockets (the
/// protocol's and the admin one), says it is ready, and the old process
/// drains and exits 0; no session is lost, three times in a row.
final class UpgradeTests: XCTestCase {
    private var children: [ChildProcess] = []
    private var others: [Int32] = []

    override func tearDown() {
        // Processes an upgrade started hold the test's pipes: end them first.
        others.forEach { kill($0, SIGKILL) }
        others = []
        children.forEach { $0.signal(SIGKILL) }
        children = []
        super.tearDown()
    }

    private func alive(_ pid: Int32) -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return false }
        return !status.contains("State:\tZ")
    }

    /// The pid of the process that SIGUSR2 number `upgrade` (counting from 1) started.
    private func startedPID(_ stderr: String, upgrade: Int) -> Int32? {
        let lines = stderr.split(separator: "\n").filter { $0.contains("Received SIGUSR2: upgrading: started ") }
        guard lines.count >= upgrade, let range = lines[upgrade - 1].range(of: " as process ") else { return nil }
        return Int32(lines[upgrade - 1][range.upperBound...].prefix { $0.isNumber })
    }

    func testThreeUpgradesUnderLoadLoseNothing() throws {
        // Under a shell that says how the first process ended (its successors
        // are not the test's children, and hold its pipes).
        let server = try ChildProcess(URL(fileURLWithPath: "/bin/sh"), [
            "-c", "\"$0\" server -p 0 --reactors 2 --admin 127.0.0.1:0 & pid=$!; echo \"first pid $pid\" >&2; wait $pid; echo \"first exited $?\" >&2",
            sixteenExecutable.path,
        ])
        children.append(server)
        let port = try XCTUnwrap(server.readLine().flatMap(port(fromListeningLine:)))
        XCTAssertTrue(server.waitForStandardError(containing: "Admin listener at"))
        let admin = try XCTUnwrap(adminPort(fromStandardError: server.standardError()))
        let first = try XCTUnwrap(server.standardError().split(separator: "\n").first { $0.hasPrefix("first pid ") }.flatMap { Int32($0.dropFirst("first pid ".count)) })
        let load = try ChildProcess(sixteenExecutable, ["load", "127.0.0.1", "-p", "\(port)", "-d", "8", "-c", "50", "--threads", "1", "--json"])
        children.append(load)
        var serving = first
        var pids = [serving]
        for upgrade in 1...3 {
            usleep(upgrade == 1 ? 3_000_000 : 1_500_000)
            kill(serving, SIGUSR2)
            XCTAssertTrue(eventually { self.startedPID(server.standardError(), upgrade: upgrade) != nil }, server.standardError())
            let next = try XCTUnwrap(startedPID(server.standardError(), upgrade: upgrade))
            others.append(next)
            XCTAssertTrue(server.waitForStandardError(containing: "Upgrade: process \(next) is ready; this process (\(serving)) stops accepting and drains"),
                          server.standardError())
            let old = serving
            XCTAssertTrue(eventually { !self.alive(old) }, "process \(old) did not exit after the upgrade")
            serving = next
            pids.append(next)
        }
        XCTAssertTrue(server.waitForStandardError(containing: "first exited 0"), "the first process exits 0 after its drain: \(server.standardError())")
        XCTAssertEqual(load.waitForExit(timeout: .seconds(30)), 0, load.standardError())
        let report = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(load.remainingOutput().utf8)) as? [String: Any])
        XCTAssertEqual(report["errors_total"] as? Int, 0, "\(report)")
        XCTAssertEqual(report["sessions_unfinished"] as? Int, 0)
        XCTAssertGreaterThan(report["sessions_ok"] as? Int ?? 0, 1_000)
        XCTAssertEqual(Set(pids).count, 4)
        XCTAssertTrue(alive(serving))
        // The newest process serves both the protocol and the admin socket it was handed.
        XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: port, timeout: .seconds(5)), sixteenReply)
        let health = try XCTUnwrap(try httpGet(port: admin, "/healthz"))
        XCTAssertEqual(health.status, 200)
        let stderr = server.standardError()
        XCTAssertEqual(stderr.components(separatedBy: "Stopped. Totals:").count - 1, 3, "three processes drained and stopped:\n\(stderr)")
        for line in stderr.split(separator: "\n") where line.contains("Stopped. Totals:") {
            XCTAssertTrue(line.contains(" sessions_aborted=0 "), String(line))
        }
        kill(serving, SIGTERM)
        XCTAssertTrue(eventually { !self.alive(serving) })
    }

    /// A new binary that cannot start (here, one that exits at once) leaves
    /// the old process serving, and saying why.
    func testAFailedUpgradeKeepsServing() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sixteen-upgrade-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let binary = directory.appendingPathComponent("sixteen")
        try FileManager.default.copyItem(at: sixteenExecutable, to: binary)
        let server = try ChildProcess(binary, ["server", "-p", "0", "--reactors", "1", "--user", "root"])
        children.append(server)
        let port = try XCTUnwrap(server.readLine().flatMap(port(fromListeningLine:)))
        // What is on disk now is broken.
        try FileManager.default.removeItem(at: binary)
        try "#!/bin/sh\necho broken >&2\nexit 3\n".write(to: binary, atomically: true, encoding: .utf8)
        chmod(binary.path, 0o755)
        server.signal(SIGUSR2)
        XCTAssertTrue(server.waitForStandardError(containing: "Upgrade failed: the new process"), server.standardError())
        XCTAssertTrue(server.standardError().contains("exited with status 3; still serving"), server.standardError())
        XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: port, timeout: .seconds(5)), sixteenReply)
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)
    }
}
