#if canImport(Glibc)
import Glibc
#endif
import Histogram

/// One interval line of a log, its times made absolute.
public struct LoggedInterval {
    public let tag: String?
    /// The interval's start and end on the wall clock, in nanoseconds since the epoch.
    public let start: Int64
    public let end: Int64
    /// The line it came from (1-based), for messages.
    public let line: Int
    /// The base64 histogram, decoded only when wanted.
    public let encoded: Substring

    public func histogram() throws(HistogramDecodingError) -> Histogram<UInt64> { try HistogramCodec.decode(encoded) }
}

/// Reads HdrHistogram interval logs by the rules of the reference readers
/// (Java's `HistogramLogReader`, HdrHistogram_py's): `#[StartTime: S` and
/// `#[BaseTime: S` set the times, other `#` lines and the legend are
/// skipped, and an interval line is `[Tag=NAME,]START,LENGTH,MAX,HISTOGRAM`.
/// Timestamps are seconds after BaseTime; a log without BaseTime has
/// absolute timestamps, unless its first one lies more than a year before
/// StartTime, when they count from StartTime (as both readers decide).
/// Unlike them, it refuses a malformed line instead of skipping it, so a
/// damaged file is not merged short without a word.
public enum IntervalLogReader {
    /// The whole of `path`, or the error naming it.
    public static func contents(of path: String) throws(IntervalLogError) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw IntervalLogError("\(path): cannot open: \(String(cString: strerror(errno)))") }
        defer { close(fd) }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 && errno == EINTR { continue }
            guard count >= 0 else { throw IntervalLogError("\(path): cannot read: \(String(cString: strerror(errno)))") }
            if count == 0 { break }
            bytes += chunk[..<count]
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw IntervalLogError("\(path): not a text file (not UTF-8)")
        }
        return text
    }

    /// Every interval line of `text` (the log at `path`, for messages).
    public static func intervals(in text: String, path: String) throws(IntervalLogError) -> [LoggedInterval] {
        var startTime: Int64?
        var baseTime: Int64?
        var intervals: [LoggedInterval] = []
        var number = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            number += 1
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.isEmpty || line.hasPrefix("\"StartTimestamp\"") { continue }
            if line.hasPrefix("#") {
                if let value = headerTime(line, "#[StartTime: ") {
                    guard let time = value else { throw IntervalLogError("\(path):\(number): StartTime is not a number of seconds") }
                    startTime = time
                } else if let value = headerTime(line, "#[BaseTime: ") {
                    guard let time = value else { throw IntervalLogError("\(path):\(number): BaseTime is not a number of seconds") }
                    baseTime = time
                }
                continue
            }
            var fields = line.split(separator: ",", maxSplits: 4, omittingEmptySubsequences: false)
            var tag: String?
            if let first = fields.first, first.hasPrefix("Tag=") {
                tag = String(first.dropFirst(4))
                fields.removeFirst()
            }
            guard fields.count == 4, let start = seconds(fields[0]), let length = seconds(fields[1]), seconds(fields[2]) != nil,
                  !fields[3].isEmpty, !fields[3].contains(",") else {
                throw IntervalLogError("\(path):\(number): not an interval line ([Tag=NAME,]START,LENGTH,MAX,HISTOGRAM)")
            }
            if startTime == nil { startTime = start }
            if baseTime == nil {
                let year: Int64 = 365 * 24 * 3600 * 1_000_000_000
                baseTime = start < startTime! - year ? startTime! : 0
            }
            let (absolute, late) = baseTime!.addingReportingOverflow(start)
            let (end, later) = absolute.addingReportingOverflow(length)
            guard !late, !later else { throw IntervalLogError("\(path):\(number): the interval lies past the year 2262") }
            intervals.append(LoggedInterval(tag: tag, start: absolute, end: end, line: number, encoded: fields[3]))
        }
        return intervals
    }

    /// nil if `line` is not that header; .some(nil) if its number is bad.
    private static func headerTime(_ line: Substring, _ prefix: String) -> Int64?? {
        guard line.hasPrefix(prefix) else { return nil }
        let number = line.dropFirst(prefix.count).drop { $0 == " " }.prefix { $0 != " " && $0 != "," && $0 != "]" }
        return .some(seconds(number))
    }

    /// Decimal seconds (digits, at most one point) in nanoseconds; digits
    /// past the ninth decimal are cut. Nil for anything else, or past 2^63 ns.
    static func seconds(_ text: Substring) -> Int64? {
        let parts = text.split(separator: ".", maxSplits: 1, omittingEmptySubsequences: false)
        guard let whole = parts.first, !(whole.isEmpty && (parts.count == 1 || parts[1].isEmpty)), whole.count <= 10,
              whole.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        let (wholeNanos, overflow) = (Int64(whole) ?? 0).multipliedReportingOverflow(by: 1_000_000_000)
        guard !overflow else { return nil }
        var nanos = wholeNanos
        if parts.count == 2 {
            guard parts[1].allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
            var scale: Int64 = 100_000_000
            for digit in parts[1].prefix(9) {
                nanos += Int64(digit.asciiValue! - UInt8(ascii: "0")) * scale
                scale /= 10
            }
        }
        return nanos
    }
}
