import SixteenProtocol
import XCTest

/// The `sixteen` server-side state machine, rule by rule (see the header of
/// `SixteenSession.swift`). No sockets, no clock: every `now` is hand-made.
final class SixteenSessionTests: XCTestCase {

    // MARK: Constants

    func testConstants() {
        XCTAssertEqual(sixteenRequest, Array("Hi there, server".utf8))
        XCTAssertEqual(sixteenReply, Array("Farewell, client".utf8))
        XCTAssertEqual(sixteenRequest.count, 16)
        XCTAssertEqual(sixteenReply.count, 16)
        XCTAssertEqual(SixteenSession.requestLength, 16)
        XCTAssertEqual(SixteenTimeouts(), SixteenTimeouts(request: .seconds(10), linger: .seconds(2)))
        let session = SixteenSession(timeouts: testTimeouts)
        XCTAssertEqual(session.timeouts, testTimeouts)
    }

    // MARK: Rule 1: accept

    func testFreshSessionIsEmptyAndOpen() {
        let session = SixteenSession(timeouts: testTimeouts)
        XCTAssertNil(session.outcome)
        XCTAssertEqual(session.request, [])
        XCTAssertEqual(session.requestReceived, 0)
    }

    func testAcceptedArmsTheRequestDeadline() {
        for acceptedAt in [Instant.zero, origin, Instant(nanoseconds: -5), Instant(nanoseconds: 1)] {
            var session = SixteenSession(timeouts: testTimeouts)
            XCTAssertEqual(session.accepted(now: acceptedAt), .armTimer(deadline: acceptedAt + .seconds(10)))
            XCTAssertNil(session.outcome)
            XCTAssertEqual(session.requestReceived, 0)
            XCTAssertEqual(session.request, [])
        }
        // The request timeout, not the linger timeout, sets it.
        var session = SixteenSession(timeouts: SixteenTimeouts(request: .milliseconds(1_500), linger: .seconds(60)))
        XCTAssertEqual(
            session.accepted(now: origin),
            .armTimer(deadline: Instant(nanoseconds: origin.nanoseconds + 1_500_000_000)))
    }

    func testAcceptedTwiceIsIgnored() {
        var session = Drive.awaiting(received: 3)
        let before = Fingerprint(session)
        XCTAssertEqual(session.accepted(now: sec(5)), .wait)
        XCTAssertEqual(Fingerprint(session), before)
        XCTAssertEqual(session.timerFired(now: sec(9)), .armTimer(deadline: Drive.requestDeadline))
    }

    func testEventsBeforeAcceptDoNothing() {
        var session = SixteenSession(timeouts: testTimeouts)
        let fresh = Fingerprint(session)
        XCTAssertEqual(session.timerFired(now: origin), .wait)
        XCTAssertEqual(session.inputEnded(now: origin), .wait)
        XCTAssertEqual(session.wrote(5, now: origin), .wait)
        XCTAssertEqual(session.becameWritable(now: origin), .wait)
        XCTAssertEqual(Fingerprint(session), fresh)
        XCTAssertNil(session.outcome)
        // Accept still works afterwards.
        XCTAssertEqual(session.accepted(now: origin), .armTimer(deadline: sec(10)))
    }

    func testConnectionFailureBeforeAcceptIsAReset() {
        var session = SixteenSession(timeouts: testTimeouts)
        XCTAssertEqual(session.connectionFailed(), .close(.reset(received: 0)))
        XCTAssertEqual(session.outcome, .reset(received: 0))
        XCTAssertEqual(session.accepted(now: origin), .wait)
        XCTAssertEqual(session.outcome, .reset(received: 0))
    }

    // MARK: Rule 2: the request in any number of pieces

    /// All 2^15 ways of cutting `Hi there, server` into consecutive non-empty
    /// pieces, bit `i` of `mask` meaning "cut after octet `i + 1`".
    func testEverySplitOfTheRequest() {
        let request = sixteenRequest
        let requestTimeout = Duration.seconds(10)
        let replyTimeout = Duration.seconds(2)
        var cases = 0
        request.withUnsafeBytes { whole in
            for mask in 0..<(1 << 15) {
                var session = SixteenSession(timeouts: testTimeouts)
                // Vary both the accept time and the arrival times with the mask.
                let acceptedAt = Instant(nanoseconds: origin.nanoseconds + Int64(mask) * 1_000)
                let armed = session.accepted(now: acceptedAt)
                guard armed == .armTimer(deadline: acceptedAt + requestTimeout) else {
                    return XCTFail("mask \(mask): accepted returned \(armed)")
                }
                var start = 0
                var pieces = 0
                for end in 1...16 where end == 16 || mask & (1 << (end - 1)) != 0 {
                    pieces += 1
                    let now = Instant(nanoseconds: acceptedAt.nanoseconds + Int64(pieces) * 3 * nanosecondsPerMillisecond)
                    let action = session.received(UnsafeRawBufferPointer(rebasing: whole[start..<end]), now: now)
                    let expected: SixteenAction =
                        end == 16 ? .writeReply(offset: 0, deadline: now + replyTimeout) : .wait
                    guard action == expected else {
                        return XCTFail("mask \(mask), piece \(start)..<\(end): got \(action), expected \(expected)")
                    }
                    guard session.requestReceived == end, session.outcome == nil else {
                        return XCTFail("mask \(mask), piece \(start)..<\(end): received \(session.requestReceived)")
                    }
                    start = end
                }
                guard pieces == mask.nonzeroBitCount + 1 else {
                    return XCTFail("mask \(mask): \(pieces) pieces")
                }
                guard session.request == request else {
                    return XCTFail("mask \(mask): request \(session.request)")
                }
                cases += 1
            }
        }
        XCTAssertEqual(cases, 1 << 15)
    }

    func testPartialRequestIsVisibleAsItArrives() {
        var session = Drive.awaiting(received: 0)
        for n in 1...15 {
            XCTAssertEqual(session.feed([sixteenRequest[n - 1]], now: ms(Int64(n) * 100)), .wait)
            XCTAssertEqual(session.requestReceived, n)
            XCTAssertEqual(session.request, Array(sixteenRequest[0..<n]))
            XCTAssertNil(session.outcome)
        }
        XCTAssertEqual(session.feed([sixteenRequest[15]], now: ms(1_600)), .writeReply(offset: 0, deadline: ms(3_600)))
        XCTAssertEqual(session.request, sixteenRequest)
    }

    func testAnySixteenOctetsAreARequest() {
        let requests: [[UInt8]] = [
            Array(0..<16),
            Array(240...255),
            [UInt8](repeating: 0, count: 16),
            [UInt8](repeating: 0xff, count: 16),
            Array("\r\n\r\n\r\n\r\n\r\n\r\n\r\n\r\n".utf8),
            sixteenReply,
        ]
        for request in requests {
            var session = SixteenSession(timeouts: testTimeouts)
            _ = session.accepted(now: origin)
            XCTAssertEqual(session.feed(Array(request[0..<7]), now: sec(1)), .wait)
            XCTAssertEqual(session.feed(Array(request[7...]), now: sec(2)), .writeReply(offset: 0, deadline: sec(4)))
            XCTAssertEqual(session.request, request)
        }
    }

    // MARK: Rules 3, 4: octets after the 16th

    func testExtraOctetsInTheSameReadAsThe16th() {
        let trailers: [[UInt8]] = [
            Array("12345".utf8),
            [UInt8](repeating: 0x5a, count: 64 * 1024),
            [0],
            Array(sixteenRequest),
        ]
        for trailer in trailers {
            // The whole request plus the trailer in one read.
            var session = Drive.awaiting(received: 0)
            XCTAssertEqual(session.feed(sixteenRequest + trailer, now: sec(1)), .writeReply(offset: 0, deadline: sec(3)))
            XCTAssertEqual(session.request, sixteenRequest)
            XCTAssertEqual(session.requestReceived, 16)
            XCTAssertNil(session.outcome)

            // 10 octets, then the last 6 with the trailer.
            session = Drive.awaiting(received: 10)
            XCTAssertEqual(
                session.feed(Array(sixteenRequest[10...]) + trailer, now: sec(2)),
                .writeReply(offset: 0, deadline: sec(4)))
            XCTAssertEqual(session.request, sixteenRequest)

            // 15 octets, then the last one with the trailer.
            session = Drive.awaiting(received: 15)
            XCTAssertEqual(session.feed([sixteenRequest[15]] + trailer, now: sec(3)), .writeReply(offset: 0, deadline: sec(5)))
            XCTAssertEqual(session.request, sixteenRequest)
        }
    }

    func testExtraOctetsWhileSendingTheReplyAreDiscarded() {
        for sent in [0, 1, 5, 15] {
            for peerFinished in [false, true] {
                var session = Drive.sending(sent: sent, peerFinished: peerFinished)
                let before = Fingerprint(session)
                XCTAssertEqual(session.feed(Array("extra".utf8), now: ms(3_600)), .wait)
                XCTAssertEqual(session.feed([UInt8](repeating: 1, count: 64 * 1024), now: ms(3_700)), .wait)
                XCTAssertEqual(session.feed(sixteenRequest, now: ms(3_800)), .wait)
                XCTAssertEqual(Fingerprint(session), before, "sent \(sent), peerFinished \(peerFinished)")
                XCTAssertEqual(session.request, sixteenRequest)
                // The reply goes on from where it was, with the same deadline.
                XCTAssertEqual(session.becameWritable(now: ms(3_900)), .writeReply(offset: sent, deadline: Drive.replyDeadline))
            }
        }
    }

    func testExtraOctetsWhileLingeringAreDiscarded() {
        var session = Drive.lingering()
        let before = Fingerprint(session)
        XCTAssertEqual(session.feed(Array("more".utf8), now: ms(4_200)), .wait)
        XCTAssertEqual(session.feed([UInt8](repeating: 2, count: 64 * 1024), now: ms(4_300)), .wait)
        XCTAssertEqual(Fingerprint(session), before)
        XCTAssertEqual(session.request, sixteenRequest)
        XCTAssertEqual(session.timerFired(now: ms(6_000)), .armTimer(deadline: Drive.lingerDeadline))
        XCTAssertEqual(session.inputEnded(now: ms(6_050)), .close(.replied))
    }

    // MARK: Rule 6: EOF before 16 octets

    func testEndOfInputAtEveryOffsetIsAShortRequest() {
        for n in 0...15 {
            // The n octets in one read.
            var session = Drive.awaiting(received: n)
            XCTAssertEqual(session.inputEnded(now: sec(2)), .close(.shortRequest(received: n)), "n = \(n)")
            XCTAssertEqual(session.outcome, .shortRequest(received: n))
            XCTAssertEqual(session.requestReceived, n)
            XCTAssertEqual(session.request, Array(sixteenRequest[0..<n]))

            // The n octets one at a time.
            session = Drive.awaiting(received: 0)
            for i in 0..<n {
                XCTAssertEqual(session.feed([sixteenRequest[i]], now: ms(Int64(i) * 10)), .wait)
            }
            XCTAssertEqual(session.inputEnded(now: sec(2)), .close(.shortRequest(received: n)), "n = \(n)")
            XCTAssertEqual(session.outcome, .shortRequest(received: n))
        }
    }

    // MARK: Rules 5, 7: resets

    func testResetAtEveryRequestOffset() {
        for n in 0...15 {
            var session = Drive.awaiting(received: n)
            XCTAssertEqual(session.connectionFailed(), .close(.reset(received: n)), "n = \(n)")
            XCTAssertEqual(session.outcome, .reset(received: n))
            XCTAssertEqual(session.requestReceived, n)
            XCTAssertEqual(session.request, Array(sixteenRequest[0..<n]))
        }
    }

    func testResetWhileSendingTheReply() {
        for sent in 0...15 {
            for peerFinished in [false, true] {
                var session = Drive.sending(sent: sent, peerFinished: peerFinished)
                XCTAssertEqual(session.connectionFailed(), .close(.reset(received: 16)), "sent \(sent)")
                XCTAssertEqual(session.outcome, .reset(received: 16))
                XCTAssertEqual(session.request, sixteenRequest)
                XCTAssertEqual(session.requestReceived, 16)
            }
        }
    }

    func testResetWhileLingeringCountsAsReplied() {
        var session = Drive.lingering()
        XCTAssertEqual(session.connectionFailed(), .close(.replied))
        XCTAssertEqual(session.outcome, .replied)
        XCTAssertEqual(session.request, sixteenRequest)
    }

    // MARK: Rules 3, 5: writing the reply

    func testPartialWritesOfTheReply() {
        var session = Drive.awaiting(received: 0)
        let completedAt = sec(1)
        let deadline = sec(3)
        XCTAssertEqual(session.feed(sixteenRequest, now: completedAt), .writeReply(offset: 0, deadline: deadline))
        XCTAssertEqual(session.wrote(5, now: ms(1_100)), .writeReply(offset: 5, deadline: deadline))
        XCTAssertEqual(session.becameWritable(now: ms(1_500)), .writeReply(offset: 5, deadline: deadline))
        XCTAssertNil(session.outcome)
        let lastWriteAt = ms(1_700)
        XCTAssertEqual(session.wrote(11, now: lastWriteAt), .shutDownAndLinger(deadline: lastWriteAt + .seconds(2)))
        XCTAssertNil(session.outcome)
        XCTAssertEqual(session.requestReceived, 16)
    }

    func testWholeReplyInOneWriteLingersFromTheWriteTime() {
        var session = Drive.sending(sent: 0)
        // The linger deadline counts from the final write, not from the request.
        XCTAssertEqual(session.wrote(16, now: ms(5_000)), .shutDownAndLinger(deadline: ms(7_000)))
    }

    func testOneOctetWritesWithWritabilityInBetween() {
        var session = Drive.sending(sent: 0)
        for k in 1...15 {
            XCTAssertEqual(
                session.wrote(1, now: ms(3_300 + Int64(k))),
                .writeReply(offset: k, deadline: Drive.replyDeadline), "k = \(k)")
            XCTAssertEqual(
                session.becameWritable(now: ms(3_400 + Int64(k))),
                .writeReply(offset: k, deadline: Drive.replyDeadline), "k = \(k)")
        }
        XCTAssertEqual(session.wrote(1, now: ms(5_000)), .shutDownAndLinger(deadline: ms(7_000)))
    }

    /// Every sequence of write sizes that adds up to 16 (2^15 of them,
    /// 1-octet writes included), each followed by a writability report.
    func testEverySequenceOfWriteSizes() {
        let prototype = Drive.sending(sent: 0)
        let deadline = Drive.replyDeadline
        var cases = 0
        for mask in 0..<(1 << 15) {
            var session = prototype
            var sent = 0
            var writes = 0
            for end in 1...16 where end == 16 || mask & (1 << (end - 1)) != 0 {
                writes += 1
                let now = ms(3_300 + Int64(writes))
                let action = session.wrote(end - sent, now: now)
                let expected: SixteenAction =
                    end == 16 ? .shutDownAndLinger(deadline: now + .seconds(2)) : .writeReply(offset: end, deadline: deadline)
                guard action == expected else {
                    return XCTFail("mask \(mask), write \(sent)..<\(end): got \(action), expected \(expected)")
                }
                if end < 16 {
                    let again = session.becameWritable(now: now)
                    guard again == expected else {
                        return XCTFail("mask \(mask), writable at \(end): got \(again)")
                    }
                }
                sent = end
            }
            guard session.outcome == nil, writes == mask.nonzeroBitCount + 1 else {
                return XCTFail("mask \(mask): outcome \(String(describing: session.outcome)), \(writes) writes")
            }
            cases += 1
        }
        XCTAssertEqual(cases, 1 << 15)
    }

    func testZeroOctetWriteChangesNothing() {
        var session = Drive.sending(sent: 4)
        let before = Fingerprint(session)
        XCTAssertEqual(session.wrote(0, now: ms(3_600)), .writeReply(offset: 4, deadline: Drive.replyDeadline))
        XCTAssertEqual(Fingerprint(session), before)
    }

    func testReplyDeadlineIsNotExtendedByProgress() {
        var session = Drive.sending(sent: 0)
        XCTAssertEqual(session.wrote(3, now: ms(4_000)), .writeReply(offset: 3, deadline: Drive.replyDeadline))
        XCTAssertEqual(session.becameWritable(now: ms(5_000)), .writeReply(offset: 3, deadline: Drive.replyDeadline))
        XCTAssertEqual(session.wrote(3, now: ms(5_100)), .writeReply(offset: 6, deadline: Drive.replyDeadline))
        XCTAssertEqual(session.timerFired(now: Drive.replyDeadline), .close(.replyTimedOut(sent: 6)))
    }

    func testEndOfInputWhileSendingThenFinalWriteCloses() {
        for sentBeforeEOF in 0...15 {
            var session = Drive.sending(sent: sentBeforeEOF)
            let before = Fingerprint(session)
            XCTAssertEqual(session.inputEnded(now: ms(3_600)), .wait)
            XCTAssertNil(session.outcome)
            // A second EOF report changes nothing either.
            let afterEOF = Fingerprint(session)
            XCTAssertEqual(session.inputEnded(now: ms(3_650)), .wait)
            XCTAssertEqual(Fingerprint(session), afterEOF)
            // Only the end of the reply differs: close instead of linger.
            XCTAssertEqual(afterEOF.wroteAll, .close(.replied))
            XCTAssertEqual(before.wroteAll, .shutDownAndLinger(deadline: probeTime + .seconds(2)))
            XCTAssertEqual(afterEOF.earlyTimer, before.earlyTimer)
            XCTAssertEqual(afterEOF.writable, before.writable)
            XCTAssertEqual(
                session.becameWritable(now: ms(3_700)),
                .writeReply(offset: sentBeforeEOF, deadline: Drive.replyDeadline))
            XCTAssertEqual(session.wrote(16 - sentBeforeEOF, now: ms(3_800)), .close(.replied), "sent \(sentBeforeEOF)")
            XCTAssertEqual(session.outcome, .replied)
            XCTAssertEqual(session.request, sixteenRequest)
        }
        // EOF, then the reply in two writes.
        var session = Drive.sending(sent: 0)
        XCTAssertEqual(session.inputEnded(now: ms(3_600)), .wait)
        XCTAssertEqual(session.wrote(5, now: ms(3_700)), .writeReply(offset: 5, deadline: Drive.replyDeadline))
        XCTAssertEqual(session.wrote(11, now: ms(3_800)), .close(.replied))
    }

    func testEndOfInputInTheSameReadsAsTheRequestThenReply() {
        // The client sends 16 octets and shuts down at once: EOF arrives before any write.
        var session = Drive.awaiting(received: 0)
        XCTAssertEqual(session.feed(sixteenRequest, now: sec(1)), .writeReply(offset: 0, deadline: sec(3)))
        XCTAssertEqual(session.inputEnded(now: sec(1)), .wait)
        XCTAssertEqual(session.wrote(16, now: ms(1_001)), .close(.replied))
    }

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

    // MARK: Whole sessions

    func testTheBooksExchange() {
        var session = SixteenSession(timeouts: testTimeouts)
        XCTAssertEqual(session.accepted(now: sec(0)), .armTimer(deadline: sec(10)))
        XCTAssertEqual(session.feed(sixteenRequest, now: ms(1)), .writeReply(offset: 0, deadline: ms(2_001)))
        XCTAssertEqual(session.wrote(16, now: ms(2)), .shutDownAndLinger(deadline: ms(2_002)))
        XCTAssertEqual(session.feed(Array("bye".utf8), now: ms(3)), .wait)
        XCTAssertEqual(session.inputEnded(now: ms(4)), .close(.replied))
        XCTAssertEqual(session.outcome, .replied)
        XCTAssertEqual(session.request, sixteenRequest)
    }

    func testCopiesEvolveIndependently() {
        // The session is a value: copies evolve independently.
        var a = Drive.awaiting(received: 8)
        var b = a
        XCTAssertEqual(a.feed(Array("AAAAAAAA".utf8), now: sec(2)), .writeReply(offset: 0, deadline: sec(4)))
        XCTAssertEqual(b.feed(Array("BBBB".utf8), now: sec(2)), .wait)
        XCTAssertEqual(a.request, Array("Hi there".utf8) + Array("AAAAAAAA".utf8))
        XCTAssertEqual(b.request, Array("Hi there".utf8) + Array("BBBB".utf8))
        XCTAssertEqual(b.requestReceived, 12)
    }
}
