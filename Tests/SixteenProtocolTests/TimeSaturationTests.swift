import SixteenProtocol
import XCTest

/// Time at the edges of the 64-bit nanosecond range (about 292 years): durations
/// and deadlines saturate instead of wrapping, so a huge timeout never turns
/// into a deadline in the past.
final class TimeSaturationTests: XCTestCase {

    /// `Duration.nanoseconds` saturates. A duration
    /// whose whole seconds fit (seconds * 1e9 does not overflow) while the
    /// sub-second part pushes the total past `Int64.max` wraps around to a
    /// large negative value if added naively, and likewise at the negative end.
    func testDurationNanosecondsSaturatesAtTheEdge() {
        XCTAssertEqual((Duration.nanoseconds(Int64.max) + .nanoseconds(1)).nanoseconds, .max)
        XCTAssertEqual(
            Duration(secondsComponent: 9_223_372_036, attosecondsComponent: 900_000_000_000_000_000).nanoseconds, .max)
        XCTAssertEqual((Duration.nanoseconds(Int64.min) - .nanoseconds(1)).nanoseconds, .min)
    }

    /// `Instant + Duration` saturates, so a deadline far in the future stays there.
    func testAddingAHugeDurationDoesNotGoBackInTime() {
        let now = Instant(nanoseconds: 1_000)
        XCTAssertGreaterThan(now + .seconds(Int64.max), now)
        XCTAssertGreaterThan(now + .nanoseconds(Int64.max), now)
    }

    /// Consequence for the state machine (rules 1 and 8): a very long request
    /// timeout must not end the session at the first timer event.
    func testHugeRequestTimeoutDoesNotExpireImmediately() {
        var session = SixteenSession(timeouts: SixteenTimeouts(request: .seconds(Int64.max), linger: .seconds(2)))
        let acceptedAt = Instant(nanoseconds: 7_000_000_000_000)
        guard case .armTimer(let deadline) = session.accepted(now: acceptedAt) else {
            return XCTFail("accepted did not arm the timer")
        }
        XCTAssertGreaterThan(deadline, acceptedAt)
        let anHourLater = Instant(nanoseconds: acceptedAt.nanoseconds + 3_600_000_000_000)
        XCTAssertEqual(session.timerFired(now: anHourLater), .armTimer(deadline: deadline))
        XCTAssertNil(session.outcome)
    }

    /// The same for the reply deadline (rules 3 and 8) with a very long linger timeout.
    func testHugeLingerTimeoutDoesNotExpireImmediately() {
        var session = SixteenSession(timeouts: SixteenTimeouts(request: .seconds(10), linger: .seconds(Int64.max)))
        let acceptedAt = Instant(nanoseconds: 7_000_000_000_000)
        _ = session.accepted(now: acceptedAt)
        let completedAt = Instant(nanoseconds: acceptedAt.nanoseconds + 1_000_000_000)
        guard case .writeReply(0, let deadline) = sixteenRequest.withUnsafeBytes({ session.received($0, now: completedAt) })
        else { return XCTFail("the request did not start the reply") }
        XCTAssertGreaterThan(deadline, completedAt)
        let aSecondLater = Instant(nanoseconds: completedAt.nanoseconds + 1_000_000_000)
        XCTAssertEqual(session.timerFired(now: aSecondLater), .armTimer(deadline: deadline))
        XCTAssertNil(session.outcome)
    }
}
