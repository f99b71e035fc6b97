import SixteenProtocol
import XCTest

/// Deadlines and closed sessions (rules 1, 3, 5, 8, 9), split from
/// `SixteenSessionTests.swift` to keep each file short.
extension SixteenSessionTests {
    // MARK: Rules 1, 8: the request deadline

    func testRequestTimerFiringEarlyRearms() {
        for n in [0, 1, 15] {
            var session = Drive.awaiting(received: n)
            for now in [Drive.acceptedAt, ms(1), ms(9_999), offset(Drive.requestDeadline, nanoseconds: -1)] {
                XCTAssertEqual(session.timerFired(now: now), .armTimer(deadline: Drive.requestDeadline), "n = \(n)")
                XCTAssertNil(session.outcome)
                XCTAssertEqual(session.requestReceived, n)
            }
        }
    }

    func testRequestDeadlineAtAndAfter() {
        for n in [0, 1, 15] {
            for now in [Drive.requestDeadline, offset(Drive.requestDeadline, nanoseconds: 1), sec(3_600)] {
                var session = Drive.awaiting(received: n)
                XCTAssertEqual(session.timerFired(now: now), .close(.requestTimedOut(received: n)), "n = \(n)")
                XCTAssertEqual(session.outcome, .requestTimedOut(received: n))
                XCTAssertEqual(session.requestReceived, n)
                XCTAssertEqual(session.request, Array(sixteenRequest[0..<n]))
            }
        }
    }

    /// A client sending one octet a second does not push the deadline back.
    func testRequestDeadlineCoversTheWholeRequest() {
        var session = Drive.awaiting(received: 0)
        for i in 1...9 {
            XCTAssertEqual(session.feed([sixteenRequest[i - 1]], now: sec(Int64(i))), .wait)
            // The armed deadline is still accept + 10 s.
            XCTAssertEqual(session.timerFired(now: sec(Int64(i))), .armTimer(deadline: Drive.requestDeadline))
        }
        XCTAssertEqual(session.timerFired(now: sec(10)), .close(.requestTimedOut(received: 9)))
        // The 10th octet, a second later, is too late.
        XCTAssertEqual(session.feed([sixteenRequest[9]], now: sec(10)), .wait)
        XCTAssertEqual(session.outcome, .requestTimedOut(received: 9))
        XCTAssertEqual(session.request, Array(sixteenRequest[0..<9]))
    }

    func testRequestCompletedJustBeforeTheDeadlineGetsTheReplyDeadline() {
        var session = Drive.awaiting(received: 15)
        let completedAt = offset(Drive.requestDeadline, nanoseconds: -1)
        let replyDeadline = completedAt + .seconds(2)
        XCTAssertEqual(session.feed([sixteenRequest[15]], now: completedAt), .writeReply(offset: 0, deadline: replyDeadline))
        // The stale request timer fires: no request timeout any more, it re-arms for the reply deadline.
        XCTAssertEqual(session.timerFired(now: Drive.requestDeadline), .armTimer(deadline: replyDeadline))
        XCTAssertNil(session.outcome)
    }

    // MARK: Rules 3, 8: the reply deadline

    func testReplyTimerFiringEarlyRearms() {
        for sent in [0, 7, 15] {
            var session = Drive.sending(sent: sent)
            for now in [Drive.requestCompletedAt, offset(Drive.replyDeadline, nanoseconds: -1)] {
                XCTAssertEqual(session.timerFired(now: now), .armTimer(deadline: Drive.replyDeadline))
                XCTAssertNil(session.outcome)
            }
            XCTAssertEqual(session.becameWritable(now: ms(5_000)), .writeReply(offset: sent, deadline: Drive.replyDeadline))
        }
    }

    func testReplyDeadlineAtAndAfter() {
        for sent in [0, 1, 7, 15] {
            for peerFinished in [false, true] {
                for now in [Drive.replyDeadline, offset(Drive.replyDeadline, nanoseconds: 1), sec(100)] {
                    var session = Drive.sending(sent: sent, peerFinished: peerFinished)
                    XCTAssertEqual(session.timerFired(now: now), .close(.replyTimedOut(sent: sent)), "sent \(sent)")
                    XCTAssertEqual(session.outcome, .replyTimedOut(sent: sent))
                    XCTAssertEqual(session.request, sixteenRequest)
                    XCTAssertEqual(session.requestReceived, 16)
                }
            }
        }
    }

    // MARK: Rules 5, 8: lingering

    func testLingerTimerBeforeTheDeadlineRearms() {
        var session = Drive.lingering()
        for now in [Drive.replyWrittenAt, Drive.replyDeadline, offset(Drive.lingerDeadline, nanoseconds: -1)] {
            XCTAssertEqual(session.timerFired(now: now), .armTimer(deadline: Drive.lingerDeadline))
            XCTAssertNil(session.outcome)
        }
    }

    func testLingerDeadlineEndsTheSessionReplied() {
        for now in [Drive.lingerDeadline, offset(Drive.lingerDeadline, nanoseconds: 1), sec(1_000)] {
            var session = Drive.lingering()
            XCTAssertEqual(session.timerFired(now: now), .close(.replied))
            XCTAssertEqual(session.outcome, .replied)
            XCTAssertEqual(session.request, sixteenRequest)
            XCTAssertEqual(session.requestReceived, 16)
        }
    }

    func testEndOfInputWhileLingeringEndsTheSessionReplied() {
        var session = Drive.lingering()
        XCTAssertEqual(session.inputEnded(now: ms(4_500)), .close(.replied))
        XCTAssertEqual(session.outcome, .replied)
    }

    func testWriteEventsWhileLingeringAreIgnored() {
        var session = Drive.lingering()
        let before = Fingerprint(session)
        XCTAssertEqual(session.becameWritable(now: ms(4_200)), .wait)
        XCTAssertEqual(session.wrote(3, now: ms(4_300)), .wait)
        XCTAssertEqual(session.accepted(now: ms(4_400)), .wait)
        XCTAssertEqual(Fingerprint(session), before)
    }

    func testLingerFingerprint() {
        let print = Fingerprint(Drive.lingering())
        XCTAssertEqual(print.earlyTimer, .armTimer(deadline: Drive.lingerDeadline))
        XCTAssertEqual(print.writable, .wait)
        XCTAssertEqual(print.wroteAll, .wait)
        XCTAssertEqual(print.eof, .close(.replied))
        XCTAssertEqual(print.failed, .close(.replied))
        XCTAssertNil(print.outcome)
    }

    // MARK: Rule 9: closed sessions ignore everything

    func testClosedSessionsIgnoreEveryEvent() {
        var closers: [(String, SixteenSession, SixteenOutcome)] = []
        func closed(_ name: String, _ session: SixteenSession, _ event: (inout SixteenSession) -> SixteenAction) {
            var session = session
            guard case .close(let outcome) = event(&session) else {
                return XCTFail("\(name) did not close")
            }
            closers.append((name, session, outcome))
        }
        for n in [0, 1, 15] {
            closed("EOF at \(n)", Drive.awaiting(received: n)) { $0.inputEnded(now: sec(2)) }
            closed("reset at \(n)", Drive.awaiting(received: n)) { $0.connectionFailed() }
            closed("request timeout at \(n)", Drive.awaiting(received: n)) { $0.timerFired(now: sec(10)) }
        }
        for sent in [0, 9] {
            closed("reset sending \(sent)", Drive.sending(sent: sent)) { $0.connectionFailed() }
            closed("reply timeout at \(sent)", Drive.sending(sent: sent)) { $0.timerFired(now: sec(60)) }
        }
        closed("reset before accept", SixteenSession(timeouts: testTimeouts)) { $0.connectionFailed() }
        closed("written after EOF", Drive.sending(sent: 3, peerFinished: true)) { $0.wrote(13, now: ms(3_900)) }
        closed("linger timeout", Drive.lingering()) { $0.timerFired(now: Drive.lingerDeadline) }
        closed("EOF lingering", Drive.lingering()) { $0.inputEnded(now: ms(5_000)) }
        closed("reset lingering", Drive.lingering()) { $0.connectionFailed() }
        XCTAssertEqual(closers.count, 18)

        for (name, prototype, outcome) in closers {
            XCTAssertEqual(prototype.outcome, outcome, name)
            let request = prototype.request
            let received = prototype.requestReceived
            var session = prototype
            let events: [(String, (inout SixteenSession) -> SixteenAction)] = [
                ("accepted", { $0.accepted(now: sec(20)) }),
                ("received", { $0.feed(sixteenRequest, now: sec(21)) }),
                ("received one", { $0.feed([0x41], now: sec(21)) }),
                ("inputEnded", { $0.inputEnded(now: sec(22)) }),
                ("wrote", { $0.wrote(16, now: sec(23)) }),
                ("wrote some", { $0.wrote(1, now: sec(23)) }),
                ("becameWritable", { $0.becameWritable(now: sec(24)) }),
                ("connectionFailed", { $0.connectionFailed() }),
                ("timerFired early", { $0.timerFired(now: Instant(nanoseconds: .min)) }),
                ("timerFired late", { $0.timerFired(now: Instant(nanoseconds: .max)) }),
            ]
            // Each event alone, and all of them in a row on one session.
            for (eventName, event) in events {
                var copy = prototype
                XCTAssertEqual(event(&copy), .wait, "\(name): \(eventName)")
                XCTAssertEqual(copy.outcome, outcome, "\(name): \(eventName)")
                XCTAssertEqual(event(&session), .wait, "\(name): \(eventName) in sequence")
            }
            XCTAssertEqual(session.outcome, outcome, name)
            XCTAssertEqual(session.request, request, name)
            XCTAssertEqual(session.requestReceived, received, name)
        }
    }

    func testClosedRequestReceivedMatchesTheOutcome() {
        var session = Drive.sending(sent: 2)
        _ = session.timerFired(now: sec(60))
        XCTAssertEqual(session.outcome, .replyTimedOut(sent: 2))
        XCTAssertEqual(session.requestReceived, 16)
        XCTAssertEqual(session.request, sixteenRequest)

        session = Drive.awaiting(received: 6)
        _ = session.timerFired(now: sec(60))
        XCTAssertEqual(session.requestReceived, 6)
        XCTAssertEqual(session.request, Array("Hi the".utf8))
    }
}
