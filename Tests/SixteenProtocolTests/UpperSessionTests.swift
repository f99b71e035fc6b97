import SixteenProtocol
import XCTest

/// The `upper` server-side state machine, rule by rule (see the header of
/// `UpperSession.swift`). No sockets, no clock: every `now` is hand-made.
final class UpperSessionTests: XCTestCase {

    // MARK: Limits and a fresh session

    func testLimitsDefaultsAndStorage() {
        let defaults = UpperLimits()
        XCTAssertEqual(defaults.idle, .seconds(60))
        XCTAssertEqual(defaults.maxPending, 2_147_483_648)
        XCTAssertEqual(UpperLimits(idle: .milliseconds(250), maxPending: 7).idle, .milliseconds(250))
        XCTAssertEqual(UpperLimits(idle: .milliseconds(250), maxPending: 7).maxPending, 7)
        XCTAssertNotEqual(UpperLimits(idle: .seconds(1), maxPending: 7), UpperLimits(idle: .seconds(1), maxPending: 8))
        XCTAssertEqual(UpperSession(limits: upperTestLimits).limits, upperTestLimits)
    }

    func testFreshSessionIsEmptyAndOpen() {
        let session = UpperSession(limits: upperTestLimits)
        XCTAssertNil(session.outcome)
        assertUpperCounts(session, received: 0, sent: 0)
    }

    // MARK: Rule 1: accept

    func testAcceptedArmsTheIdleDeadline() {
        for acceptedAt in [Instant.zero, origin, Instant(nanoseconds: -5), Instant(nanoseconds: 1)] {
            var session = UpperSession(limits: upperTestLimits)
            XCTAssertEqual(
                session.accepted(now: acceptedAt),
                .armTimer(deadline: Instant(nanoseconds: acceptedAt.nanoseconds + 30 * nanosecondsPerSecond)))
            XCTAssertNil(session.outcome)
            assertUpperCounts(session, received: 0, sent: 0)
        }
        var session = UpperSession(limits: UpperLimits(idle: .milliseconds(1_500), maxPending: 1))
        XCTAssertEqual(session.accepted(now: origin), .armTimer(deadline: ms(1_500)))
    }

    func testAcceptedDeadlineSaturatesInsteadOfWrapping() {
        var session = UpperSession(limits: upperTestLimits)
        let late = Instant(nanoseconds: .max - 5)
        XCTAssertEqual(session.accepted(now: late), .armTimer(deadline: Instant(nanoseconds: .max)))
        // Early fire: not yet idle.
        XCTAssertEqual(session.timerFired(now: Instant(nanoseconds: .max - 1)), .armTimer(deadline: Instant(nanoseconds: .max)))
        XCTAssertNil(session.outcome)
    }

    func testAcceptedTwiceIsIgnored() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.received(4, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.accepted(now: sec(100)), .wait)
        assertUpperCounts(session, received: 4, sent: 0)
        XCTAssertNil(session.outcome)
        // The second accept did not move the deadline to sec(130).
        XCTAssertEqual(session.timerFired(now: sec(30)), .armTimer(deadline: sec(31)))
        XCTAssertEqual(session.timerFired(now: sec(31)), .close(.idleTimedOut(received: 4, sent: 0)))
    }

    func testEventsBeforeAcceptAreIgnored() {
        var session = UpperSession(limits: upperTestLimits)
        XCTAssertEqual(session.received(5, now: sec(1)), .wait)
        XCTAssertEqual(session.wrote(3, now: sec(2)), .wait)
        XCTAssertEqual(session.becameWritable(now: sec(3)), .wait)
        XCTAssertEqual(session.timerFired(now: sec(4)), .wait)
        XCTAssertEqual(session.inputEnded(now: sec(5)), .wait)
        XCTAssertNil(session.outcome)
        assertUpperCounts(session, received: 0, sent: 0)
        // The early EOF was not recorded: input is still open after accept.
        XCTAssertEqual(session.accepted(now: sec(10)), .armTimer(deadline: sec(40)))
        XCTAssertEqual(session.received(5, now: sec(11)), .queueAndSend)
        XCTAssertEqual(session.wrote(5, now: sec(12)), .wait)
        assertUpperCounts(session, received: 5, sent: 5)
    }

    /// Failures are not gated on accept (as in `SixteenSession`): the session
    /// closes at once with zero counts, and a later accept is ignored.
    func testFailuresBeforeAcceptCloseTheSession() {
        var reset = UpperSession(limits: upperTestLimits)
        XCTAssertEqual(reset.connectionFailed(), .close(.reset(received: 0, sent: 0)))
        XCTAssertEqual(reset.accepted(now: origin), .wait)
        XCTAssertEqual(reset.outcome, .reset(received: 0, sent: 0))

        var storage = UpperSession(limits: upperTestLimits)
        XCTAssertEqual(storage.storageFailed(), .close(.storageFailed(received: 0, sent: 0)))
        XCTAssertEqual(storage.accepted(now: origin), .wait)
        XCTAssertEqual(storage.outcome, .storageFailed(received: 0, sent: 0))
    }

    // MARK: Rules 1-3: any split of the stream, interleaved with partial writes

    /// All 2^11 ways of cutting 12 octets into consecutive non-empty reads
    /// (bit `i` of `mask`: cut after octet `i + 1`), each run twice: once with
    /// a partial write after every read, once with nothing written until EOF
    /// and the output then drained in the same pieces, last first.
    func testEveryCompositionOfTwelveOctets() {
        let total = 12
        for mask in 0..<(1 << (total - 1)) {
            var pieces: [Int] = []
            var run = 1
            for bit in 0..<(total - 1) {
                if mask & (1 << bit) != 0 {
                    pieces.append(run)
                    run = 1
                } else {
                    run += 1
                }
            }
            pieces.append(run)
            XCTAssertEqual(pieces.reduce(0, +), total)

            var interleaved = UpperDriver(label: "mask \(mask) interleaved")
            for (index, piece) in pieces.enumerated() {
                interleaved.read(piece)
                switch (index + mask) % 4 {
                case 0: break
                case 1: interleaved.write(0)
                case 2: interleaved.write(interleaved.pending / 2)
                default: interleaved.write(interleaved.pending)
                }
            }
            interleaved.end()
            while !interleaved.closed {
                interleaved.write(min(interleaved.pending, 1 + mask % 3))
            }
            XCTAssertEqual(interleaved.session.outcome, .completed(echoed: total))

            var afterEOF = UpperDriver(label: "mask \(mask) after EOF")
            for piece in pieces { afterEOF.read(piece) }
            afterEOF.end()
            for piece in pieces.reversed() { afterEOF.write(piece) }
            XCTAssertTrue(afterEOF.closed)
            XCTAssertEqual(afterEOF.session.outcome, .completed(echoed: total))
        }
    }

    /// Random streams cut at random, writes of random size (zero included)
    /// between reads, EOF either with output pending or after it drained.
    func testRandomSplitsWithPartialWrites() {
        var random = UpperSplitMix64(seed: 0x5eed_0f_0cc7e7)
        var endedWithOutputPending = 0
        var endedDrained = 0
        for trial in 0..<400 {
            let total = random.next(in: 1...5_000)
            var driver = UpperDriver(label: "trial \(trial), \(total) octets")
            while driver.received < total {
                driver.read(random.next(in: 1...min(total - driver.received, 700)))
                if random.next(in: 0...2) > 0 {
                    driver.write(random.next(in: 0...driver.pending))
                }
            }
            if random.nextBool() {
                driver.write(driver.pending)
                XCTAssertEqual(driver.session.becameWritable(now: sec(9_999)), .wait)
                endedDrained += 1
            } else if driver.pending > 0 {
                XCTAssertEqual(driver.session.becameWritable(now: sec(9_999)), .send)
                endedWithOutputPending += 1
            }
            driver.end()
            while !driver.closed {
                driver.write(random.next(in: 0...driver.pending))
            }
            XCTAssertEqual(driver.session.outcome, .completed(echoed: total))
            assertUpperCounts(driver.session, received: total, sent: total)
        }
        // Both EOF paths were actually exercised.
        XCTAssertGreaterThan(endedWithOutputPending, 50)
        XCTAssertGreaterThan(endedDrained, 50)
    }

    func testWroteIsClampedToWhatIsPending() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.received(5, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.wrote(-4, now: sec(2)), .send)
        assertUpperCounts(session, received: 5, sent: 0)
        XCTAssertEqual(session.wrote(9, now: sec(3)), .wait)
        assertUpperCounts(session, received: 5, sent: 5)
        XCTAssertEqual(session.wrote(1, now: sec(4)), .wait)
        assertUpperCounts(session, received: 5, sent: 5)
    }

    func testReadsOfZeroOrNegativeCountsAreIgnored() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.received(0, now: sec(10)), .wait)
        XCTAssertEqual(session.received(-3, now: sec(20)), .wait)
        assertUpperCounts(session, received: 0, sent: 0)
        // Neither counted as activity: the deadline is still accept + 30 s.
        XCTAssertEqual(session.timerFired(now: sec(30)), .close(.idleTimedOut(received: 0, sent: 0)))
    }

    // MARK: Rule 5: EOF

    func testEOFWithOutputPendingClosesOnTheLastWrite() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.received(10, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.wrote(4, now: sec(2)), .send)
        XCTAssertEqual(session.inputEnded(now: sec(3)), .send)
        XCTAssertNil(session.outcome)
        XCTAssertEqual(session.wrote(5, now: sec(4)), .send)
        XCTAssertNil(session.outcome)
        XCTAssertEqual(session.wrote(1, now: sec(5)), .close(.completed(echoed: 10)))
        XCTAssertEqual(session.outcome, .completed(echoed: 10))
        assertUpperCounts(session, received: 10, sent: 10)
    }

    func testEOFWithNothingPendingClosesAtOnce() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.received(10, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.wrote(10, now: sec(2)), .wait)
        XCTAssertNil(session.outcome)
        XCTAssertEqual(session.inputEnded(now: sec(3)), .close(.completed(echoed: 10)))
        XCTAssertEqual(session.outcome, .completed(echoed: 10))
    }

    func testEOFBeforeAnyOctetCompletesWithNothingEchoed() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.inputEnded(now: sec(1)), .close(.completed(echoed: 0)))
        XCTAssertEqual(session.outcome, .completed(echoed: 0))
        assertUpperCounts(session, received: 0, sent: 0)
    }

    func testReadsAndEOFAfterEOFAreIgnored() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.received(5, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.inputEnded(now: sec(2)), .send)
        XCTAssertEqual(session.received(3, now: sec(3)), .wait)
        XCTAssertEqual(session.inputEnded(now: sec(4)), .wait)
        assertUpperCounts(session, received: 5, sent: 0)
        XCTAssertNil(session.outcome)
        XCTAssertEqual(session.wrote(5, now: sec(5)), .close(.completed(echoed: 5)))
    }

    // MARK: Rule 4: the ceiling

    func testPendingExactlyAtTheCeilingIsAllowed() {
        var session = acceptedUpperSession(limits: UpperLimits(idle: .seconds(30), maxPending: 100))
        XCTAssertEqual(session.received(60, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.received(40, now: sec(2)), .queueAndSend)
        XCTAssertNil(session.outcome)
        assertUpperCounts(session, received: 100, sent: 0)
        // One more octet closes, and is not counted.
        XCTAssertEqual(session.received(1, now: sec(3)), .close(.overflowed(pending: 101)))
        XCTAssertEqual(session.outcome, .overflowed(pending: 101))
        assertUpperCounts(session, received: 100, sent: 0)
    }

    func testOneReadPastTheCeilingIsNotCounted() {
        var fresh = acceptedUpperSession(limits: UpperLimits(idle: .seconds(30), maxPending: 100))
        XCTAssertEqual(fresh.received(101, now: sec(1)), .close(.overflowed(pending: 101)))
        assertUpperCounts(fresh, received: 0, sent: 0)

        var partial = acceptedUpperSession(limits: UpperLimits(idle: .seconds(30), maxPending: 100))
        XCTAssertEqual(partial.received(90, now: sec(1)), .queueAndSend)
        XCTAssertEqual(partial.wrote(20, now: sec(2)), .send)
        XCTAssertEqual(partial.received(50, now: sec(3)), .close(.overflowed(pending: 120)))
        XCTAssertEqual(partial.outcome, .overflowed(pending: 120))
        assertUpperCounts(partial, received: 90, sent: 20)
    }

    func testZeroCeilingOverflowsOnTheFirstOctet() {
        var session = acceptedUpperSession(limits: UpperLimits(idle: .seconds(30), maxPending: 0))
        XCTAssertEqual(session.received(1, now: sec(1)), .close(.overflowed(pending: 1)))
        assertUpperCounts(session, received: 0, sent: 0)
    }

    func testDrainingMakesRoomAgain() {
        var session = acceptedUpperSession(limits: UpperLimits(idle: .seconds(30), maxPending: 100))
        XCTAssertEqual(session.received(100, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.wrote(30, now: sec(2)), .send)
        XCTAssertEqual(session.received(30, now: sec(3)), .queueAndSend)
        assertUpperCounts(session, received: 130, sent: 30)
        XCTAssertEqual(session.received(1, now: sec(4)), .close(.overflowed(pending: 101)))
        assertUpperCounts(session, received: 130, sent: 30)
    }

    /// The ceiling bounds pending output, not the stream: ten times the
    /// ceiling flows through when it is written back as it comes.
    func testTheCeilingBoundsPendingNotTotal() {
        var session = acceptedUpperSession(limits: UpperLimits(idle: .seconds(30), maxPending: 100))
        for step in 0..<10 {
            XCTAssertEqual(session.received(100, now: ms(Int64(step) * 10 + 1)), .queueAndSend)
            XCTAssertEqual(session.wrote(100, now: ms(Int64(step) * 10 + 2)), .wait)
        }
        XCTAssertEqual(session.inputEnded(now: sec(1)), .close(.completed(echoed: 1_000)))
    }

    // MARK: Rule 6: idleness

    func testEarlyFiresWithoutActivityRearmTheSameDeadline() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.timerFired(now: sec(10)), .armTimer(deadline: sec(30)))
        XCTAssertEqual(session.timerFired(now: offset(sec(30), nanoseconds: -1)), .armTimer(deadline: sec(30)))
        XCTAssertNil(session.outcome)
        XCTAssertEqual(session.timerFired(now: sec(30)), .close(.idleTimedOut(received: 0, sent: 0)))
        XCTAssertEqual(session.outcome, .idleTimedOut(received: 0, sent: 0))
    }

    func testLateFireClosesAsIdle() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.received(7, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.wrote(2, now: sec(2)), .send)
        XCTAssertEqual(session.timerFired(now: sec(1_000)), .close(.idleTimedOut(received: 7, sent: 2)))
    }

    /// Activity answers with its own action, never with `armTimer`: the timer
    /// is re-armed only when it fires early, at last activity + idle.
    func testActivityMovesTheDeadlineWithoutRearming() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.received(5, now: sec(5)), .queueAndSend)
        XCTAssertEqual(session.wrote(2, now: sec(12)), .send)
        XCTAssertEqual(session.timerFired(now: sec(30)), .armTimer(deadline: sec(42)))
        XCTAssertEqual(session.timerFired(now: offset(sec(42), nanoseconds: -1)), .armTimer(deadline: sec(42)))
        XCTAssertEqual(session.timerFired(now: sec(42)), .close(.idleTimedOut(received: 5, sent: 2)))
    }

    func testEachKindOfActivityMovesTheDeadline() {
        var afterRead = acceptedUpperSession()
        XCTAssertEqual(afterRead.received(1, now: ms(17_250)), .queueAndSend)
        XCTAssertEqual(afterRead.timerFired(now: sec(30)), .armTimer(deadline: ms(47_250)))

        var afterWrite = acceptedUpperSession()
        XCTAssertEqual(afterWrite.received(2, now: sec(1)), .queueAndSend)
        XCTAssertEqual(afterWrite.wrote(1, now: ms(20_500)), .send)
        XCTAssertEqual(afterWrite.timerFired(now: sec(31)), .armTimer(deadline: ms(50_500)))

        var afterEOF = acceptedUpperSession()
        XCTAssertEqual(afterEOF.received(5, now: sec(1)), .queueAndSend)
        XCTAssertEqual(afterEOF.inputEnded(now: sec(20)), .send)
        XCTAssertEqual(afterEOF.timerFired(now: sec(31)), .armTimer(deadline: sec(50)))
        XCTAssertEqual(afterEOF.timerFired(now: sec(50)), .close(.idleTimedOut(received: 5, sent: 0)))
    }

    /// Events that move no octet leave the deadline where it was.
    func testEventsThatMoveNothingAreNotActivity() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.received(5, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.wrote(0, now: sec(20)), .send)
        XCTAssertEqual(session.becameWritable(now: sec(25)), .send)
        XCTAssertEqual(session.timerFired(now: sec(29)), .armTimer(deadline: sec(31)))
        XCTAssertEqual(session.timerFired(now: sec(31)), .close(.idleTimedOut(received: 5, sent: 0)))

        // A write reported while nothing is pending takes nothing.
        var drained = acceptedUpperSession()
        XCTAssertEqual(drained.received(5, now: sec(1)), .queueAndSend)
        XCTAssertEqual(drained.wrote(5, now: sec(2)), .wait)
        XCTAssertEqual(drained.wrote(3, now: sec(20)), .wait)
        XCTAssertEqual(drained.timerFired(now: sec(32)), .close(.idleTimedOut(received: 5, sent: 5)))
    }

    /// Output stuck behind a client that does not read is idleness too.
    func testIdleWithOutputPending() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.received(800, now: sec(3)), .queueAndSend)
        XCTAssertEqual(session.wrote(300, now: sec(4)), .send)
        XCTAssertEqual(session.timerFired(now: sec(33)), .armTimer(deadline: sec(34)))
        XCTAssertEqual(session.timerFired(now: sec(34)), .close(.idleTimedOut(received: 800, sent: 300)))
    }

    func testSubSecondIdleIsExactToTheNanosecond() {
        var session = acceptedUpperSession(limits: UpperLimits(idle: .milliseconds(1_500), maxPending: 10), at: origin)
        XCTAssertEqual(session.received(1, now: ms(1_000)), .queueAndSend)
        XCTAssertEqual(session.timerFired(now: ms(1_500)), .armTimer(deadline: ms(2_500)))
        XCTAssertEqual(session.timerFired(now: offset(ms(2_500), nanoseconds: -1)), .armTimer(deadline: ms(2_500)))
        XCTAssertEqual(session.timerFired(now: ms(2_500)), .close(.idleTimedOut(received: 1, sent: 0)))
    }

    // MARK: Rule 7 and storage failures

    func testConnectionFailureIsAResetWithTheCounts() {
        var fresh = acceptedUpperSession()
        XCTAssertEqual(fresh.connectionFailed(), .close(.reset(received: 0, sent: 0)))
        XCTAssertEqual(fresh.outcome, .reset(received: 0, sent: 0))

        var midway = acceptedUpperSession()
        XCTAssertEqual(midway.received(7, now: sec(1)), .queueAndSend)
        XCTAssertEqual(midway.wrote(3, now: sec(2)), .send)
        XCTAssertEqual(midway.connectionFailed(), .close(.reset(received: 7, sent: 3)))
        XCTAssertEqual(midway.outcome, .reset(received: 7, sent: 3))

        var afterEOF = acceptedUpperSession()
        XCTAssertEqual(afterEOF.received(9, now: sec(1)), .queueAndSend)
        XCTAssertEqual(afterEOF.inputEnded(now: sec(2)), .send)
        XCTAssertEqual(afterEOF.connectionFailed(), .close(.reset(received: 9, sent: 0)))
    }

    func testStorageFailureClosesWithTheCounts() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.received(12, now: sec(1)), .queueAndSend)
        XCTAssertEqual(session.wrote(5, now: sec(2)), .send)
        XCTAssertEqual(session.received(8, now: sec(3)), .queueAndSend)
        XCTAssertEqual(session.storageFailed(), .close(.storageFailed(received: 20, sent: 5)))
        XCTAssertEqual(session.outcome, .storageFailed(received: 20, sent: 5))
    }

    func testBecameWritableSendsOnlyWithOutputPending() {
        var session = acceptedUpperSession()
        XCTAssertEqual(session.becameWritable(now: sec(1)), .wait)
        XCTAssertEqual(session.received(3, now: sec(2)), .queueAndSend)
        XCTAssertEqual(session.becameWritable(now: sec(3)), .send)
        XCTAssertEqual(session.becameWritable(now: sec(4)), .send)
        assertUpperCounts(session, received: 3, sent: 0)
        XCTAssertEqual(session.wrote(3, now: sec(5)), .wait)
        XCTAssertEqual(session.becameWritable(now: sec(6)), .wait)
        XCTAssertNil(session.outcome)
    }

    // MARK: Rule 8: closed sessions ignore everything

    func testClosedSessionsIgnoreEveryEvent() {
        var completed = acceptedUpperSession()
        _ = completed.received(4, now: sec(1))
        _ = completed.wrote(4, now: sec(2))
        _ = completed.inputEnded(now: sec(3))

        var overflowed = acceptedUpperSession(limits: UpperLimits(idle: .seconds(30), maxPending: 10))
        _ = overflowed.received(6, now: sec(1))
        _ = overflowed.received(6, now: sec(2))

        var idle = acceptedUpperSession()
        _ = idle.received(6, now: sec(1))
        _ = idle.timerFired(now: sec(31))

        var reset = acceptedUpperSession()
        _ = reset.received(6, now: sec(1))
        _ = reset.connectionFailed()

        var storage = acceptedUpperSession()
        _ = storage.received(6, now: sec(1))
        _ = storage.storageFailed()

        let cases: [(UpperSession, UpperOutcome, received: Int, sent: Int)] = [
            (completed, .completed(echoed: 4), 4, 4),
            (overflowed, .overflowed(pending: 12), 6, 0),
            (idle, .idleTimedOut(received: 6, sent: 0), 6, 0),
            (reset, .reset(received: 6, sent: 0), 6, 0),
            (storage, .storageFailed(received: 6, sent: 0), 6, 0),
        ]
        for (closed, outcome, received, sent) in cases {
            var session = closed
            XCTAssertEqual(session.outcome, outcome)
            XCTAssertEqual(session.accepted(now: sec(100)), .wait, "\(outcome)")
            XCTAssertEqual(session.received(1, now: sec(101)), .wait, "\(outcome)")
            XCTAssertEqual(session.wrote(1, now: sec(102)), .wait, "\(outcome)")
            XCTAssertEqual(session.becameWritable(now: sec(103)), .wait, "\(outcome)")
            XCTAssertEqual(session.inputEnded(now: sec(104)), .wait, "\(outcome)")
            XCTAssertEqual(session.timerFired(now: sec(1_000)), .wait, "\(outcome)")
            XCTAssertEqual(session.connectionFailed(), .wait, "\(outcome)")
            XCTAssertEqual(session.storageFailed(), .wait, "\(outcome)")
            XCTAssertEqual(session.outcome, outcome)
            assertUpperCounts(session, received: received, sent: sent)
        }
    }

    // MARK: uppercaseASCII

    func testUppercaseEveryOctetValue() {
        var octets = (0...255).map { UInt8($0) }
        octets.withUnsafeMutableBytes { uppercaseASCII($0) }
        for value in 0...255 {
            let expected = (0x61...0x7a).contains(value) ? value - 0x20 : value
            XCTAssertEqual(Int(octets[value]), expected, "octet \(value)")
        }
    }

    func testUppercaseTheBooksMessage() {
        var message = Array("capitalize this!".utf8)
        message.withUnsafeMutableBytes { uppercaseASCII($0) }
        XCTAssertEqual(message, Array("CAPITALIZE THIS!".utf8))

        var mixed = Array("Hi there, server 0123 ~`@[{ \u{e9}".utf8)
        mixed.withUnsafeMutableBytes { uppercaseASCII($0) }
        XCTAssertEqual(mixed, Array("HI THERE, SERVER 0123 ~`@[{ \u{e9}".utf8))
    }

    func testUppercaseEmptyBuffers() {
        uppercaseASCII(UnsafeMutableRawBufferPointer(start: nil, count: 0))
        var empty: [UInt8] = []
        empty.withUnsafeMutableBytes { uppercaseASCII($0) }
        XCTAssertEqual(empty, [])
    }

    func testUppercaseTouchesOnlyItsBuffer() {
        var octets = Array("abcdefgh".utf8)
        octets.withUnsafeMutableBytes { bytes in
            uppercaseASCII(UnsafeMutableRawBufferPointer(rebasing: bytes[2..<5]))
        }
        XCTAssertEqual(octets, Array("abCDEfgh".utf8))
    }
}
