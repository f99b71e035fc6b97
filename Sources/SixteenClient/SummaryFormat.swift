#if canImport(Glibc)
import Glibc
#endif
import Histogram

// The one place that turns latency histograms into figures and figures into
// text: `sixteen load`'s summary and JSON, its per-interval series and
// `sixteen report`'s merge all use it, so a run and the report of its log
// agree to the nanosecond.

/// Latency percentiles, in microseconds.
public struct LatencySummary: Equatable, Sendable {
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double

    /// The figures of `histogram` (all 0 when it is empty), by
    /// `LatencyPercentiles`' rule.
    public init(_ histogram: Histogram<UInt64>) {
        let values = LatencyPercentiles.values(at: [50, 90, 99, 99.9], in: histogram)
        func micros(_ value: UInt64) -> Double { Double(value) / 1000 }
        p50 = micros(values[0])
        p90 = micros(values[1])
        p99 = micros(values[2])
        p999 = micros(values[3])
        max = histogram.totalCount == 0 ? 0 : micros(histogram.max)
    }

    /// `{"p50": …, "p90": …, "p99": …, "p99_9": …, "max": …}`, the object of `latency_us`.
    public var json: String {
        "{\"p50\": \(p50), \"p90\": \(p90), \"p99\": \(p99), \"p99_9\": \(p999), \"max\": \(max)}"
    }
}

/// The percentile rule, HdrHistogram's own (Java's `getValueAtPercentile`
/// since 2.1.10): the value at percentile p is the highest value equivalent
/// to the first recorded value at or below which at least p% of the counts
/// lie (the count wanted is p% of the total, rounded up, at least 1, with p
/// taken one ulp lower so 99% of 1000 is the 990th). It depends on the
/// counts alone, so a histogram and its decoded copy give the same figures.
/// hdrhistogram-swift's `valueAtPercentile` clamps to the raw recorded
/// maximum, which an encoded histogram cannot carry, and HdrHistogram_py
/// rounds the count to the nearest instead: the 50th percentile and the
/// maximum agree with HdrHistogram_py always, higher ones when the two
/// roundings pick the same count.
public enum LatencyPercentiles {
    /// The value at each of `percentiles` (ascending), in one pass; 0 for an empty histogram.
    public static func values(at percentiles: [Double], in histogram: Histogram<UInt64>) -> [UInt64] {
        let total = histogram.totalCount
        guard total > 0 else { return percentiles.map { _ in 0 } }
        let targets = percentiles.map { percentile -> UInt64 in
            let requested = Swift.min(Swift.max(percentile.nextDown, 0), 100)
            return Swift.max(1, UInt64((requested * Double(total) / 100).rounded(.up)))
        }
        var results = [UInt64](repeating: histogram.max, count: percentiles.count)
        var next = 0
        var cumulative: UInt64 = 0
        for entry in histogram.recordedValues() {
            cumulative += entry.count
            while next < targets.count && cumulative >= targets[next] {
                results[next] = entry.value  // the highest value equivalent to the bucket's
                next += 1
            }
            if next == targets.count { break }
        }
        return results
    }
}

/// The lines of a summary, shared by `sixteen load` and `sixteen report`.
public enum SummaryLines {
    /// `  sessions   N measured in S s` and what follows.
    public static func sessions(_ measured: Int, seconds: Double, detail: String) -> String {
        "  sessions   \(measured) measured in \(format(seconds, 2)) s" + detail
    }

    /// `  throughput R sessions/s` (and MB/s, when known).
    public static func throughput(_ perSecond: Double, megabytesPerSecond: Double?) -> String {
        "  throughput \(significant(perSecond)) sessions/s" + (megabytesPerSecond.map { ", \(format($0, 2)) MB/s received" } ?? "")
    }

    /// `  latency    p50 … max …` (or `  uncorrected p50 …`), with a note in brackets.
    public static func latency(_ latency: LatencySummary, uncorrected: Bool = false, note: String?) -> String {
        (uncorrected ? "  uncorrected " : "  latency    ")
            + "p50 \(ms(latency.p50))  p90 \(ms(latency.p90))  p99 \(ms(latency.p99))  p99.9 \(ms(latency.p999))  max \(ms(latency.max))"
            + (note.map { "  (\($0))" } ?? "")
    }

    /// When nothing was measured.
    public static let noLatency = "  latency    none measured"
}

/// `value` with `digits` decimals, without Foundation.
func format(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "\(value)" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let rounded = (value * scale).rounded() / scale
    var text = "\(rounded)"
    if digits == 0, text.hasSuffix(".0") { text.removeLast(2) }
    if let dot = text.firstIndex(of: "."), text.distance(from: dot, to: text.endIndex) - 1 < digits {
        text += String(repeating: "0", count: digits - (text.distance(from: dot, to: text.endIndex) - 1))
    }
    return text
}

/// `n thing` or `n things`.
func plural(_ value: Int, _ thing: String) -> String {
    "\(value) \(value == 1 ? thing : thing + "s")"
}

/// A rate with as many decimals as it needs to show three significant
/// figures, at least one and at most six: `19510.5`, `2.5`, `0.01`.
func significant(_ value: Double) -> String {
    guard value.isFinite, value > 0, value < 10 else { return format(value, 1) }
    let digits = max(1, min(6, 2 - Int(log10(value).rounded(.down))))
    var text = format(value, digits)
    while text.hasSuffix("0"), let dot = text.firstIndex(of: "."), text.distance(from: dot, to: text.endIndex) > 2 {
        text.removeLast()
    }
    return text
}

/// Microseconds as milliseconds with three decimals.
func ms(_ micros: Double) -> String { format(micros / 1000, 3) + " ms" }
