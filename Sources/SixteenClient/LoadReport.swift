#if canImport(Glibc)
import Glibc
#endif
import Histogram
import Reactor
import SixteenProtocol

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
    /// When the run began, on the wall clock.
    public let startTime: WallTime
    /// Figures per `--interval`, from the start (empty without intervals).
    public let series: [IntervalFigures]

    init(configuration: LoadConfiguration, workers: [LoadWorker], start: Instant, end: Instant, cpuSeconds: Double, hitDeadline: Bool,
         startTime: WallTime, series: [IntervalFigures]) {
        mode = configuration.mode
        connections = configuration.connections
        threads = workers.count
        rate = configuration.rate
        var outcomes: [LoadOutcome: Int] = [:]
        var corrected = LatencyHistogram.make()
        var uncorrected = LatencyHistogram.make()
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
        self.startTime = startTime
        self.series = series
    }

    /// Sessions that failed: every outcome but `ok` and `unfinished`.
    public var errors: Int { outcomes.filter { $0.key.isFailure }.values.reduce(0, +) }
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
        lines.append(SummaryLines.sessions(measuredSessions, seconds: measuredSeconds,
                                           detail: ", \(sessionsStarted) started in all" + (dropped > 0 ? ", \(dropped) dropped (never started)" : "")))
        lines.append(SummaryLines.throughput(sessionsPerSecond, megabytesPerSecond: megabytesPerSecond))
        if measuredSessions == 0 {
            lines.append(SummaryLines.noLatency)
        } else {
            lines.append(SummaryLines.latency(latency, note: rate == nil ? nil : "from intended start"))
            if rate != nil {
                lines.append(SummaryLines.latency(uncorrectedLatency, uncorrected: true, note: "from actual start"))
            }
        }
        lines.append("  client CPU \(format(clientCPUSeconds, 2)) s, \(format(clientCPUMicrosecondsPerSession, 1)) µs per session")
        let failures = LoadOutcome.allCases.filter { $0.isFailure && (outcomes[$0] ?? 0) > 0 }
        lines.append("  errors     " + (failures.isEmpty ? "none" : failures.map { "\($0.label) \(outcomes[$0]!)" }.joined(separator: ", ")))
        if hitDeadline { lines.append("  stopped by the hard deadline (--max-time): \(plural(unfinished, "session")) unfinished") }
        if latencyOutOfRange > 0 { lines.append("  \(latencyOutOfRange) latencies above an hour were counted but not binned") }
        return lines.joined(separator: "\n")
    }

    /// One JSON object, for scripts. Keys are never renamed or removed
    /// (scripts depend on them); new ones go at the end.
    public var json: String {
        let errorFields = LoadOutcome.allCases.filter(\.isFailure).map { "\"\($0.label.replacingSpaces)\": \(outcomes[$0] ?? 0)" }.joined(separator: ", ")
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
            "\"latency_us\": \(latency.json)",
            "\"uncorrected_latency_us\": \(uncorrectedLatency.json)",
            "\"latency_out_of_range\": \(latencyOutOfRange)",
            "\"client_cpu_seconds\": \(clientCPUSeconds)",
            "\"client_cpu_us_per_session\": \(clientCPUMicrosecondsPerSession)",
            "\"hit_deadline\": \(hitDeadline)",
            "\"sessions_unfinished\": \(unfinished)",
            "\"sessions_dropped\": \(dropped)",
            "\"start_time\": \"\(startTime.rfc3339)\"",
            "\"series\": [" + series.map(\.json).joined(separator: ", ") + "]",
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
    /// Whether it counts as an error: every outcome but `ok` and `unfinished`
    /// (cut off by the hard deadline, which is the run's doing, not the server's).
    public var isFailure: Bool { self != .ok && self != .unfinished }

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
