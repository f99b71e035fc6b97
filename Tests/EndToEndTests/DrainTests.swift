import Foundation
import Reactor
import SixteenClient
import SixteenProtocol
import TestSupport
import XCTest

/// A drain loses nothing that already reached the server: connections that
/// wait in the listen queue when SIGTERM comes are accepted and served
/// before the listeners close.
final class DrainTests: XCTestCase {
    private var children: [ChildProcess] = []

    override func tearDown() {
        children.forEach { $0.signal(SIGCONT); $0.signal(SIGKILL) }
        children = []
        super.tearDown()
    }

    func testConnectionsQueuedAtSIGTERMAreAllAnswered() throws {
        // One connection per wake-up: the drain comes while most still wait
        // in the queues, however the threads are scheduled after SIGCONT.
        let server = try ChildProcess(sixteenExecutable, ["server", "-p", "0", "--reactors", "2", "--accept-batch", "1"])
        children.append(server)
        let port = try XCTUnwrap(server.readLine().flatMap(port(fromListeningLine:)))
        XCTAssertTrue(server.waitForStandardError(containing: "At most"))
        server.signal(SIGSTOP)
        // The kernel completes these handshakes into the listen queues; the
        // stopped server has accepted none of them.
        let queued = try (0..<50).map { _ in try DeadlineConnection(host: "127.0.0.1", port: port, timeout: .seconds(5)) }
        for connection in queued { try connection.sendAll(sixteenRequest) }
        server.signal(SIGTERM)
        usleep(100_000)
        server.signal(SIGCONT)
        for (index, connection) in queued.enumerated() {
            XCTAssertEqual(try connection.receiveUntilEnd(), sixteenReply, "queued connection \(index) was not answered")
        }
        XCTAssertEqual(server.waitForExit(), 0, server.standardError())
        let totals = try XCTUnwrap(exitTotals(in: server.standardError()), server.standardError())
        XCTAssertEqual(totals["connections_accepted"], 50)
        XCTAssertEqual(totals["sessions_replied"], 50)
        XCTAssertEqual(totals["sessions_aborted"], 0)
        XCTAssertEqual(totals["sessions_reset"], 0)
    }
}
