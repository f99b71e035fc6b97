import SixteenProtocol
import TestSupport
import XCTest

// Helpers for the `upper` session tests: a deterministic PRNG, the limits the
// tests use, and a driver that runs a session next to a trivial model
// (received and sent counters) and checks every action against it.

typealias UpperSplitMix64 = SplitMix64

/// 30 s of idleness, at most 1 000 octets pending.
let upperTestLimits = UpperLimits(idle: .seconds(30), maxPending: 1_000)

/// A session accepted at `at` (default `sec(0)`), its timer armed at `at + idle`.
func acceptedUpperSession(
    limits: UpperLimits = upperTestLimits, at acceptedAt: Instant = sec(0),
    file: StaticString = #filePath, line: UInt = #line
) -> UpperSession {
    var session = UpperSession(limits: limits)
    XCTAssertEqual(session.accepted(now: acceptedAt), .armTimer(deadline: acceptedAt + limits.idle), file: file, line: line)
    return session
}

/// Checks the three counters at once, and that they agree with each other.
func assertUpperCounts(
    _ session: UpperSession, received: Int, sent: Int,
    file: StaticString = #filePath, line: UInt = #line
) {
    XCTAssertEqual(session.octetsReceived, received, "octetsReceived", file: file, line: line)
    XCTAssertEqual(session.octetsSent, sent, "octetsSent", file: file, line: line)
    XCTAssertEqual(session.pending, received - sent, "pending", file: file, line: line)
    XCTAssertEqual(session.pending, session.octetsReceived - session.octetsSent, "pending vs counters", file: file, line: line)
}

/// Drives an accepted session with a model of what it must answer. The clock
/// advances one millisecond per event, so no timer ever matters here.
struct UpperDriver {
    var session: UpperSession
    private(set) var received = 0
    private(set) var sent = 0
    private(set) var ended = false
    private(set) var closed = false
    private var clock: Int64 = 0
    /// What the steps were, for failure messages.
    let label: String

    init(label: String, limits: UpperLimits = UpperLimits(idle: .seconds(3_600), maxPending: 1 << 40)) {
        self.label = label
        session = acceptedUpperSession(limits: limits, at: ms(0))
    }

    var pending: Int { received - sent }

    private mutating func tick() -> Instant {
        clock += 1
        return ms(clock)
    }

    /// Reports `count` (> 0) octets read: always `.queueAndSend` below the ceiling.
    mutating func read(_ count: Int, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(session.received(count, now: tick()), .queueAndSend, "\(label): read \(count)", file: file, line: line)
        received += count
        check(file: file, line: line)
    }

    /// Reports a write of `count` (0...pending) octets.
    mutating func write(_ count: Int, file: StaticString = #filePath, line: UInt = #line) {
        precondition(count >= 0 && count <= pending, "bad test script")
        let expected: UpperAction
        if pending - count > 0 {
            expected = .send
        } else if ended {
            expected = .close(.completed(echoed: received))
            closed = true
        } else {
            expected = .wait
        }
        XCTAssertEqual(session.wrote(count, now: tick()), expected, "\(label): wrote \(count) of \(pending)", file: file, line: line)
        sent += count
        check(file: file, line: line)
    }

    /// Reports the client's EOF: `.send` with output pending, else the close.
    mutating func end(file: StaticString = #filePath, line: UInt = #line) {
        let expected: UpperAction = pending > 0 ? .send : .close(.completed(echoed: received))
        XCTAssertEqual(session.inputEnded(now: tick()), expected, "\(label): EOF with \(pending) pending", file: file, line: line)
        ended = true
        closed = pending == 0
        check(file: file, line: line)
    }

    func check(file: StaticString = #filePath, line: UInt = #line) {
        assertUpperCounts(session, received: received, sent: sent, file: file, line: line)
        XCTAssertEqual(session.outcome, closed ? .completed(echoed: received) : nil, "\(label): outcome", file: file, line: line)
    }
}
