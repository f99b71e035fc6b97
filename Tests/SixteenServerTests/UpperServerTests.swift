import Foundation
import Reactor
import SixteenClient
import SixteenProtocol
import SixteenServer
import TestSupport
import XCTest

/// The `upper` protocol over real loopback sockets: always draining reads,
/// bounded memory, nothing lost.
final class UpperServerTests: ServerTestCase {
    private var spillDirectory = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        spillDirectory = try makeTemporaryDirectory(prefix: "sixteen-test-spill")
    }

    override func tearDown() {
        super.tearDown()
        try? FileManager.default.removeItem(atPath: spillDirectory)
    }

    /// Descriptors of this process open on (unnamed) files in the spill directory.
    private func openSpillFiles() -> Int {
        let fds = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        return fds.filter { fd in
            let target = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/\(fd)")) ?? ""
            return target.hasPrefix(spillDirectory + "/")
        }.count
    }

    func testSixtyFourMebibytesSentBeforeAnyReadComeBackExact() throws {
        let server = try startUpperServer(spillDirectory: spillDirectory)
        var peakSpilled = 0
        let result = try runDeadlockStream(host: "127.0.0.1", port: server.address.port, byteCount: 64 << 20, stallTimeout: .seconds(30), progress: { _ in
            peakSpilled = max(peakSpilled, server.metrics().spilledOctets)
        })
        XCTAssertEqual(result.octets, 64 << 20)
        XCTAssertGreaterThan(peakSpilled, 0, "64 MiB unread must have spilled past the 256 KiB high-water mark")
        let stats = statsAfter(server, ended: 1)
        XCTAssertEqual(stats.streamsCompleted, 1)
        XCTAssertEqual(stats.octetsEchoed, 64 << 20)
        XCTAssertEqual(stats.spilledOctets, 0)
        XCTAssertEqual(stats.spillFiles, 0)
        XCTAssertEqual(stats.bufferedBytes, 0)
        XCTAssertEqual(openSpillFiles(), 0)
    }

    func testTwentyConcurrentStreamsEachVerified() throws {
        let server = try startUpperServer(spillDirectory: spillDirectory)
        let tally = Tally()
        try onThreads(20) { index in
            let count = (1 << 20) + index * 4099  // different sizes, some not a multiple of 16
            do {
                let result = try runDeadlockStream(host: "127.0.0.1", port: server.address.port, byteCount: count, stallTimeout: .seconds(30))
                tally.add(result.octets == (count + 15) / 16 * 16 ? "verified" : "wrong count")
            } catch {
                tally.add("error: \(error)")
            }
        }
        XCTAssertEqual(tally.all, ["verified": 20])
        let stats = statsAfter(server, ended: 20)
        XCTAssertEqual(stats.streamsCompleted, 20)
        XCTAssertEqual(stats.bufferedBytes, 0)
        XCTAssertEqual(stats.spillFiles, 0)
    }

    /// A partial last frame, and octets that are not letters, pass through.
    func testOnlyLettersChangeAndPartialFramesAreEchoed() throws {
        let server = try startUpperServer(spillDirectory: spillDirectory)
        let connection = try connect(server)
        let octets: [UInt8] = Array("Hello, World! 0123 {az} ~`".utf8) + [0x00, 0xff, 0x80, 0x7a, 0x61, 0x60, 0x7b]
        try connection.sendAll(octets)
        connection.shutdownWrite()
        let expected = octets.map { (0x61...0x7a).contains($0) ? $0 - 0x20 : $0 }
        XCTAssertEqual(try connection.receiveUntilEnd(), expected)
        XCTAssertEqual(statsAfter(server, ended: 1).octetsEchoed, octets.count)
    }

    func testClientThatNeverReadsThenDisconnectsLeavesNoSpillFileAndNoMemory() throws {
        let server = try startUpperServer(spillDirectory: spillDirectory)
        let baseline = server.metrics()
        XCTAssertEqual(baseline.bufferedBytes, 0)
        let connection = try connect(server)
        let chunk = [UInt8](repeating: 0x61, count: 1 << 20)
        for _ in 0..<16 { try connection.sendAll(chunk) }
        XCTAssertTrue(eventually { server.metrics().spillFiles == 1 && server.metrics().spilledOctets > 8 << 20 }, "\(server.metrics().totalsLine)")
        XCTAssertEqual(openSpillFiles(), 1, "the spill file should be open, and unnamed")
        XCTAssertEqual(try FileManager.default.contentsOfDirectory(atPath: spillDirectory), [])
        XCTAssertGreaterThan(server.metrics().bufferedBytes, 0)
        connection.abort()
        let stats = statsAfter(server, ended: 1)
        XCTAssertEqual(stats.resets, 1)
        XCTAssertEqual(stats.spillFiles, 0)
        XCTAssertEqual(stats.spilledOctets, 0)
        XCTAssertEqual(stats.bufferedBytes, baseline.bufferedBytes)
        XCTAssertEqual(openSpillFiles(), 0)
    }

    func testResetMidStreamTouchesNoOtherStream() throws {
        let server = try startUpperServer(spillDirectory: spillDirectory)
        let tally = Tally()
        try onThreads(2) { index in
            do {
                if index == 0 {
                    let connection = try DeadlineConnection(host: "127.0.0.1", port: server.address.port, timeout: .seconds(20))
                    try connection.sendAll([UInt8](repeating: 0x62, count: 3 << 20))
                    connection.abort()
                    tally.add("aborted")
                } else {
                    let result = try runDeadlockStream(host: "127.0.0.1", port: server.address.port, byteCount: 8 << 20, stallTimeout: .seconds(30))
                    tally.add(result.octets == 8 << 20 ? "verified" : "wrong")
                }
            } catch {
                tally.add("error: \(error)")
            }
        }
        XCTAssertEqual(tally.all, ["aborted": 1, "verified": 1])
        let stats = statsAfter(server, ended: 2)
        XCTAssertEqual(stats.resets, 1)
        XCTAssertEqual(stats.streamsCompleted, 1)
        XCTAssertEqual(stats.spillFiles, 0)
    }

    func testClientPastMaxPendingIsClosedWhileOthersCarryOn() throws {
        let server = try startUpperServer(maxPending: 1 << 20, spillDirectory: spillDirectory)
        let tally = Tally()
        try onThreads(3) { index in
            do {
                if index == 0 {
                    // Sends 64 MiB and never reads: must be cut off near 1 MiB pending.
                    let connection = try DeadlineConnection(host: "127.0.0.1", port: server.address.port, timeout: .seconds(20))
                    let chunk = [UInt8](repeating: 0x63, count: 1 << 20)
                    do {
                        for _ in 0..<64 { try connection.sendAll(chunk) }
                        tally.add("not closed")
                    } catch {
                        tally.add("closed")
                    }
                } else {
                    let result = try runDeadlockStream(host: "127.0.0.1", port: server.address.port, byteCount: 256 << 10, stallTimeout: .seconds(30))
                    tally.add(result.octets == 256 << 10 ? "verified" : "wrong")
                }
            } catch {
                tally.add("error: \(error)")
            }
        }
        XCTAssertEqual(tally.all, ["closed": 1, "verified": 2])
        let stats = statsAfter(server, ended: 3)
        XCTAssertEqual(stats.overflows, 1)
        XCTAssertEqual(stats.streamsCompleted, 2)
        XCTAssertEqual(stats.bufferedBytes, 0)
        XCTAssertEqual(stats.spillFiles, 0)
    }

    func testSilentStreamIsClosedAtTheIdleTimeout() throws {
        let server = try startUpperServer(idle: .milliseconds(300), spillDirectory: spillDirectory)
        let started = MonotonicClock.nanoseconds()
        let connection = try connect(server)
        try connection.sendAll(Array("capitalize".utf8))
        XCTAssertEqual(try connection.receive(exactly: 10), Array("CAPITALIZE".utf8))
        XCTAssertEqual(try connection.receiveUntilEnd(), [])
        XCTAssertGreaterThanOrEqual(Double(MonotonicClock.nanoseconds() - started) / 1e9, 0.29)
        let stats = statsAfter(server, ended: 1)
        XCTAssertEqual(stats.idleTimeouts, 1)
        XCTAssertEqual(stats.octetsEchoed, 10)
    }

    /// Reads keep being drained while output is stuck: a client that sends
    /// without reading is never blocked from sending by the server.
    func testServerKeepsReadingWhileOutputIsPending() throws {
        let server = try startUpperServer(spillDirectory: spillDirectory)
        let connection = try connect(server, timeout: .seconds(20))
        let chunk = [UInt8](repeating: 0x64, count: 1 << 20)
        // 32 MiB is far more than both sockets' buffers hold: a server that
        // stopped reading while its writes were blocked would stall this.
        for _ in 0..<32 { try connection.sendAll(chunk) }
        XCTAssertTrue(eventually { server.metrics().spilledOctets + server.metrics().bufferedBytes > 16 << 20 })
        connection.shutdownWrite()
        let echoed = try connection.receiveUntilEnd(limit: 40 << 20)
        XCTAssertEqual(echoed.count, 32 << 20)
        XCTAssertTrue(echoed.allSatisfy { $0 == 0x44 })
    }
}
