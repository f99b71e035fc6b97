import Foundation
import Reactor
import SixteenClient
import SixteenProtocol
import TestSupport
import XCTest

/// The built `sixteen` binary, as an operator runs it.
final class EndToEndTests: XCTestCase {
    private var children: [ChildProcess] = []

    override func tearDown() {
        children.forEach { $0.signal(SIGKILL) }
        children = []
        super.tearDown()
    }

    /// Starts `sixteen server ARGS -p 0` and returns it with its port.
    private func startServer(_ arguments: [String] = []) throws -> (ChildProcess, Int, String) {
        let server = try ChildProcess(sixteenExecutable, ["server"] + arguments + ["-p", "0"])
        children.append(server)
        let line = try XCTUnwrap(server.readLine(), "no 'Listening at' line")
        let port = try XCTUnwrap(port(fromListeningLine: line), "unexpected first line: \(line)")
        return (server, port, line)
    }

    private func stop(_ server: ChildProcess) -> (status: Int32?, stderr: String) {
        server.signal(SIGTERM)
        let status = server.waitForExit()
        return (status, server.standardError())
    }

    private func python() -> URL { URL(fileURLWithPath: "/usr/bin/env") }
    private var bookScript: String { repositoryRoot.appendingPathComponent("benchmarks/peers/book/tcp_sixteen.py").path }

    func testServerAndClientTalk() throws {
        let (server, port, line) = try startServer(["--reactors", "2"])
        XCTAssertEqual(line, "Listening at ('127.0.0.1', \(port))")
        let client = try runToCompletion(sixteenExecutable, ["client", "127.0.0.1", "-p", "\(port)"])
        XCTAssertEqual(client.status, 0, client.stderr)
        let lines = client.stdout.split(separator: "\n").map(String.init)
        XCTAssertEqual(lines.count, 2, client.stdout)
        XCTAssertTrue(lines[0].hasPrefix("Client has been assigned socket name ('127.0.0.1', "), lines[0])
        XCTAssertEqual(lines[1], "The server said b'Farewell, client'")
        XCTAssertEqual(client.stderr, "")
        let (status, stderr) = stop(server)
        XCTAssertEqual(status, 0)
        XCTAssertTrue(stderr.contains("Received SIGTERM"), stderr)
        let totals = try XCTUnwrap(exitTotals(in: stderr), stderr)
        XCTAssertEqual(totals["connections_accepted"], 1, stderr)
        XCTAssertEqual(totals["sessions_replied"], 1, stderr)
        for outcome in ["short", "reset", "request_timeout", "reply_timeout", "aborted"] {
            XCTAssertEqual(totals["sessions_\(outcome)"], 0, stderr)
        }
        XCTAssertEqual(totals["octets_received"], 16, stderr)
        XCTAssertEqual(totals["octets_sent"], 16, stderr)
    }

    func testEmptyHostListensOnEveryInterface() throws {
        let (server, port, line) = try startServer([""])
        XCTAssertEqual(line, "Listening at ('0.0.0.0', \(port))")
        XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: port), sixteenReply)
        let (status, stderr) = stop(server)
        XCTAssertEqual(status, 0)
        XCTAssertTrue(stderr.contains("warning") && stderr.contains("every interface"), stderr)
    }

    func testIPv6Loopback() throws {
        let (server, port, line) = try startServer(["::1"])
        XCTAssertEqual(line, "Listening at ('::1', \(port), 0, 0)")
        XCTAssertEqual(try exchangeSixteen(host: "::1", port: port), sixteenReply)
        XCTAssertEqual(stop(server).status, 0)
    }

    func testDebugLevelLogsTheBookTranscript() throws {
        let (server, port, _) = try startServer(["--log-level", "debug", "--reactors", "1"])
        XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: port), sixteenReply)
        let (status, stderr) = stop(server)
        XCTAssertEqual(status, 0)
        for expected in ["We have accepted a connection from ('127.0.0.1', ", "Socket name: ('127.0.0.1', \(port))",
                         "Socket peer: ('127.0.0.1', ", "Incoming sixteen-octet message: b'Hi there, server'",
                         "Reply sent, socket closed"] {
            XCTAssertTrue(stderr.contains(expected), "missing \(expected) in\n\(stderr)")
        }
    }

    func testDefaultLevelWritesNoPerSessionLines() throws {
        let (server, port, _) = try startServer()
        for _ in 0..<5 { XCTAssertEqual(try exchangeSixteen(host: "127.0.0.1", port: port), sixteenReply) }
        let (status, stderr) = stop(server)
        XCTAssertEqual(status, 0)
        XCTAssertFalse(stderr.contains("accepted a connection"), stderr)
        XCTAssertEqual(stderr.split(separator: "\n").count, 5, "listening, the connection cap, the user served as, received SIGTERM, totals:\n\(stderr)")
    }

    func testPortAlreadyInUse() throws {
        // A plain listener, and one with SO_REUSEPORT (which our own listeners
        // would otherwise silently share the port with).
        for reusePort in [false, true] {
            let occupant = try Socket.listen(on: .v4(loopback(port: 0)), reusePort: reusePort, backlog: 1)
            defer { Socket.close(occupant) }
            let port = try XCTUnwrap(SocketAddress.local(of: occupant)?.port)
            let result = try runToCompletion(sixteenExecutable, ["server", "-p", "\(port)"])
            XCTAssertEqual(result.status, 1)
            XCTAssertEqual(result.stdout, "")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, result.stderr)
            XCTAssertTrue(result.stderr.hasPrefix("sixteen: cannot listen on 127.0.0.1:\(port): Address already in use"), result.stderr)
        }
    }

    /// An unprivileged user cannot bind below net.ipv4.ip_unprivileged_port_start.
    func testPermissionDeniedOnAPrivilegedPort() throws {
        let start = try String(contentsOfFile: "/proc/sys/net/ipv4/ip_unprivileged_port_start", encoding: .utf8)
        let privileged = try XCTUnwrap(Int(start.trimmingCharacters(in: .whitespacesAndNewlines))) - 1
        XCTAssertGreaterThan(privileged, 0, "this kernel lets anyone bind any port")
        // setpriv (util-linux) drops to nobody; the tests run as root here and in CI.
        let result = try runToCompletion(URL(fileURLWithPath: "/usr/bin/setpriv"), [
            "--reuid=65534", "--regid=65534", "--clear-groups",
            sixteenExecutable.path, "server", "-p", "\(privileged)",
        ])
        XCTAssertEqual(result.status, 1, result.stderr)
        XCTAssertEqual(result.stderr, "sixteen: cannot listen on 127.0.0.1:\(privileged): Permission denied "
            + "(ports below 1024 need root or CAP_NET_BIND_SERVICE)\n")
    }

    func testHelpPrintsUsageAndExitsZero() throws {
        for arguments in [["--help"], ["server", "--help"], ["client", "-h"], ["stream", "--help"], ["load", "--help"], ["help", "server"]] {
            let result = try runToCompletion(sixteenExecutable, arguments)
            XCTAssertEqual(result.status, 0, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stdout.contains("USAGE: sixteen"), "\(arguments): \(result.stdout)")
            XCTAssertEqual(result.stderr, "", "\(arguments)")
        }
        let version = try runToCompletion(sixteenExecutable, ["--version"])
        XCTAssertEqual(version.status, 0)
        // 0.1.0 (commit 734ec7e83847, Swift 6.3.1, libev 4.33), "-dirty" after the commit in a changed tree.
        let line = version.stdout
        XCTAssertTrue(line.hasPrefix("0.1.0 (commit ") && line.hasSuffix(", libev 4.33)\n"), line)
        let commit = line.dropFirst("0.1.0 (commit ".count).prefix { $0 != "," }
        XCTAssertTrue(commit.prefix(12).allSatisfy(\.isHexDigit) && (commit.count == 12 || commit.hasSuffix("-dirty")), "commit \(commit)")
        XCTAssertTrue(line.contains(", Swift 6."), line)
    }

    func testUsageErrorsExitTwoWithOneLine() throws {
        let cases: [[String]] = [
            ["server", "--bogus"],
            ["server", "-p", "70000"],
            ["server", "-p", "http"],
            ["server", "--reactors", "0"],
            ["server", "--request-timeout", "-1"],
            ["server", "--log-level", "loud"],
            ["client"],
            ["client", "127.0.0.1", "-p", "0"],
            ["frobnicate"],
        ]
        for arguments in cases {
            let result = try runToCompletion(sixteenExecutable, arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix("sixteen: "), "\(arguments): \(result.stderr)")
        }
    }

    func testRuntimeErrorsExitOneWithOneLine() throws {
        let refused = try Socket.listen(on: .v4(loopback(port: 0)), reusePort: false, backlog: 1)
        let closedPort = try XCTUnwrap(SocketAddress.local(of: refused)?.port)
        Socket.close(refused)
        let cases: [([String], String)] = [
            (["server", "no-such-host.invalid", "-p", "0"], "sixteen: cannot resolve host 'no-such-host.invalid'"),
            (["server", "192.0.2.1", "-p", "0"], "sixteen: cannot listen on 192.0.2.1:0: Cannot assign requested address"),
            (["client", "127.0.0.1", "-p", "\(closedPort)"], "sixteen: cannot connect to 127.0.0.1:\(closedPort): Connection refused"),
        ]
        for (arguments, prefix) in cases {
            let result = try runToCompletion(sixteenExecutable, arguments)
            XCTAssertEqual(result.status, 1, "\(arguments): \(result.stderr)")
            XCTAssertEqual(result.stderr.split(separator: "\n").count, 1, "\(arguments): \(result.stderr)")
            XCTAssertTrue(result.stderr.hasPrefix(prefix), "\(arguments): \(result.stderr)")
        }
    }

    func testClientReportsAShortReply() throws {
        // A server that answers 5 octets and closes.
        let listener = try Socket.listen(on: .v4(loopback(port: 0)), reusePort: false, backlog: 4)
        defer { Socket.close(listener) }
        let port = try XCTUnwrap(SocketAddress.local(of: listener)?.port)
        let answering = try ReactorThread(name: "short-server") {
            var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 10_000) > 0, case .accepted(let fd) = Socket.accept(listener) else { return }
            // Read the request first: closing with it unread would send RST.
            var request = [UInt8](repeating: 0, count: 16)
            var got = 0
            while got < 16 {
                var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                _ = poll(&ready, 1, 5_000)
                let n = request.withUnsafeMutableBytes { read(fd, $0.baseAddress! + got, 16 - got) }
                if n <= 0 { break }
                got += n
            }
            var reply = Array("Farew".utf8)
            _ = send(fd, &reply, reply.count, 0)
            usleep(50_000)
            Socket.close(fd)
        }
        defer { answering.join() }
        let result = try runToCompletion(sixteenExecutable, ["client", "127.0.0.1", "-p", "\(port)", "--timeout", "5"])
        XCTAssertEqual(result.status, 1)
        XCTAssertEqual(result.stderr, "sixteen: short reply: was expecting 16 bytes but only received 5 (b'Farew') before the server closed\n")
    }

    /// A supervisor may signal as soon as it has read the first line: the
    /// server must already handle it (drain, totals, exit 0), not die of it.
    func testSignalRightAfterTheListeningLineIsHandled() throws {
        for signal in [SIGTERM, SIGINT, SIGTERM, SIGINT, SIGTERM, SIGINT, SIGTERM, SIGINT] {
            let server = try ChildProcess(sixteenExecutable, ["server", "-p", "0", "--reactors", "2"])
            children.append(server)
            XCTAssertNotNil(server.readLine())
            server.signal(signal)
            XCTAssertEqual(server.waitForExit(timeout: .seconds(10)), 0, "signal \(signal): \(server.standardError())")
            XCTAssertTrue(server.standardError().contains("Stopped. Totals:"), server.standardError())
        }
    }

    /// Connects that fail at once (no descriptors, an unusable source
    /// address) are counted and retried after a pause: no crash, no spin.
    func testLoadSurvivesConnectsThatFailAtOnce() throws {
        let unusable = try runToCompletion(sixteenExecutable, ["load", "::1", "-p", "9", "-c", "2", "--threads", "1", "-d", "0.5", "--source", "127.0.0.1"])
        XCTAssertEqual(unusable.status, 1, unusable.stderr)
        XCTAssertTrue(unusable.stdout.contains("errors     connect failed "), unusable.stdout)
    }

    /// `-c` past the descriptor limit is refused up front, saying what to do.
    func testLoadRefusesMoreConnectionsThanDescriptors() throws {
        let starved = try runToCompletion(URL(fileURLWithPath: "/bin/sh"), [
            "-c", "ulimit -n 24 && exec \"$0\" load 127.0.0.1 -p 9 -c 40 --threads 1 -d 0.5", sixteenExecutable.path,
        ])
        XCTAssertEqual(starved.status, 2, starved.stderr)
        XCTAssertEqual(starved.stderr, "sixteen: -c 40 needs about 104 descriptors, and the limit is 24 (hard limit 24): lower -c, or raise the limit (ulimit -n; as root, ulimit -Hn)\n")
        XCTAssertEqual(starved.stdout, "")
    }

    func testSecondSignalExitsAtOnce() throws {
        let (server, port, _) = try startServer(["--shutdown-timeout", "30", "--request-timeout", "60"])
        let silent = try DeadlineConnection(host: "127.0.0.1", port: port, timeout: .seconds(5))
        usleep(100_000)
        server.signal(SIGTERM)
        usleep(200_000)
        XCTAssertTrue(server.process.isRunning, "the first signal must drain, not exit, with a session in flight")
        server.signal(SIGINT)
        let status = server.waitForExit(timeout: .seconds(5))
        XCTAssertEqual(status, 128 + SIGINT)
        _ = silent
    }

    /// Under a small descriptor limit the connection cap comes from it: the
    /// server holds as many connections as its plan allows, clients past the
    /// cap wait in the listen queue (connected, not reset, their requests
    /// sent), the loop does not spin, and they are served as places free.
    func testClientsPastTheDescriptorCapWaitAndAreServed() throws {
        let server = try ChildProcess(URL(fileURLWithPath: "/bin/sh"), [
            "-c", "ulimit -n 64 && exec \"$0\" server -p 0 --reactors 1 --request-timeout 60", sixteenExecutable.path,
        ])
        children.append(server)
        let line = try XCTUnwrap(server.readLine())
        let port = try XCTUnwrap(port(fromListeningLine: line), line)
        // 64 descriptors, less 22 for the daemon and 4 for its reactor: 38.
        XCTAssertTrue(server.waitForStandardError(containing: "At most 38 client connections; descriptors: limit 64, 26 reserved"), server.standardError())
        let held = try (0..<38).map { _ in try DeadlineConnection(host: "127.0.0.1", port: port, timeout: .seconds(5)) }
        usleep(200_000)
        let waiting = try (0..<10).map { _ in try DeadlineConnection(host: "127.0.0.1", port: port, timeout: .seconds(5)) }
        for connection in waiting { try connection.sendAll(sixteenRequest) }
        usleep(300_000)
        let before = try XCTUnwrap(server.cpuSeconds())
        usleep(1_000_000)
        XCTAssertLessThan(try XCTUnwrap(server.cpuSeconds()) - before, 0.2, "the server burned CPU at its cap")
        // Free places: every waiting client is served, none was reset.
        for connection in held.prefix(10) { connection.abort() }
        for connection in waiting {
            XCTAssertEqual(try connection.receiveUntilEnd(), sixteenReply)
        }
        for connection in held.dropFirst(10) { connection.abort() }
        let (status, stderr) = stop(server)
        XCTAssertEqual(status, 0)
        let totals = try XCTUnwrap(exitTotals(in: stderr), stderr)
        XCTAssertEqual(totals["accept_shed"], 0, stderr)
        XCTAssertEqual(totals["sessions_replied"], 10, stderr)
        XCTAssertEqual(totals["sessions_reset"], 38, stderr)
        XCTAssertEqual(totals["connections_accepted"], 48, stderr)
        XCTAssertEqual(totals["connections_max"], 38, stderr)
        XCTAssertGreaterThanOrEqual(totals["accept_pauses"] ?? 0, 1, stderr)
        _ = held
    }

    func testLoadCommandReportsAndExitsByOutcome() throws {
        let (server, port, _) = try startServer()
        let ok = try runToCompletion(sixteenExecutable, ["load", "127.0.0.1", "-p", "\(port)", "-c", "10", "-n", "200", "--json"])
        XCTAssertEqual(ok.status, 0, ok.stderr)
        XCTAssertTrue(ok.stdout.hasPrefix("{\"mode\": \"sixteen\""), ok.stdout)
        XCTAssertTrue(ok.stdout.contains("\"sessions_ok\": 200,"), ok.stdout)
        let human = try runToCompletion(sixteenExecutable, ["load", "127.0.0.1", "-p", "\(port)", "-c", "4", "-d", "0.3"])
        XCTAssertEqual(human.status, 0, human.stderr)
        XCTAssertTrue(human.stdout.contains("errors     none"), human.stdout)
        XCTAssertTrue(human.stdout.contains("latency    p50 "), human.stdout)
        XCTAssertEqual(stop(server).status, 0)
        let refused = try runToCompletion(sixteenExecutable, ["load", "127.0.0.1", "-p", "\(port)", "-c", "2", "-n", "4"])
        XCTAssertEqual(refused.status, 1)
        XCTAssertTrue(refused.stdout.contains("errors     refused 4"), refused.stdout)
        XCTAssertEqual(refused.stderr, "sixteen: 4 sessions failed\n")
        for arguments in [["load", "127.0.0.1"], ["load", "127.0.0.1", "-n", "5", "-d", "1"], ["load", "127.0.0.1", "--protocol", "idle", "-n", "5"],
                          ["load", "127.0.0.1", "-n", "5", "--source", "10.0.0.300"], ["load", "127.0.0.1", "-n", "5", "--rate", "0"]] {
            let result = try runToCompletion(sixteenExecutable, arguments)
            XCTAssertEqual(result.status, 2, "\(arguments): \(result.stderr)")
        }
    }

    // MARK: The book's own programs

    func testBookClientAgainstSixteenServer() throws {
        let (server, port, _) = try startServer()
        for _ in 0..<3 {
            let result = try runToCompletion(python(), ["python3", bookScript, "client", "127.0.0.1", "-p", "\(port)"])
            XCTAssertEqual(result.status, 0, result.stderr)
            let lines = result.stdout.split(separator: "\n").map(String.init)
            XCTAssertEqual(lines.last, "The server said b'Farewell, client'", result.stdout)
        }
        let (status, stderr) = stop(server)
        XCTAssertEqual(status, 0)
        XCTAssertEqual(total("connections_accepted", in: stderr), 3, stderr)
        XCTAssertEqual(total("sessions_replied", in: stderr), 3, stderr)
    }

    func testSixteenClientAgainstBookServer() throws {
        let book = try ChildProcess(python(), ["python3", "-u", bookScript, "server", "127.0.0.1", "-p", "0"])
        children.append(book)
        let line = try XCTUnwrap(book.readLine())
        let port = try XCTUnwrap(port(fromListeningLine: line), line)
        for _ in 0..<3 {
            let result = try runToCompletion(sixteenExecutable, ["client", "127.0.0.1", "-p", "\(port)"])
            XCTAssertEqual(result.status, 0, result.stderr)
            XCTAssertTrue(result.stdout.hasSuffix("The server said b'Farewell, client'\n"), result.stdout)
        }
        var transcript: [String] = []
        while transcript.filter({ $0.contains("Reply sent, socket closed") }).count < 3, let next = book.readLine(timeout: .seconds(5)) {
            transcript.append(next)
        }
        XCTAssertEqual(transcript.filter { $0 == "  Incoming sixteen-octet message: b'Hi there, server'" }.count, 3, transcript.joined(separator: "\n"))
    }

    /// The number after `name` on the server's `Totals:` line.
    private func total(_ name: String, in stderr: String) -> Int? {
        exitTotals(in: stderr)?[name]
    }

    private func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        return address
    }
}
