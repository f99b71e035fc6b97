import Histogram
import SixteenProtocol

/// `sixteen report`: interval logs from any number of `sixteen load --hlog`
/// runs (one machine or many) merged exactly, their histograms added count
/// by count, never their percentiles averaged.
///
/// The rate is the total number of sessions over the union of the files'
/// spans: from the earliest interval start in any file to the latest
/// interval end, gaps included. A file's span runs from its first interval
/// of the chosen tag to its last. When the spans do not all overlap, or
/// overlap for less than `fullOverlap` of the union, a warning says so: the
/// rate then counts time when not every machine was loading, and the
/// percentiles mix periods of different load (vegeta issue #210).
public struct MergedReport {
    /// What one file contributed.
    public struct File {
        public let path: String
        public let sessions: UInt64
        public let intervals: Int
        /// The file's span, nanoseconds since the epoch.
        public let start: Int64
        public let end: Int64
    }

    /// Spans overlapping for less than this share of their union are warned about.
    public static let fullOverlap = 0.9

    public let tag: String
    public let files: [File]
    public let histogram: Histogram<UInt64>
    public let latency: LatencySummary
    /// The union of the files' spans, nanoseconds since the epoch.
    public let start: Int64
    public let end: Int64
    /// How long every file's span covers (0 when they do not all overlap).
    public let overlapNanos: Int64

    /// Reads and merges `paths`, taking the intervals tagged `tag`.
    public static func merge(paths: [String], tag: String) throws(IntervalLogError) -> MergedReport {
        var merged: Histogram<UInt64>?
        var files: [File] = []
        for path in paths {
            let intervals = try IntervalLogReader.intervals(in: IntervalLogReader.contents(of: path), path: path).filter { $0.tag == tag }
            guard let first = intervals.first else { throw IntervalLogError("\(path): no interval tagged \(tag)") }
            var sessions: UInt64 = 0
            for interval in intervals {
                let histogram: Histogram<UInt64>
                do {
                    histogram = try interval.histogram()
                } catch {
                    throw IntervalLogError("\(path):\(interval.line): the histogram does not decode: \(error.description)")
                }
                if var total = merged {
                    guard total.lowestDiscernibleValue == histogram.lowestDiscernibleValue,
                          total.numberOfSignificantValueDigits == histogram.numberOfSignificantValueDigits else {
                        throw IntervalLogError("\(path):\(interval.line): a histogram of other settings (lowest \(histogram.lowestDiscernibleValue), "
                                               + "\(histogram.numberOfSignificantValueDigits.rawValue) digits) than the first (lowest "
                                               + "\(total.lowestDiscernibleValue), \(total.numberOfSignificantValueDigits.rawValue) digits) cannot be merged exactly")
                    }
                    merged = nil  // keep the counts array unique while adding
                    total.add(histogram)
                    merged = total
                } else {
                    var first = histogram
                    first.autoResize = true  // a later file may track higher values
                    merged = first
                }
                sessions += histogram.totalCount
            }
            files.append(File(path: path, sessions: sessions, intervals: intervals.count,
                              start: intervals.map(\.start).min() ?? first.start, end: intervals.map(\.end).max() ?? first.end))
        }
        return MergedReport(tag: tag, files: files, histogram: merged!)
    }

    init(tag: String, files: [File], histogram: Histogram<UInt64>) {
        self.tag = tag
        self.files = files
        self.histogram = histogram
        latency = LatencySummary(histogram)
        start = files.map(\.start).min()!
        end = files.map(\.end).max()!
        overlapNanos = max(0, files.map(\.end).min()! - files.map(\.start).max()!)
    }

    public var sessions: Int { Int(histogram.totalCount) }
    public var seconds: Double { Double(end - start) / 1e9 }
    public var sessionsPerSecond: Double { end > start ? Double(sessions) / seconds : 0 }

    /// Warnings for stderr, each one line (after `sixteen: warning: `).
    public var warnings: [String] {
        guard files.count > 1 else { return [] }
        let advice = "start the machines together with --start-at"
        if overlapNanos == 0 {
            let spans = files.map { "\($0.path) \(time($0.start)) to \(time($0.end))" }.joined(separator: ", ")
            return ["the files' time spans do not overlap (\(spans)): the rate counts the time between them, "
                    + "and the percentiles mix runs that did not load together; \(advice)"]
        }
        let share = Double(overlapNanos) / Double(end - start)
        guard share < Self.fullOverlap else { return [] }
        return ["the files' time spans overlap for only \(format(Double(overlapNanos) / 1e9, 2)) s of the \(format(seconds, 2)) s "
                + "they cover together (\(format(share * 100, 1))%): the rate and the percentiles mix time when not every machine was loading; \(advice)"]
    }

    /// The summary a person reads: `sixteen load`'s lines, from one renderer.
    public var humanSummary: String {
        var lines = ["\(files.count == 1 ? "1 file" : "\(files.count) files") merged, Tag=\(tag), from \(time(start)) to \(time(end))"]
        lines.append(SummaryLines.sessions(sessions, seconds: seconds, detail: ""))
        lines.append(SummaryLines.throughput(sessionsPerSecond, megabytesPerSecond: nil))
        lines.append(sessions == 0 ? SummaryLines.noLatency : SummaryLines.latency(latency, note: tagNote))
        for file in files {
            lines.append("  file       \(file.path): \(file.sessions) sessions in \(plural(file.intervals, "interval")), "
                         + "\(format(Double(file.end - file.start) / 1e9, 2)) s from \(time(file.start))")
        }
        return lines.joined(separator: "\n")
    }

    /// One JSON object, with `sixteen load --json`'s names for the same figures.
    public var json: String {
        let perFile = files.map {
            "{\"file\": \(JSONText.string($0.path)), \"sessions_measured\": \($0.sessions), \"intervals\": \($0.intervals), "
                + "\"start_time\": \"\(time($0.start))\", \"end_time\": \"\(time($0.end))\"}"
        }
        let fields = [
            "\"tag\": \(JSONText.string(tag))",
            "\"files\": [" + perFile.joined(separator: ", ") + "]",
            "\"start_time\": \"\(time(start))\"",
            "\"end_time\": \"\(time(end))\"",
            "\"sessions_measured\": \(sessions)",
            "\"measured_seconds\": \(seconds)",
            "\"sessions_per_second\": \(sessionsPerSecond)",
            "\"latency_us\": \(latency.json)",
            "\"overlap_seconds\": \(Double(overlapNanos) / 1e9)",
            "\"warnings\": [" + warnings.map(JSONText.string).joined(separator: ", ") + "]",
        ]
        return "{" + fields.joined(separator: ", ") + "}"
    }

    private var tagNote: String {
        switch tag {
        case IntervalLogFormat.correctedTag: "Tag=\(tag): from intended start"
        case IntervalLogFormat.uncorrectedTag: "Tag=\(tag): from actual start"
        default: "Tag=\(tag)"
        }
    }

    private func time(_ nanos: Int64) -> String { WallTime(nanoseconds: nanos).rfc3339 }
}
