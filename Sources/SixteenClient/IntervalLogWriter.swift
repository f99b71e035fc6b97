#if canImport(Glibc)
import Glibc
#endif
import Histogram

/// What an `.hlog` file holds, in one place for the writer, the reader and
/// the help texts.
public enum IntervalLogFormat {
    /// The tag of latencies from each session's intended start (coordinated
    /// omission corrected, as wrk2 measures); in a closed loop the intended
    /// start is the actual one, and the two tags hold the same data.
    public static let correctedTag = "corrected"
    /// The tag of latencies from each session's actual start.
    public static let uncorrectedTag = "uncorrected"
    /// Java's HistogramLogWriter's version; 1.3 added tags.
    static let version = "1.3"
    static let legend = "\"StartTimestamp\",\"Interval_Length\",\"Interval_Max\",\"Interval_Compressed_Histogram\""
    /// Interval_Max is the interval's highest value divided by this: values
    /// are nanoseconds, so the column is in milliseconds. 1,000,000 is the
    /// default `max_value_unit_ratio` of HdrHistogram_py's writer and
    /// `maxValueUnitRatio` of Java's.
    static let maxValueUnitRatio: UInt64 = 1_000_000
    /// The comment that says what the values are.
    static let unitsComment = "[Values are latencies in nanoseconds (1 microsecond to 1 hour, 3 significant digits); Interval_Max is in milliseconds; "
        + "Tag=\(correctedTag) runs from each session's intended start, Tag=\(uncorrectedTag) from its actual start]"
}

/// Why an interval log could not be written or read; `description` is the
/// whole line after `sixteen: `, naming the file (and the line).
public struct IntervalLogError: Error, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// Writes an HdrHistogram interval log as Java's `HistogramLogWriter`
/// (format 1.3) writes one, so HdrHistogram's own tools read it:
///
///     #[COMMENT]
///     #[Histogram log format version 1.3]
///     #[StartTime: 1790000000.123 (seconds since epoch), 2026-09-21T14:13:20.123Z]
///     #[BaseTime: 1790000000.123 (seconds since epoch)]
///     "StartTimestamp","Interval_Length","Interval_Max","Interval_Compressed_Histogram"
///     Tag=corrected,0.000,1.000,2.503,HISTFAAA…
///
/// Timestamps are seconds after BaseTime, with three decimals as Java writes
/// them; the human date after StartTime is RFC 3339 (Java writes its own
/// Date format there; readers skip it). Each line goes out with one
/// `write(2)` as soon as its interval is collected, so a run cut short still
/// leaves every finished interval. Not thread-safe: the collector alone
/// writes.
public final class IntervalLogWriter {
    public let path: String
    private var fd: Int32
    /// The first write that failed, reported once the run is over.
    private var failure: String?

    /// Creates (or truncates) `path`.
    public init(path: String) throws(IntervalLogError) {
        self.path = path
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw IntervalLogError("cannot write the log \(path): \(String(cString: strerror(errno)))") }
    }

    deinit {
        if fd >= 0 { Glibc.close(fd) }
    }

    /// The header: `comment` (a line, without `#[ ]`), the units, the
    /// version, StartTime and BaseTime (both `start`, a whole millisecond),
    /// and the legend.
    func writeHeader(comment: String, start: WallTime) {
        let safe = String(comment.map { $0 == "\n" || $0 == "\r" || $0 == "]" ? " " : $0 })
        write([
            "#[\(safe)]",
            "#" + IntervalLogFormat.unitsComment,
            "#[Histogram log format version \(IntervalLogFormat.version)]",
            "#[StartTime: \(start.secondsWithMilliseconds) (seconds since epoch), \(start.rfc3339)]",
            "#[BaseTime: \(start.secondsWithMilliseconds) (seconds since epoch)]",
            IntervalLogFormat.legend,
        ].joined(separator: "\n") + "\n")
    }

    /// One interval line: `histogram` under `tag`, from `startNanos` to
    /// `endNanos` after BaseTime. Both ends are rounded to the millisecond
    /// before the length is taken, so consecutive intervals meet exactly.
    func writeInterval(tag: String, startNanos: Int64, endNanos: Int64, histogram: Histogram<UInt64>) {
        let startMillis = Self.roundedMillis(startNanos)
        let lengthMillis = Self.roundedMillis(endNanos) - startMillis
        // Interval_Max in thousandths of the unit (max / ratio, three decimals, half up).
        let step = IntervalLogFormat.maxValueUnitRatio / 1000
        let maxThousandths = Int64(((histogram.totalCount == 0 ? 0 : histogram.max) + step / 2) / step)
        write("Tag=\(tag),\(Self.decimal(startMillis)),\(Self.decimal(lengthMillis)),\(Self.decimal(maxThousandths)),\(HistogramCodec.encode(histogram))\n")
    }

    /// Closes the file; the first failed write or the close's error, if any.
    public func close() throws(IntervalLogError) {
        let status = Glibc.close(fd)
        let error = errno
        fd = -1
        if let failure { throw IntervalLogError(failure) }
        if status != 0 { throw IntervalLogError("writing the log \(path) failed: \(String(cString: strerror(error)))") }
    }

    private func write(_ text: String) {
        guard failure == nil else { return }
        var bytes = Array(text.utf8)
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else {
                failure = "writing the log \(path) failed: \(String(cString: strerror(errno)))"
                return
            }
            offset += count
        }
    }

    /// Nanoseconds to milliseconds, half up (from -0.5 ms, the least an offset from BaseTime can be).
    static func roundedMillis(_ nanos: Int64) -> Int64 { (nanos + 500_000) / 1_000_000 }

    /// Thousandths as a decimal with three places: `1234` is `1.234`.
    static func decimal(_ thousandths: Int64) -> String {
        "\(thousandths / 1000).\(pad(thousandths % 1000, 3))"
    }
}
