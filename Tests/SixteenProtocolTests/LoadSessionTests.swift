import SixteenProtocol
import XCTest

/// The load generator's client-side session, with no sockets and a hand-made clock.
final class LoadSessionTests: XCTestCase {
    private let t0 = Instant(nanoseconds: 1_000_000_000)
    private func at(_ milliseconds: Int64) -> Instant { Instant(nanoseconds: t0.nanoseconds + milliseconds * 1_000_000) }

    private func feed(_ session: inout LoadSession, _ octets: [UInt8], _ now: Instant) -> LoadAction {
        octets.withUnsafeBytes { session.received($0, now: now) }
    }

    func testSixteenHappyPathMeasuresToTheLastReplyOctet() {
        var session = LoadSession(mode: .sixteen, timeout: .seconds(10))
        XCTAssertEqual(session.started(now: t0), .armTimer(deadline: at(10_000)))
        XCTAssertFalse(session.readsNow)
        XCTAssertEqual(session.connected(now: at(1)), .send(offset: 0))
        XCTAssertEqual(session.wrote(10, now: at(2)), .send(offset: 10))
        XCTAssertEqual(session.wrote(6, now: at(3)), .wait)
        XCTAssertTrue(session.readsNow)
        XCTAssertEqual(feed(&session, Array("Farewell".utf8), at(4)), .wait)
        XCTAssertNil(session.replyCompletedAt)
        XCTAssertEqual(feed(&session, Array(", client".utf8), at(5)), .wait)
        XCTAssertEqual(session.replyCompletedAt, at(5))
        XCTAssertEqual(session.inputEnded(now: at(9)), .finish(.ok))
        XCTAssertEqual(session.outcome, .ok)
        XCTAssertEqual(session.inputEnded(now: at(10)), .wait, "a finished session ignores events")
    }

    func testEveryWrongOctetPositionIsCaught() {
        let reply = Array("Farewell, client".utf8)
        for position in 0..<16 {
            for split in [1, 7, 16] {
                var session = LoadSession(mode: .sixteen, timeout: .seconds(10))
                _ = session.started(now: t0)
                _ = session.connected(now: t0)
                _ = session.wrote(16, now: t0)
                var wrong = reply
                wrong[position] ^= 0x01
                var result = LoadAction.wait
                var offset = 0
                while offset < 16, result == .wait {
                    let end = min(offset + split, 16)
                    result = feed(&session, Array(wrong[offset..<end]), t0)
                    offset = end
                }
                XCTAssertEqual(result, .finish(.wrongOctets), "position \(position), split \(split)")
            }
        }
    }

    func testOctetsAfterTheReplyAreWrongAndEarlyEOFIsShort() {
        var long = LoadSession(mode: .sixteen, timeout: .seconds(10))
        _ = long.started(now: t0); _ = long.connected(now: t0); _ = long.wrote(16, now: t0)
        XCTAssertEqual(feed(&long, Array("Farewell, client!".utf8), t0), .finish(.wrongOctets))
        var short = LoadSession(mode: .sixteen, timeout: .seconds(10))
        _ = short.started(now: t0); _ = short.connected(now: t0); _ = short.wrote(16, now: t0)
        XCTAssertEqual(feed(&short, Array("Farewell".utf8), t0), .wait)
        XCTAssertEqual(short.inputEnded(now: t0), .finish(.shortReply))
    }

    func testUpperSendAllReadsNothingUntilEverythingIsSentThenHalfCloses() {
        var session = LoadSession(mode: .upper(bytes: 100, sendAll: true), timeout: .seconds(10))
        XCTAssertEqual(session.requestLength, 112, "rounded up to whole 16-octet frames")
        _ = session.started(now: t0)
        XCTAssertEqual(session.connected(now: t0), .send(offset: 0))
        XCTAssertFalse(session.readsNow)
        XCTAssertEqual(session.wrote(100, now: t0), .send(offset: 100))
        XCTAssertFalse(session.readsNow)
        XCTAssertEqual(session.wrote(12, now: t0), .shutdownWrite)
        XCTAssertTrue(session.readsNow)
        let echo = (0..<112).map { Array("CAPITALIZE THIS!".utf8)[$0 % 16] }
        XCTAssertEqual(feed(&session, Array(echo[..<37]), t0), .wait)
        XCTAssertEqual(feed(&session, Array(echo[37...]), at(1)), .wait)
        XCTAssertEqual(session.replyCompletedAt, at(1))
        XCTAssertEqual(session.inputEnded(now: at(2)), .finish(.ok))
    }

    func testUpperInterleavedReadsWhileSendingAndChecksEveryPhase() {
        var session = LoadSession(mode: .upper(bytes: 64, sendAll: false), timeout: .seconds(10))
        _ = session.started(now: t0)
        _ = session.connected(now: t0)
        XCTAssertTrue(session.readsNow)
        var echo = (0..<64).map { Array("CAPITALIZE THIS!".utf8)[$0 % 16] }
        echo[45] = UInt8(ascii: "c")
        XCTAssertEqual(feed(&session, Array(echo[..<40]), t0), .wait)
        XCTAssertEqual(feed(&session, Array(echo[40...]), t0), .finish(.wrongOctets))
    }

    func testIdleHoldsUntilReleasedAndKeepsItsTimerTicking() {
        var session = LoadSession(mode: .idle, timeout: .seconds(1))
        _ = session.started(now: t0)
        XCTAssertEqual(session.connected(now: t0), .wait)
        XCTAssertEqual(session.timerFired(now: at(5_000)), .armTimer(deadline: at(6_000)), "held sessions do not time out")
        XCTAssertEqual(session.releasedToSend(now: at(7_000)), .send(offset: 0))
        _ = session.wrote(16, now: at(7_001))
        XCTAssertEqual(session.timerFired(now: at(7_500)), .armTimer(deadline: at(8_001)))
        XCTAssertEqual(session.timerFired(now: at(8_001)), .finish(.timedOut))
    }

    func testReleaseBeforeConnectSendsOnConnect() {
        var session = LoadSession(mode: .idle, timeout: .seconds(1))
        _ = session.started(now: t0)
        XCTAssertEqual(session.releasedToSend(now: t0), .wait)
        XCTAssertEqual(session.connected(now: at(1)), .send(offset: 0))
    }

    func testConnectFailuresAreNamed() {
        var refused = LoadSession(mode: .sixteen, timeout: .seconds(1))
        _ = refused.started(now: t0)
        XCTAssertEqual(refused.connectFailed(refused: true), .finish(.refused))
        var other = LoadSession(mode: .sixteen, timeout: .seconds(1))
        _ = other.started(now: t0)
        XCTAssertEqual(other.connectFailed(refused: false), .finish(.connectFailed))
        var reset = LoadSession(mode: .sixteen, timeout: .seconds(1))
        _ = reset.started(now: t0); _ = reset.connected(now: t0)
        XCTAssertEqual(reset.connectionFailed(), .finish(.reset))
        var abandoned = LoadSession(mode: .sixteen, timeout: .seconds(1))
        _ = abandoned.started(now: t0)
        XCTAssertEqual(abandoned.abandoned(), .finish(.unfinished))
    }

    func testProgressMovesTheInactivityDeadline() {
        var session = LoadSession(mode: .upper(bytes: 32, sendAll: false), timeout: .seconds(1))
        _ = session.started(now: t0)
        _ = session.connected(now: at(500))
        XCTAssertEqual(session.timerFired(now: at(1_000)), .armTimer(deadline: at(1_500)))
        _ = session.wrote(16, now: at(1_400))
        XCTAssertEqual(session.timerFired(now: at(1_500)), .armTimer(deadline: at(2_400)))
        XCTAssertEqual(session.timerFired(now: at(2_400)), .finish(.timedOut))
    }
}
