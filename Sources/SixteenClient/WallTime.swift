#if canImport(Glibc)
import Glibc
#endif

/// A point in wall-clock time (`CLOCK_REALTIME`), in nanoseconds since the
/// Unix epoch. Wall time is for what other machines and people read: the
/// `.hlog` start times, `--start-at`. Intervals and deadlines are measured
/// on the monotonic clock, which does not jump when NTP steps the time.
public struct WallTime: Comparable, Hashable, Sendable {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    public static func < (lhs: WallTime, rhs: WallTime) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// The clock now.
    public static func now() -> WallTime {
        var time = timespec()
        clock_gettime(CLOCK_REALTIME, &time)
        return WallTime(nanoseconds: Int64(time.tv_sec) * 1_000_000_000 + Int64(time.tv_nsec))
    }

    /// Whole milliseconds since the epoch (rounded down), as `.hlog` headers count.
    public var milliseconds: Int64 { nanoseconds >= 0 ? nanoseconds / 1_000_000 : (nanoseconds - 999_999) / 1_000_000 }

    /// Blocks the calling thread until the clock reads `self` (at once if it
    /// has). An absolute sleep on `CLOCK_REALTIME`: if NTP steps the clock
    /// meanwhile, the wake-up follows the clock, not the time slept.
    public func sleepUntil() {
        var target = timespec(tv_sec: Int(nanoseconds / 1_000_000_000), tv_nsec: Int(nanoseconds % 1_000_000_000))
        while clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &target, nil) == EINTR {}
    }

    // MARK: Text

    /// RFC 3339 in UTC with milliseconds: `2026-11-26T15:00:00.000Z`.
    public var rfc3339: String {
        let millis = milliseconds
        let days = millis >= 0 ? millis / 86_400_000 : (millis - 86_399_999) / 86_400_000
        let ofDay = millis - days * 86_400_000
        let (year, month, day) = Self.civil(fromDays: days)
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(ofDay / 3_600_000, 2)):\(pad(ofDay / 60_000 % 60, 2)):\(pad(ofDay / 1000 % 60, 2)).\(pad(ofDay % 1000, 3))Z"
    }

    /// Seconds since the epoch with three decimals (`1790000000.123`), as
    /// HdrHistogram's log writers put `#[StartTime: …]`.
    public var secondsWithMilliseconds: String {
        let millis = milliseconds
        let seconds = millis >= 0 ? millis / 1000 : (millis - 999) / 1000
        return "\(seconds).\(pad(millis - seconds * 1000, 3))"
    }

    /// A time as `--start-at` takes it:
    /// - RFC 3339 (the profile of ISO 8601 with a date, a time and an
    ///   offset): `2026-11-26T15:00:00Z`, `2026-11-26T16:00:00.250+01:00`;
    ///   `t` or a space may stand for `T`, `z` for `Z`, and the offset may be
    ///   `+0100` or `+01`. A time without an offset is refused: on several
    ///   machines "local time" need not be one time.
    /// - Unix seconds after `@`, as GNU date takes them: `@1790000000.5`.
    /// Fractions of a second go to the nanosecond (further digits are cut).
    public static func parse(_ text: String) -> WallTime? {
        let characters = Array(text.utf8)
        if characters.first == UInt8(ascii: "@") { return parseUnix(characters.dropFirst()) }
        return parseRFC3339(characters)
    }

    private static func parseUnix(_ characters: ArraySlice<UInt8>) -> WallTime? {
        let parts = characters.split(separator: UInt8(ascii: "."), maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, (1...12).contains(whole.count), whole.allSatisfy(isDigit),
              let seconds = Int64(String(decoding: whole, as: UTF8.self)) else { return nil }
        var nanos: Int64 = 0
        if parts.count == 2 {
            guard let fraction = fractionNanoseconds(parts[1]) else { return nil }
            nanos = fraction
        }
        return WallTime(nanoseconds: seconds * 1_000_000_000 + nanos)
    }

    private static func parseRFC3339(_ c: [UInt8]) -> WallTime? {
        // YYYY-MM-DDTHH:MM:SS, then [.fraction], then Z or an offset.
        guard c.count >= 20, c[4] == UInt8(ascii: "-"), c[7] == UInt8(ascii: "-"),
              [UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")].contains(c[10]),
              c[13] == UInt8(ascii: ":"), c[16] == UInt8(ascii: ":"),
              let year = number(c[0..<4]), let month = number(c[5..<7]), let day = number(c[8..<10]),
              let hour = number(c[11..<13]), let minute = number(c[14..<16]), let second = number(c[17..<19]),
              (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day),
              hour < 24, minute < 60, second < 60 else { return nil }
        var position = 19
        var nanos: Int64 = 0
        if c[position] == UInt8(ascii: ".") {
            var end = position + 1
            while end < c.count, isDigit(c[end]) { end += 1 }
            guard let fraction = fractionNanoseconds(c[(position + 1)..<end]) else { return nil }
            nanos = fraction
            position = end
        }
        guard position < c.count, let offset = offsetSeconds(c[position...]) else { return nil }
        let days = Self.days(fromCivil: year, month, day)
        let seconds = days * 86_400 + Int64(hour * 3600 + minute * 60 + second) - offset
        return WallTime(nanoseconds: seconds * 1_000_000_000 + nanos)
    }

    /// `Z`, `+HH:MM`, `+HHMM` or `+HH` (or `-`), in seconds east of UTC.
    private static func offsetSeconds(_ c: ArraySlice<UInt8>) -> Int64? {
        let text = Array(c)
        if text == [UInt8(ascii: "Z")] || text == [UInt8(ascii: "z")] { return 0 }
        guard let sign = text.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") else { return nil }
        var rest = Array(text.dropFirst())
        if rest.count == 5 {
            guard rest[2] == UInt8(ascii: ":") else { return nil }
            rest.remove(at: 2)
        }
        guard rest.count == 2 || rest.count == 4, let hours = number(rest[0..<2]), hours < 24 else { return nil }
        var minutes = 0
        if rest.count == 4 {
            guard let value = number(rest[2..<4]), value < 60 else { return nil }
            minutes = value
        }
        let east = Int64(hours * 3600 + minutes * 60)
        return sign == UInt8(ascii: "+") ? east : -east
    }

    private static func fractionNanoseconds(_ digits: ArraySlice<UInt8>) -> Int64? {
        guard !digits.isEmpty, digits.allSatisfy(isDigit) else { return nil }
        var nanos: Int64 = 0
        for index in 0..<9 {
            let position = digits.startIndex + index
            nanos = nanos * 10 + (position < digits.endIndex ? Int64(digits[position] - UInt8(ascii: "0")) : 0)
        }
        return nanos
    }

    private static func number(_ digits: ArraySlice<UInt8>) -> Int? {
        guard digits.allSatisfy(isDigit) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    private static func isDigit(_ character: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(character) }

    private static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // MARK: Calendar (proleptic Gregorian; Howard Hinnant's days_from_civil and civil_from_days)

    static func days(fromCivil year: Int, _ month: Int, _ day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = Int64((153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1)
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }
}

/// `value` with leading zeros to `width` digits.
func pad<Number: BinaryInteger>(_ value: Number, _ width: Int) -> String {
    let text = String(value)
    return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
}
