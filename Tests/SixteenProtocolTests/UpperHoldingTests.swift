import SixteenProtocol
import TestSupport
import XCTest

/// Rule 4's read room and rule 6's progress while holding output: a client
/// that reads everything is never closed by a small ceiling; a client that
/// holds output unread while trickling input is closed within `idle`; the
/// book's client, which sends everything before it reads, is not.
final class UpperHoldingTests: XCTestCase {
    /// 3 s idle, a 10 MB ceiling, 16 KiB of input per period while holding output.
    private let limits = UpperLimits(idle: .seconds(3), maxPending: 10_000_000, holdProgress: 16_384)

    func testReadRoomIsWhatIsLeftUnderTheCeilingAndOneAtIt() {
        var session = acceptedUpperSession(limits: UpperLimits(idle: .seconds(30), maxPending: 1_000))
        XCTAssertEqual(session.readRoom, 1_000)
        XCTAssertEqual(session.received(600, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.readRoom, 400)
        XCTAssertEqual(session.received(400, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.readRoom, 1, "at the ceiling the glue reads one octet, which overflows")
        XCTAssertEqual(session.received(1, now: sec(1)), .close(.overflowed(pending: 1_001)))
    }

    /// A client that reads everything, with reads no larger than the room,
    /// never overflows a ceiling far below the read buffer.
    func testAClientThatReadsEverythingNeverOverflowsASmallCeiling() {
        var session = acceptedUpperSession(limits: UpperLimits(idle: .seconds(30), maxPending: 100))
        var time = ms(0)
        for round in 0..<1_000 {
            let count = min(65_536, session.readRoom)
            XCTAssertEqual(session.received(count, now: time), .queueAndSend, "round \(round)")
            // The socket takes some now, the rest a moment later.
            XCTAssertEqual(session.wrote(count / 2, now: time), count - count / 2 > 0 ? .send : .wait)
            XCTAssertEqual(session.wrote(count - count / 2, now: time), .wait)
            time = ms(Int64(round))
        }
        XCTAssertNil(session.outcome)
        XCTAssertEqual(session.octetsReceived, 100_000)
    }

    func testTricklingWhileHoldingOutputIsNotProgress() {
        var session = acceptedUpperSession(limits: limits, at: sec(0))
        // 90 MB arrive and nothing is read back: output is held.
        XCTAssertEqual(session.received(9_000_000, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.wrote(100_000, now: sec(1)), .send)
        // Then one octet every two seconds: none of it is progress.
        for second in stride(from: 3, through: 9, by: 2) {
            XCTAssertEqual(session.received(1, now: sec(Int64(second))), .queueAndSend)
        }
        XCTAssertEqual(session.timerFired(now: sec(4)), .close(.idleTimedOut(received: 9_000_004, sent: 100_000)),
                       "closed idle after the last real progress, at 1 + 3 s")
    }

    func testEnoughInputWhileHoldingOutputIsProgress() {
        var session = acceptedUpperSession(limits: limits, at: sec(0))
        XCTAssertEqual(session.received(1_000, now: sec(1)), .queueAndSend)
        // 16 KiB more within the period: progress at the octet that completes it.
        XCTAssertEqual(session.received(16_383, now: sec(2)), .queueAndSend)
        XCTAssertEqual(session.timerFired(now: sec(3)), .armTimer(deadline: sec(4)), "16,383 octets are not yet progress")
        XCTAssertEqual(session.received(1, now: ms(3_500)), .queueAndSend)
        XCTAssertEqual(session.timerFired(now: sec(4)), .armTimer(deadline: ms(6_500)))
        XCTAssertEqual(session.timerFired(now: ms(6_500)), .close(.idleTimedOut(received: 17_384, sent: 0)))
    }

    /// The book's client sends everything before it reads: at any rate above
    /// 16 KiB per idle period, however long the sending takes, it is never
    /// idle; then it reads, and every write is progress.
    func testTheBooksClientAtAnyWorkableRateIsNeverClosed() {
        let roomy = UpperLimits(idle: limits.idle, maxPending: 1 << 30, holdProgress: limits.holdProgress)
        for octetsPerSecond in [6_000, 100_000, 10_000_000] {
            var session = acceptedUpperSession(limits: roomy, at: ms(0))
            let total = 600 * octetsPerSecond / 100  // 6 s of sending, twice the idle timeout
            var sent = 0
            var time: Int64 = 0
            while sent < total {
                time += 10
                let chunk = min(octetsPerSecond / 100, total - sent)
                XCTAssertEqual(session.received(chunk, now: ms(time)), .queueAndSend, "\(octetsPerSecond) B/s at \(time) ms")
                sent += chunk
                if case .close(let outcome) = session.timerFired(now: ms(time)) {
                    XCTFail("\(octetsPerSecond) B/s closed at \(time) ms: \(outcome)")
                    break
                }
            }
            XCTAssertEqual(session.inputEnded(now: ms(time + 10)), .send)
            XCTAssertEqual(session.wrote(total, now: ms(time + 20)), .close(.completed(echoed: total)))
        }
    }

    /// Input with nothing pending is progress whatever its size: a client
    /// that reads everything may send one octet at a time.
    func testInputWithNothingPendingIsAlwaysProgress() {
        var session = acceptedUpperSession(limits: limits, at: sec(0))
        for second: Int64 in 1...10 {
            XCTAssertEqual(session.received(1, now: sec(second)), .queueAndSend)
            XCTAssertEqual(session.wrote(1, now: sec(second)), .wait)
            XCTAssertEqual(session.timerFired(now: sec(second)), .armTimer(deadline: sec(second + 3)))
        }
    }

    func testAWriteResetsTheHeldInputTally() {
        var session = acceptedUpperSession(limits: limits, at: sec(0))
        XCTAssertEqual(session.received(10, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.received(16_000, now: sec(2)), .queueAndSend)
        XCTAssertEqual(session.wrote(5, now: sec(2)), .send)
        // 16,000 + 500 would have been progress without the write between.
        XCTAssertEqual(session.received(500, now: sec(3)), .queueAndSend)
        XCTAssertEqual(session.timerFired(now: sec(5)), .close(.idleTimedOut(received: 16_510, sent: 5)))
    }
}
