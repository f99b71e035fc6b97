import SixteenProtocol
import XCTest

final class InstantTests: XCTestCase {

    func testInitAndZero() {
        XCTAssertEqual(Instant(nanoseconds: 42).nanoseconds, 42)
        XCTAssertEqual(Instant(nanoseconds: -42).nanoseconds, -42)
        XCTAssertEqual(Instant.zero.nanoseconds, 0)
        XCTAssertEqual(Instant.zero, Instant(nanoseconds: 0))
        var instant = Instant(nanoseconds: 1)
        instant.nanoseconds = 5
        XCTAssertEqual(instant, Instant(nanoseconds: 5))
    }

    func testComparison() {
        let a = Instant(nanoseconds: -1)
        let b = Instant(nanoseconds: 0)
        let c = Instant(nanoseconds: 1)
        XCTAssertLessThan(a, b)
        XCTAssertLessThan(b, c)
        XCTAssertFalse(c < c)
        XCTAssertLessThanOrEqual(c, c)
        XCTAssertGreaterThan(c, a)
        XCTAssertEqual([c, a, b].sorted(), [a, b, c])
        XCTAssertLessThan(Instant(nanoseconds: .min), Instant(nanoseconds: .max))
        XCTAssertNotEqual(a, c)
    }

    func testHashable() {
        let set: Set<Instant> = [Instant(nanoseconds: 1), Instant(nanoseconds: 1), Instant(nanoseconds: 2)]
        XCTAssertEqual(set.count, 2)
        XCTAssertTrue(set.contains(Instant(nanoseconds: 2)))
    }

    func testAddingDurations() {
        let t = Instant(nanoseconds: 1_000)
        XCTAssertEqual(t + .seconds(10), Instant(nanoseconds: 10_000_001_000))
        XCTAssertEqual(t + .seconds(2), Instant(nanoseconds: 2_000_001_000))
        XCTAssertEqual(t + .milliseconds(1_500), Instant(nanoseconds: 1_500_001_000))
        XCTAssertEqual(t + .microseconds(3), Instant(nanoseconds: 4_000))
        XCTAssertEqual(t + .nanoseconds(1), Instant(nanoseconds: 1_001))
        XCTAssertEqual(t + .zero, t)
        XCTAssertEqual(t + .nanoseconds(-1_000), .zero)
        XCTAssertEqual(t + .seconds(-1), Instant(nanoseconds: -999_999_000))
        XCTAssertEqual(t + .seconds(1.25), Instant(nanoseconds: 1_250_001_000))
        XCTAssertEqual((t + .seconds(1)) + .seconds(1), t + .seconds(2))
        XCTAssertEqual(Instant(nanoseconds: .max - 5) + .nanoseconds(5), Instant(nanoseconds: .max))
        XCTAssertEqual(Instant(nanoseconds: .min + 5) + .nanoseconds(-5), Instant(nanoseconds: .min))
    }

    func testSecondsUntil() {
        let t = Instant(nanoseconds: 5_000_000_000)
        XCTAssertEqual(t.seconds(until: Instant(nanoseconds: 7_500_000_000)), 2.5)
        XCTAssertEqual(t.seconds(until: t), 0)
        XCTAssertEqual(t.seconds(until: Instant(nanoseconds: 4_000_000_000)), -1)
        XCTAssertEqual(t.seconds(until: t + .milliseconds(1)), 0.001, accuracy: 1e-12)
        XCTAssertEqual(Instant.zero.seconds(until: Instant(nanoseconds: 1)), 1e-9, accuracy: 1e-18)
        XCTAssertEqual(t.seconds(until: t + .seconds(10)), 10)
    }

    func testDescription() {
        XCTAssertEqual(Instant(nanoseconds: 1_500_000_000).description, "1.5s")
        XCTAssertEqual(Instant.zero.description, "0.0s")
        XCTAssertEqual(Instant(nanoseconds: -2_000_000_000).description, "-2.0s")
        XCTAssertEqual("\(Instant(nanoseconds: 250_000_000))", "0.25s")
    }

    // MARK: Duration.nanoseconds

    func testDurationNanoseconds() {
        XCTAssertEqual(Duration.zero.nanoseconds, 0)
        XCTAssertEqual(Duration.seconds(10).nanoseconds, 10_000_000_000)
        XCTAssertEqual(Duration.seconds(2).nanoseconds, 2_000_000_000)
        XCTAssertEqual(Duration.milliseconds(1_500).nanoseconds, 1_500_000_000)
        XCTAssertEqual(Duration.microseconds(7).nanoseconds, 7_000)
        XCTAssertEqual(Duration.nanoseconds(1).nanoseconds, 1)
        XCTAssertEqual(Duration.seconds(0.25).nanoseconds, 250_000_000)
        XCTAssertEqual((Duration.seconds(3) + .nanoseconds(7)).nanoseconds, 3_000_000_007)
    }

    func testNegativeDurationNanoseconds() {
        XCTAssertEqual(Duration.nanoseconds(-1).nanoseconds, -1)
        XCTAssertEqual(Duration.seconds(-1).nanoseconds, -1_000_000_000)
        XCTAssertEqual(Duration.milliseconds(-1_500).nanoseconds, -1_500_000_000)
        XCTAssertEqual((Duration.seconds(-3) - .nanoseconds(7)).nanoseconds, -3_000_000_007)
    }

    func testSubNanosecondPartsAreTruncated() {
        XCTAssertEqual(Duration(secondsComponent: 0, attosecondsComponent: 999_999_999).nanoseconds, 0)
        XCTAssertEqual(Duration(secondsComponent: 0, attosecondsComponent: 1_999_999_999).nanoseconds, 1)
        XCTAssertEqual(Duration(secondsComponent: 2, attosecondsComponent: 1_000_000_000).nanoseconds, 2_000_000_001)
    }

    func testExtremeRepresentableDurations() {
        XCTAssertEqual(Duration.nanoseconds(Int64.max).nanoseconds, .max)
        XCTAssertEqual(Duration.nanoseconds(Int64.min).nanoseconds, .min)
        XCTAssertEqual(Duration.seconds(9_223_372_036).nanoseconds, 9_223_372_036_000_000_000)
        XCTAssertEqual(Duration.seconds(-9_223_372_036).nanoseconds, -9_223_372_036_000_000_000)
    }

    func testHugeDurationsSaturate() {
        XCTAssertEqual(Duration.seconds(Int64.max).nanoseconds, .max)
        XCTAssertEqual(Duration.seconds(Int64.min).nanoseconds, .min)
        XCTAssertEqual(Duration.seconds(9_223_372_037).nanoseconds, .max)
        XCTAssertEqual(Duration.seconds(-9_223_372_037).nanoseconds, .min)
        XCTAssertEqual(Duration.seconds(1e18).nanoseconds, .max)
        XCTAssertEqual(Duration.seconds(-1e18).nanoseconds, .min)
        XCTAssertEqual(Duration.seconds(86_400 * 365 * 1_000).nanoseconds, .max)
    }
}
