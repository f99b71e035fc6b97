#if canImport(Glibc)
import Glibc
#endif
import Histogram
import Reactor
import SixteenProtocol

/// Latency percentiles, in microseconds.
public struct LatencySummary: Equatable, Sendable {
    public var p50: Double
    public var p90: Double
    public var p99: Double
    public var p999: Double
    public var max: Double

    init(_ histogram: Histogram<UInt64>) {
        func micros(_ value: UInt64) -> Double { Double(value) / 1000 }
        let empty = histogram.totalCount == 0
        p50 = empty ? 0 : micros(histogram.valueAtPercentile(50))
        p90 = empty ? 0 : micros(histogram.valueAtPercentile(90))
        p99 = empty ? 0 : micros(histogram.valueAtPercentile(99))
        p999 = empty ? 0 : micros(histogram.valueAtPercentile(99.9))
        max = empty ? 0 : micros(histogram.max)
    }
}

/// What a load run measured.
public struct LoadReport: Sendable {
    public let mode: LoadMode
    public let connections: Int
    public let threads: Int
    public let rate: Double?
    public let sessionsStarted: Int
    /// Sessions by outcome (all of them, warm-up included).
    public let outcomes: [LoadOutcome: Int]
    /// Successful sessions that ended after the warm-up: the figures below are theirs.
    public let measuredSessions: Int
    public let measuredSeconds: Double
    public let elapsedSeconds: Double
    public let megabytes: Double
    public let latency: LatencySummary
    public let uncorrectedLatency: LatencySummary
    public let latencyOutOfRange: Int
    public let clientCPUSeconds: Double
    public let connectionsEstablished: Int
    public let hitDeadline: Bool
    /// Sessions the schedule called for (`--rate` over `-d`, or `-n`) that
    /// never started: the server could not keep up, or the hard deadline came.
    public let dropped: Int

    init(configuration: LoadConfiguration, workers: [LoadWorker], start: Instant, end: Instant, cpuSeconds: Double, hitDeadline: Bool) {
        mode = configuration.mode
        connections = configuration.connections
        threads = workers.count
        rate = configuration.rate
        var outcomes: [LoadOutcome: Int] = [:]
        var corrected = Histogram<UInt64>(lowestDiscernibleValue: 1_000, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)
        var uncorrected = corrected
        var measured = 0, octets = 0, outOfRange = 0, started = 0, established = 0, dropped = 0
        var lastFinish = start
        for worker in workers {
            for outcome in LoadOutcome.allCases { outcomes[outcome, default: 0] += worker.counters.outcomeCount(outcome) }
            corrected.add(worker.corrected)
            uncorrected.add(worker.uncorrected)
            measured += worker.measuredSessions
            octets += worker.measuredOctets
            outOfRange += worker.outOfRange
            started += worker.counters.started.load(ordering: .relaxed)
            established += worker.counters.connected.load(ordering: .relaxed)
            dropped += worker.counters.dropped.load(ordering: .relaxed)
            lastFinish = max(lastFinish, worker.lastFinish)
        }
        self.outcomes = outcomes
        measuredSessions = measured
        sessionsStarted = started
        connectionsEstablished = established
        if let sessions = configuration.sessions { dropped += max(0, sessions - started) }
        self.dropped = dropped
        // The measured window is the run's, from the end of the warm-up to
        // the end: in the open loop, idle time between sessions is time too.
        let from = start + configuration.warmup
        measuredSeconds = max(from.seconds(until: max(end, lastFinish)), 1e-9)
        elapsedSeconds = start.seconds(until: end)
        megabytes = Double(octets) / 1e6
        latency = LatencySummary(corrected)
        uncorrectedLatency = LatencySummary(uncorrected)
        latencyOutOfRange = outOfRange
        clientCPUSeconds = cpuSeconds
        self.hitDeadline = hitDeadline
    }

    /// Sessions that failed: every outcome but `ok` and `unfinished`.
    public var errors: Int { outcomes.filter { $0.key != .ok && $0.key != .unfinished }.values.reduce(0, +) }
    /// Sessions the hard deadline cut off.
    public var unfinished: Int { outcomes[.unfinished] ?? 0 }
    public var sessionsPerSecond: Double { Double(measuredSessions) / measuredSeconds }
    public var megabytesPerSecond: Double { megabytes / measuredSeconds }
    public var clientCPUMicrosecondsPerSession: Double {
        let done = outcomes.values.reduce(0, +)
        return done > 0 ? clientCPUSeconds / Double(done) * 1e6 : 0
    }
    /// Whether the run failed, so `sixteen load` exits 1: a session failed,
    /// or the hard deadline cut sessions off, or (when asked to count) the
    /// server could not keep up with the schedule.
    public func failed(countingDropped: Bool) -> Bool {
        errors > 0 || unfinished > 0 || (countingDropped && dropped > 0)
    }

    public var modeName: String {
        switch mode {
        case .sixteen: "sixteen"
        case .idle: "idle"
        case .upper(let bytes, let sendAll): "upper (\(bytes) octets, \(sendAll ? "send-all" : "interleaved"))"
        }
    }

    /// The summary a person reads.
    public var humanSummary: String {
        var lines: [String] = []
        lines.append("\(modeName): \(plural(connections, "connection")) on \(plural(threads, "thread"))"
                     + (rate.map { ", open loop at \(significant($0)) sessions/s" } ?? ", closed loop"))
        lines.append("  sessions   \(measuredSessions) measured in \(format(measuredSeconds, 2)) s, \(sessionsStarted) started in all"
                     + (dropped > 0 ? ", \(dropped) dropped (never started)" : ""))
        lines.append("  throughput \(significant(sessionsPerSecond)) sessions/s, \(format(megabytesPerSecond, 2)) MB/s received")
        if measuredSessions == 0 {
            lines.append("  latency    none measured")
        } else {
            lines.append("  latency    p50 \(ms(latency.p50))  p90 \(ms(latency.p90))  p99 \(ms(latency.p99))  p99.9 \(ms(latency.p999))  max \(ms(latency.max))"
                         + (rate == nil ? "" : "  (from intended start)"))
            if rate != nil {
                lines.append("  uncorrected p50 \(ms(uncorrectedLatency.p50))  p90 \(ms(uncorrectedLatency.p90))  p99 \(ms(uncorrectedLatency.p99))  p99.9 \(ms(uncorrectedLatency.p999))  max \(ms(uncorrectedLatency.max))  (from actual start)")
            }
        }
        lines.append("  client CPU \(format(clientCPUSeconds, 2)) s, \(format(clientCPUMicrosecondsPerSession, 1)) µs per session")
        let failures = LoadOutcome.allCases.filter { $0 != .ok && $0 != .unfinished && (outcomes[$0] ?? 0) > 0 }
        lines.append("  errors     " + (failures.isEmpty ? "none" : failures.map { "\($0.label) \(outcomes[$0]!)" }.joined(separator: ", ")))
        if hitDeadline { lines.append("  stopped by the hard deadline (--max-time): \(plural(unfinished, "session")) unfinished") }
        if latencyOutOfRange > 0 { lines.append("  \(latencyOutOfRange) latencies above an hour were counted but not binned") }
        return lines.joined(separator: "\n")
    }

    /// One JSON object, for scripts.
    public var json: String {
        func latencyObject(_ l: LatencySummary) -> String {
            "{\"p50\": \(l.p50), \"p90\": \(l.p90), \"p99\": \(l.p99), \"p99_9\": \(l.p999), \"max\": \(l.max)}"
        }
        let errorFields = LoadOutcome.allCases.filter { $0 != .ok && $0 != .unfinished }.map { "\"\($0.label.replacingSpaces)\": \(outcomes[$0] ?? 0)" }.joined(separator: ", ")
        var fields: [String] = [
            "\"mode\": \"\(modeKey)\"",
            "\"connections\": \(connections)",
            "\"threads\": \(threads)",
            "\"rate\": \(rate.map { "\($0)" } ?? "null")",
            "\"sessions_started\": \(sessionsStarted)",
            "\"sessions_ok\": \(outcomes[.ok] ?? 0)",
            "\"sessions_measured\": \(measuredSessions)",
            "\"errors_total\": \(errors)",
            "\"errors\": {\(errorFields)}",
            "\"connections_established\": \(connectionsEstablished)",
            "\"measured_seconds\": \(measuredSeconds)",
            "\"elapsed_seconds\": \(elapsedSeconds)",
            "\"sessions_per_second\": \(sessionsPerSecond)",
            "\"megabytes_per_second\": \(megabytesPerSecond)",
            "\"latency_us\": \(latencyObject(latency))",
            "\"uncorrected_latency_us\": \(latencyObject(uncorrectedLatency))",
            "\"latency_out_of_range\": \(latencyOutOfRange)",
            "\"client_cpu_seconds\": \(clientCPUSeconds)",
            "\"client_cpu_us_per_session\": \(clientCPUMicrosecondsPerSession)",
            "\"hit_deadline\": \(hitDeadline)",
            "\"sessions_unfinished\": \(unfinished)",
            "\"sessions_dropped\": \(dropped)",
        ]
        if case .upper(let bytes, let sendAll) = mode {
            fields.insert("\"bytes_per_session\": \(bytes), \"pattern\": \"\(sendAll ? "send-all" : "interleaved")\"", at: 1)
        }
        return "{" + fields.joined(separator: ", ") + "}"
    }

    private var modeKey: String {
        switch mode {
        case .sixteen: "sixteen"
        case .upper: "upper"
        case .idle: "idle"
        }
    }
}

extension LoadOutcome {
    /// The name used in summaries and JSON keys.
    public var label: String {
        switch self {
        case .ok: "ok"
        case .refused: "refused"
        case .connectFailed: "connect failed"
        case .reset: "reset"
        case .timedOut: "timeout"
        case .shortReply: "short reply"
        case .wrongOctets: "wrong octets"
        case .unfinished: "unfinished"
        }
    }
}

extension String {
    fileprivate var replacingSpaces: String { String(map { $0 == " " ? "_" : $0 }) }
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
private func ms(_ micros: Double) -> String { format(micros / 1000, 3) + " ms" }
