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
        XCTAssertEqual(SixteenSession.replyLength, sixteenReply.count)
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
