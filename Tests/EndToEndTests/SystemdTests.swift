import Foundation
import Reactor
import SixteenClient
import SixteenProtocol
import TestSupport
import XCTest

/// Sixteen under systemd's own tools: socket activation with
/// `systemd-socket-activate`, the notify protocol read from a socket of the
/// test's (readiness, status, watchdog, stopping), the shipped units checked
/// by `systemd-analyze verify`, and privileges dropped after binding.
final class SystemdTests: XCTestCase {
    private var children: [ChildProcess] = []

    override func tearDown() {
        children.forEach { $0.signal(SIGKILL) }
        children = []
        super.tearDown()
    }

    /// `systemd-socket-activate` holds the socket and starts the daemon on
    /// the first connection: it serves that connection on the inherited
    /// socket, says READY=1 with its address, pings the watchdog every half
    /// of WATCHDOG_USEC, and says STOPPING=1 when SIGTERM starts the drain.
    func testSocketActivationWithReadinessAndWatchdog() throws {
        let notify = try NotifyListener()
        let port = try freeLoopbackPort()
        let activator = try ChildProcess(URL(fileURLWithPath: "/usr/bin/systemd-socket-activate"), [
            "-l", "127.0.0.1:\(port)", "--fdname=sixteen",
            "-E", "NOTIFY_SOCKET=\(notify.path)", "-E", "WATCHDOG_USEC=400000",
            sixteenExecutable.path, "server", "--reactors", "2",
        ])
        children.append(activator)
        // systemd-socket-activate execs the daemon in its own process on the
        // first connection; that connection waits in the inherited socket.
        XCTAssertTrue(eventually { activator.standardError().contains("Listening on") }, activator.standardError())
        XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: port, timeout: .seconds(10)), sixteenReply)
        let ready = try XCTUnwrap(notify.wait(for: "READY=1"), "no READY=1: \(activator.standardError())")
        // The first connection was waiting in the inherited socket: a reactor
        // may serve it before the main thread writes READY=1 (under
        // AddressSanitizer it did), so it is waiting, in flight or ended.
        let status = "READY=1\nSTATUS=Listening at 127.0.0.1:\(port); "
        let counts = ["0 active connections, 0 sessions ended", "1 active connections, 0 sessions ended",
                      "0 active connections, 1 sessions ended"]
        XCTAssertTrue(counts.map { status + $0 }.contains(ready.match), ready.match)
        // Watchdog pings every 200 ms: 4 to 7 in a second.
        let started = MonotonicClock.nanoseconds()
        var pings = 0
        while MonotonicClock.nanoseconds() - started < 1_000_000_000 {
            if let message = notify.next(timeout: .milliseconds(300)), message == "WATCHDOG=1" { pings += 1 }
        }
        XCTAssertTrue((4...7).contains(pings), "\(pings) watchdog pings in a second, every 200 ms expected")
        for _ in 0..<20 { XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: port, timeout: .seconds(5)), sixteenReply) }
        activator.signal(SIGTERM)
        XCTAssertNotNil(notify.wait(for: "STOPPING=1"), "no STOPPING=1")
        XCTAssertEqual(activator.waitForExit(), 0, activator.standardError())
        let totals = try XCTUnwrap(exitTotals(in: activator.standardError()), activator.standardError())
        XCTAssertEqual(totals["sessions_replied"], 21)
        // The inherited socket was never bound again: the port is the activator's.
        XCTAssertFalse(activator.standardError().contains("cannot listen"), activator.standardError())
    }

    /// Sockets are taken by name: `admin` is the admin listener.
    func testTheSocketNamedAdminIsTheAdminListener() throws {
        let port = try freeLoopbackPort()
        let admin = try freeLoopbackPort()
        let activator = try ChildProcess(URL(fileURLWithPath: "/usr/bin/systemd-socket-activate"), [
            "-l", "127.0.0.1:\(port)", "-l", "127.0.0.1:\(admin)", "--fdname=sixteen:admin",
            sixteenExecutable.path, "server", "--reactors", "1",
        ])
        children.append(activator)
        XCTAssertTrue(eventually { activator.standardError().contains("Listening on") }, activator.standardError())
        XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: port, timeout: .seconds(10)), sixteenReply)
        let health = try XCTUnwrap(try httpGet(port: admin, "/healthz"))
        XCTAssertEqual(health.status, 200)
        XCTAssertEqual(health.body, "ok: 1 reactors turning\n")
        XCTAssertTrue(activator.standardError().contains("Admin listener at 127.0.0.1:\(admin)"), activator.standardError())
        activator.signal(SIGTERM)
        XCTAssertEqual(activator.waitForExit(), 0)
    }

    func testTheShippedUnitsPassSystemdAnalyzeVerify() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("sixteen-units-\(getpid())")
        try? FileManager.default.removeItem(at: directory)
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let units = repositoryRoot.appendingPathComponent("deploy/systemd")
        for name in ["sixteen.service", "sixteen.socket", "sixteen-admin.socket"] {
            var text = try String(contentsOf: units.appendingPathComponent(name), encoding: .utf8)
            // The unit names the installed binary; here it is the built one.
            text = text.replacingOccurrences(of: "/usr/bin/sixteen", with: sixteenExecutable.path)
            try text.write(to: directory.appendingPathComponent(name), atomically: true, encoding: .utf8)
        }
        let verify = try runToCompletion(URL(fileURLWithPath: "/bin/sh"), [
            "-c", "cd \"$0\" && systemd-analyze verify --man=no ./sixteen.service ./sixteen.socket ./sixteen-admin.socket", directory.path,
        ])
        XCTAssertEqual(verify.status, 0, verify.stdout + verify.stderr)
        XCTAssertEqual(verify.stderr, "", "systemd-analyze verify had findings")
        let security = try runToCompletion(URL(fileURLWithPath: "/usr/bin/systemd-analyze"), [
            "security", "--offline=true", directory.appendingPathComponent("sixteen.service").path,
        ])
        XCTAssertTrue(security.stdout.contains("Overall exposure level for sixteen.service: 1."), security.stdout)
    }

    /// Started as root, the daemon binds, then serves as `--user` (nobody by
    /// default); `--user root` keeps root with a warning; an unknown user is
    /// refused with one line.
    func testPrivilegesAreDroppedAfterBinding() throws {
        XCTAssertEqual(geteuid(), 0, "CI runs as root: this test starts the daemon as root")
        let server = try ChildProcess(sixteenExecutable, ["server", "-p", "0", "--reactors", "1", "--protocol", "upper"])
        children.append(server)
        let port = try XCTUnwrap(server.readLine().flatMap(port(fromListeningLine:)))
        XCTAssertEqual(uid(of: server.pid), 65534)
        XCTAssertTrue(server.waitForStandardError(containing: "Serving as user nobody (uid 65534, gid 65534)"), server.standardError())
        XCTAssertEqual(try runDeadlockStream(host: "127.0.0.1", port: port, byteCount: 8 << 20).octets, 8 << 20, "spills as nobody")
        server.signal(SIGTERM)
        XCTAssertEqual(server.waitForExit(), 0)

        let root = try ChildProcess(sixteenExecutable, ["server", "-p", "0", "--reactors", "1", "--user", "root"])
        children.append(root)
        XCTAssertNotNil(root.readLine())
        XCTAssertEqual(uid(of: root.pid), 0)
        XCTAssertTrue(root.waitForStandardError(containing: "warning sixteen: Serving as root (--user root)"), root.standardError())
        root.signal(SIGTERM)
        XCTAssertEqual(root.waitForExit(), 0)

        let unknown = try runToCompletion(sixteenExecutable, ["server", "-p", "0", "--user", "no-such-user-here"])
        XCTAssertEqual(unknown.status, 1)
        XCTAssertEqual(unknown.stderr, "sixteen: there is no user named 'no-such-user-here' (choose another with --user)\n")

        // The spill directory is checked as the user served as.
        let private_ = FileManager.default.temporaryDirectory.appendingPathComponent("sixteen-root-only-\(getpid())")
        try FileManager.default.createDirectory(at: private_, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        defer { try? FileManager.default.removeItem(at: private_) }
        let spill = try runToCompletion(sixteenExecutable, ["server", "-p", "0", "--protocol", "upper", "--spill-dir", private_.path])
        XCTAssertEqual(spill.status, 1)
        XCTAssertEqual(spill.stderr, "sixteen: cannot create spill files in \(private_.path): not writable by this user (uid 65534): Permission denied (choose another with --spill-dir)\n")
    }
}
