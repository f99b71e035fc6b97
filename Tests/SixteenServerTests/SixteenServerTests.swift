import Reactor
import SixteenClient
import SixteenProtocol
import SixteenServer
import TestSupport
import XCTest

final class SixteenServerTests: ServerTestCase {
    func testBookSessionGetsFarewellThenEOF() throws {
        let server = try startServer()
        XCTAssertEqual(try bookSession(server), sixteenReply)
        let stats = statsAfter(server, ended: 1)
        XCTAssertEqual(stats.accepted, 1)
        XCTAssertEqual(stats.replied, 1)
    }

    func testTwoThousandSessionsWithAHundredInFlightOnTwoReactors() throws {
        let server = try startServer(reactors: 2)
        let tally = Tally()
        try onThreads(100) { _ in
            for _ in 0..<20 {
                do {
                    let connection = try DeadlineConnection(host: "127.0.0.1", port: server.address.port, timeout: .seconds(20))
                    try connection.sendAll(sixteenRequest)
                    let reply = try connection.receiveUntilEnd()
                    tally.add(reply == sixteenReply ? "exact" : "wrong: \(reply)")
                } catch {
                    tally.add("error: \(error)")
                }
            }
        }
        XCTAssertEqual(tally.all, ["exact": 2000])
        let stats = statsAfter(server, ended: 2000)
        XCTAssertEqual(stats.accepted, 2000)
        XCTAssertEqual(stats.replied, 2000)
        XCTAssertEqual(stats.ended, 2000)
        XCTAssertEqual(server.acceptedPerReactor.count, 2)
        for accepted in server.acceptedPerReactor {
            XCTAssertGreaterThan(accepted, 0, "SO_REUSEPORT should spread 2,000 connections over both reactors")
        }
    }

    func testOneOctetAtATime() throws {
        let server = try startServer()
        let connection = try connect(server)
        try Socket.setOption(connection.fd, Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        for octet in sixteenRequest {
            try connection.sendAll([octet])
            usleep(10_000)
        }
        XCTAssertEqual(try connection.receiveUntilEnd(), sixteenReply)
        connection.shutdownWrite()
        XCTAssertEqual(statsAfter(server, ended: 1).replied, 1)
    }

    /// More than 16 octets: the reply must arrive intact, not destroyed by an
    /// RST from closing with unread input (rule 5).
    func testOversizedRequestStillGetsItsReplyWithoutReset() throws {
        let server = try startServer()
        for extra in [1, 4096, 64 * 1024, 1024 * 1024] {
            let connection = try connect(server)
            try connection.sendAll(sixteenRequest + [UInt8](repeating: 0x78, count: extra))
            XCTAssertEqual(try connection.receiveUntilEnd(), sixteenReply, "with \(extra) extra octets")
        }
        let stats = statsAfter(server, ended: 4)
        XCTAssertEqual(stats.replied, 4)
        XCTAssertEqual(stats.resets, 0)
    }

    /// The extra octets arrive after the reply has been sent: still read and discarded.
    func testExtraOctetsAfterTheReply() throws {
        let server = try startServer()
        let connection = try connect(server)
        try connection.sendAll(sixteenRequest)
        XCTAssertEqual(try connection.receive(exactly: 16), sixteenReply)
        try connection.sendAll([UInt8](repeating: 0x79, count: 256 * 1024))
        connection.shutdownWrite()
        XCTAssertEqual(try connection.receiveUntilEnd(), [])
        XCTAssertEqual(statsAfter(server, ended: 1).replied, 1)
    }

    func testShortAndResetClientsDisturbNoOne() throws {
        let server = try startServer(reactors: 2)
        let tally = Tally()
        try onThreads(60) { index in
            do {
                let port = server.address.port
                switch index % 3 {
                case 0:  // short: 5 octets, then EOF
                    let connection = try DeadlineConnection(host: "127.0.0.1", port: port, timeout: .seconds(20))
                    try connection.sendAll(Array(sixteenRequest.prefix(5)))
                    connection.shutdownWrite()
                    tally.add(try connection.receiveUntilEnd() == [] ? "short closed" : "short answered")
                case 1:  // reset after 7 octets
                    let connection = try DeadlineConnection(host: "127.0.0.1", port: port, timeout: .seconds(20))
                    try connection.sendAll(Array(sixteenRequest.prefix(7)))
                    usleep(20_000)
                    connection.abort()
                    tally.add("reset sent")
                default:  // a well-behaved client, in the middle of it all
                    for _ in 0..<10 {
                        let other = try DeadlineConnection(host: "127.0.0.1", port: port, timeout: .seconds(20))
                        try other.sendAll(sixteenRequest)
                        tally.add(try other.receiveUntilEnd() == sixteenReply ? "exact" : "wrong")
                    }
                }
            } catch {
                tally.add("error: \(error)")
            }
        }
        XCTAssertEqual(tally.all, ["short closed": 20, "reset sent": 20, "exact": 200])
        let stats = statsAfter(server, ended: 240)
        XCTAssertEqual(stats.accepted, 240)
        XCTAssertEqual(stats.replied, 200)
        XCTAssertEqual(stats.shortRequests, 20)
        XCTAssertEqual(stats.resets, 20)
        XCTAssertEqual(stats.timedOut, 0)
    }

    func testShortRequestAtEveryLengthGetsNoReply() throws {
        let server = try startServer()
        for length in 0..<16 {
            let connection = try connect(server)
            try connection.sendAll(Array(sixteenRequest.prefix(length)))
            connection.shutdownWrite()
            XCTAssertEqual(try connection.receiveUntilEnd(), [], "after \(length) octets")
        }
        XCTAssertEqual(statsAfter(server, ended: 16).shortRequests, 16)
    }

    func testSilentClientIsClosedAtTheRequestDeadline() throws {
        let server = try startServer(request: .milliseconds(300))
        let started = MonotonicClock.nanoseconds()
        let connection = try connect(server)
        XCTAssertEqual(try connection.receiveUntilEnd(), [])
        let waited = Double(MonotonicClock.nanoseconds() - started) / 1e9
        XCTAssertGreaterThanOrEqual(waited, 0.29, "closed before the deadline")
        let stats = statsAfter(server, ended: 1)
        XCTAssertEqual(stats.requestTimeouts, 1)
        XCTAssertEqual(stats.replied, 0)
        XCTAssertEqual(try bookSession(server), sixteenReply, "the server still serves")
    }

    /// One octet every 100 ms keeps the connection busy but does not extend
    /// the whole-request deadline.
    func testTricklingClientIsClosedAtTheRequestDeadline() throws {
        let server = try startServer(request: .milliseconds(500))
        let connection = try connect(server)
        var sent = 0
        var closed = false
        while sent < 16 {
            do {
                try connection.sendAll([sixteenRequest[sent]])
            } catch {
                closed = true
                break
            }
            sent += 1
            usleep(100_000)
            if server.metrics().requestTimeouts == 1 { closed = true; break }
        }
        XCTAssertTrue(closed, "the trickling client finished its request instead of timing out")
        XCTAssertLessThan(sent, 16)
        let stats = statsAfter(server, ended: 1)
        XCTAssertEqual(stats.requestTimeouts, 1)
        XCTAssertEqual(stats.replied, 0)
    }

    func testShutdownLetsSessionsInFlightFinish() throws {
        let server = try startServer(shutdown: .seconds(5))
        let inFlight = try connect(server)
        try inFlight.sendAll(Array(sixteenRequest.prefix(8)))
        XCTAssertTrue(eventually { server.metrics().active == 1 })
        server.requestShutdown()
        // New connections are refused once the listeners are closed.
        XCTAssertTrue(eventually {
            do {
                _ = try DeadlineConnection(host: "127.0.0.1", port: server.address.port, timeout: .seconds(1))
                return false
            } catch ClientError.cannotConnect(_, let errno) {
                return errno == Errno.connectionRefused
            } catch {
                return false
            }
        })
        XCTAssertFalse(server.isFinished, "drained before the session in flight finished")
        try inFlight.sendAll(Array(sixteenRequest.suffix(8)))
        XCTAssertEqual(try inFlight.receiveUntilEnd(), sixteenReply)
        inFlight.shutdownWrite()
        let totals = server.wait()
        XCTAssertTrue(server.isFinished)
        XCTAssertEqual(totals.replied, 1)
        XCTAssertEqual(totals.abortedAtShutdown, 0)
    }

    func testShutdownTimeoutClosesWhatIsLeft() throws {
        let server = try startServer(request: .seconds(30), shutdown: .milliseconds(300))
        let silent = (0..<3).compactMap { _ in try? connect(server) }
        XCTAssertEqual(silent.count, 3)
        XCTAssertTrue(eventually { server.metrics().active == 3 })
        let started = MonotonicClock.nanoseconds()
        server.requestShutdown()
        let totals = server.wait()
        let took = Double(MonotonicClock.nanoseconds() - started) / 1e9
        XCTAssertEqual(totals.abortedAtShutdown, 3)
        XCTAssertEqual(totals.active, 0)
        XCTAssertGreaterThanOrEqual(took, 0.25)
        XCTAssertLessThan(took, 5)
        for connection in silent {
            XCTAssertEqual(try connection.receiveUntilEnd(), [])
        }
    }

    func testIdleServerShutsDownAtOnce() throws {
        let server = try startServer(reactors: 3)
        let started = MonotonicClock.nanoseconds()
        server.requestShutdown()
        server.requestShutdown()
        let totals = server.wait()
        XCTAssertLessThan(Double(MonotonicClock.nanoseconds() - started) / 1e9, 2)
        XCTAssertEqual(totals.totals.filter { $0.value != 0 && $0.key != "connections_max" }.map(\.key), [], "an idle server counts nothing")
    }
}
