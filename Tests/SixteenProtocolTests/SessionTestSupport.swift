import SixteenProtocol
import XCTest

// Helpers shared by the session tests: a hand-driven clock, a way to feed
// arrays to `received(_:now:)`, sessions driven into each state, and a
// "fingerprint" that observes a session's whole state from outside.

/// The timeouts every test uses: 10 s for the request, 2 s for the reply and the linger.
let testTimeouts = SixteenTimeouts(request: .seconds(10), linger: .seconds(2))

let nanosecondsPerSecond: Int64 = 1_000_000_000
let nanosecondsPerMillisecond: Int64 = 1_000_000

/// An arbitrary, non-zero origin for the hand-driven clock, so that a
/// deadline computed from the wrong instant (or from `.zero`) shows up.
let origin = Instant(nanoseconds: 7_000 * nanosecondsPerSecond + 123)

/// `origin` plus `milliseconds`.
func ms(_ milliseconds: Int64) -> Instant {
    Instant(nanoseconds: origin.nanoseconds + milliseconds * nanosecondsPerMillisecond)
}

/// `origin` plus `seconds`.
func sec(_ seconds: Int64) -> Instant {
    Instant(nanoseconds: origin.nanoseconds + seconds * nanosecondsPerSecond)
}

/// `instant` plus `nanoseconds`.
func offset(_ instant: Instant, nanoseconds: Int64) -> Instant {
    Instant(nanoseconds: instant.nanoseconds + nanoseconds)
}

/// A fixed "now" for probing copies of a session.
let probeTime = Instant(nanoseconds: 424_242)

extension SixteenSession {
    /// Reports `octets` (at least one) as one read.
    mutating func feed(_ octets: [UInt8], now: Instant) -> SixteenAction {
        octets.withUnsafeBytes { received($0, now: now) }
    }

    /// Reports `octets` (at least one) as one read.
    mutating func feed(_ octets: ArraySlice<UInt8>, now: Instant) -> SixteenAction {
        octets.withUnsafeBytes { received($0, now: now) }
    }
}

/// Everything a session's state shows to the outside, gathered by running
/// each event on its own copy (the session is a value type). Two sessions
/// with equal fingerprints behave alike for every event tested here:
///
/// - `earlyTimer` reveals the armed deadline of any live state,
/// - `writable` the reply offset and deadline while sending,
/// - `wroteAll` whether the peer already finished (close vs. linger),
/// - `eof`, `failed` and `accept` the state's kind.
struct Fingerprint: Equatable, CustomStringConvertible {
    var outcome: SixteenOutcome?
    var request: [UInt8]
    var requestReceived: Int
    var earlyTimer: SixteenAction
    var writable: SixteenAction
    var wroteAll: SixteenAction
    var eof: SixteenAction
    var failed: SixteenAction
    var accept: SixteenAction

    init(_ session: SixteenSession) {
        outcome = session.outcome
        request = session.request
        requestReceived = session.requestReceived
        var copy = session
        earlyTimer = copy.timerFired(now: Instant(nanoseconds: .min))
        copy = session
        writable = copy.becameWritable(now: probeTime)
        copy = session
        wroteAll = copy.wrote(SixteenSession.requestLength, now: probeTime)
        copy = session
        eof = copy.inputEnded(now: probeTime)
        copy = session
        failed = copy.connectionFailed()
        copy = session
        accept = copy.accepted(now: probeTime)
    }

    var description: String {
        "Fingerprint(outcome: \(String(describing: outcome)), request: \(request), received: \(requestReceived), "
            + "earlyTimer: \(earlyTimer), writable: \(writable), wroteAll: \(wroteAll), eof: \(eof), "
            + "failed: \(failed), accept: \(accept))"
    }
}

/// Sessions driven into each state, with the instants used, so tests can
/// check deadlines.
enum Drive {
    static let acceptedAt = sec(0)
    static let requestDeadline = sec(10)
    /// When the 16th octet arrives in `sending`/`lingering`.
    static let requestCompletedAt = ms(3_250)
    static let replyDeadline = ms(5_250)
    /// When the last reply octet is written in `lingering`.
    static let replyWrittenAt = ms(4_100)
    static let lingerDeadline = ms(6_100)

    /// Accepted at `acceptedAt`, with the first `received` request octets in (one read, unless zero).
    static func awaiting(received: Int, file: StaticString = #filePath, line: UInt = #line) -> SixteenSession {
        var session = SixteenSession(timeouts: testTimeouts)
        XCTAssertEqual(session.accepted(now: acceptedAt), .armTimer(deadline: requestDeadline), file: file, line: line)
        if received > 0 {
            XCTAssertEqual(session.feed(sixteenRequest[0..<received], now: ms(1_000)), .wait, file: file, line: line)
        }
        XCTAssertEqual(session.requestReceived, received, file: file, line: line)
        return session
    }

    /// The request complete at `requestCompletedAt`, `sent` reply octets written, the peer
    /// finished (EOF seen) or not.
    static func sending(sent: Int, peerFinished: Bool = false, file: StaticString = #filePath, line: UInt = #line)
        -> SixteenSession
    {
        var session = awaiting(received: 0, file: file, line: line)
        XCTAssertEqual(
            session.feed(sixteenRequest, now: requestCompletedAt),
            .writeReply(offset: 0, deadline: replyDeadline), file: file, line: line)
        if peerFinished {
            XCTAssertEqual(session.inputEnded(now: ms(3_300)), .wait, file: file, line: line)
        }
        if sent > 0 {
            XCTAssertEqual(
                session.wrote(sent, now: ms(3_500)),
                .writeReply(offset: sent, deadline: replyDeadline), file: file, line: line)
        }
        return session
    }

    /// The reply completely written at `replyWrittenAt` without EOF from the peer.
    static func lingering(file: StaticString = #filePath, line: UInt = #line) -> SixteenSession {
        var session = sending(sent: 0, file: file, line: line)
        XCTAssertEqual(
            session.wrote(16, now: replyWrittenAt),
            .shutDownAndLinger(deadline: lingerDeadline), file: file, line: line)
        return session
    }
}
