@testable import SixteenClient
import XCTest

/// `--start-at`'s times and the `.hlog` headers' dates, without Foundation.
final class WallTimeTests: XCTestCase {
    private let base: Int64 = 1_795_705_200  // 2026-11-26T15:00:00Z

    func testRFC3339AndUnixSeconds() {
        let cases: [(String, Int64)] = [
            ("2026-11-26T15:00:00Z", base * 1_000_000_000),
            ("2026-11-26t15:00:00z", base * 1_000_000_000),
            ("2026-11-26 15:00:00Z", base * 1_000_000_000),
            ("2026-11-26T15:00:00.5Z", base * 1_000_000_000 + 500_000_000),
            ("2026-11-26T15:00:00.123456789123Z", base * 1_000_000_000 + 123_456_789),
            ("2026-11-26T16:00:00+01:00", base * 1_000_000_000),
            ("2026-11-26T16:30:00+0130", base * 1_000_000_000),
            ("2026-11-26T10:00:00-05", base * 1_000_000_000),
            ("2024-02-29T00:00:00Z", 1_709_164_800 * 1_000_000_000),
            ("1970-01-01T00:00:00Z", 0),
            ("@1795705200", base * 1_000_000_000),
            ("@1795705200.25", base * 1_000_000_000 + 250_000_000),
        ]
        for (text, nanoseconds) in cases {
            XCTAssertEqual(WallTime.parse(text)?.nanoseconds, nanoseconds, text)
        }
    }

    func testRefusesWhatIsNotATime() {
        for text in ["", "now", "2026-11-26T15:00:00", "2026-11-26", "2026-11-26T15:00Z", "2026-13-01T00:00:00Z",
                     "2025-02-29T00:00:00Z", "2026-11-31T00:00:00Z", "2026-11-26T24:00:00Z", "2026-11-26T15:60:00Z",
                     "2026-11-26T15:00:60Z", "2026-11-26T15:00:00.Z", "2026-11-26T15:00:00+1", "2026-11-26T15:00:00+01:0",
                     "2026-11-26T15:00:00+25:00", "2026-11-26T15:00:00ZZ", "2026-11-26T15:00:00 Z", "@", "@-5", "@1.", "@1e9",
                     "@0x10", "@12345678901234", "1795705200", "-1", "NaN"] {
            XCTAssertNil(WallTime.parse(text), text)
        }
    }

    func testFormats() {
        let time = WallTime(nanoseconds: base * 1_000_000_000 + 123_999_999)
        XCTAssertEqual(time.rfc3339, "2026-11-26T15:00:00.123Z")
        XCTAssertEqual(time.secondsWithMilliseconds, "1795705200.123")
        XCTAssertEqual(WallTime(nanoseconds: 0).rfc3339, "1970-01-01T00:00:00.000Z")
        XCTAssertEqual(WallTime(nanoseconds: 951_782_400_000_000_000).rfc3339, "2000-02-29T00:00:00.000Z")
        XCTAssertEqual(WallTime(nanoseconds: -1_000_000).rfc3339, "1969-12-31T23:59:59.999Z")
        XCTAssertEqual(WallTime(nanoseconds: 5_000_000).secondsWithMilliseconds, "0.005")
        // Every day from 1900 to 2100 goes to its date and back.
        for days in Int64(-25_567)...Int64(47_482) {
            let (year, month, day) = WallTime.civil(fromDays: days)
            XCTAssertEqual(WallTime.days(fromCivil: Int(year), Int(month), Int(day)), days)
        }
    }

    func testSleepUntilWakesOnTime() {
        let target = WallTime(nanoseconds: WallTime.now().nanoseconds + 200_000_000)
        target.sleepUntil()
        let late = WallTime.now().nanoseconds - target.nanoseconds
        XCTAssertGreaterThanOrEqual(late, 0)
        XCTAssertLessThan(late, 50_000_000)
        WallTime(nanoseconds: 0).sleepUntil()  // the past: at once
    }
}
