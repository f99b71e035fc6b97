import ArgumentParser
import Reactor
import SixteenClient
import SixteenProtocol
import SixteenServer
#if canImport(Glibc)
import Glibc
#endif

enum LoadProtocol: String, ExpressibleByArgument, CaseIterable {
    case sixteen, upper, idle
}

enum LoadPattern: String, ExpressibleByArgument, CaseIterable {
    case sendAll = "send-all"
    case interleaved
}

struct LoadCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "load",
        abstract: "Load-test a server: thousands of verified sessions in flight, latency percentiles, JSON output.",
        discussion: """
            Closed loop by default (a connection starts its next session when the last ends); with --rate, \
            open loop at a constant arrival rate, latency measured from each session's intended start \
            (corrected for coordinated omission) and, beside it, from its actual start. A run stops at -n \
            or -d, whatever the rate: sessions the schedule called for that never started are reported as \
            dropped. Every reply is verified. Exit status: 0 when every session that started ended well; 1 \
            when any failed, or --max-time cut any off (unfinished), or, with --fail-on-dropped, any was \
            dropped, or the --hlog file could not be written; 2 for a usage error.

            Load from many machines: run sixteen load on each with --hlog FILE and the same --start-at TIME, \
            then merge the files with sixteen report (percentiles are merged from the histograms, never \
            averaged). The log is an HdrHistogram interval log (format 1.3, as Java's HistogramLogWriter \
            writes it, readable by HdrHistogram's own tools): one line per --interval for each of two tags, \
            corrected (latency from each session's intended start) and uncorrected (from its actual start), \
            the same data in a closed loop. Values are nanoseconds (1 microsecond to 1 hour, 3 significant \
            digits); Interval_Max is in milliseconds. The log covers the measured window (after --warmup). \
            With --json, start_time is the start on the wall clock and series gives each interval from it: \
            sessions measured, errors, p50 and p99 of the corrected latency (the warm-up's intervals are there \
            too, with errors but no session measured).

            The clocks: --start-at waits for this machine's wall clock, so the machines start together only \
            as well as their clocks agree. Run NTP or chrony on every one (chronyc tracking shows the offset): \
            an offset between two clocks adds directly to the skew between their starts, and so to the \
            misalignment of their per-interval series and log timestamps. Merged percentiles and totals do \
            not depend on it; the span sixteen report divides the sessions by grows by it.
            """
    )

    @OptionGroup var server: ServerAddress

    @Option(name: .customLong("protocol"), help: "sixteen, upper, or idle (hold connections open without sending, then complete them all).")
    var loadProtocol: LoadProtocol = .sixteen

    @Option(name: .short, parsing: .unconditional, help: ArgumentHelp("Connections in flight (default: 50).", valueName: "connections"),
            transform: wholeNumber(in: 1...1_000_000))
    var connections = 50

    @Option(name: .short, parsing: .unconditional, help: ArgumentHelp("Stop after this many sessions.", valueName: "sessions"),
            transform: wholeNumber(in: 1...1_000_000_000_000))
    var number: Int?

    @Option(name: .short, parsing: .unconditional, help: ArgumentHelp("Stop after this many seconds (after the warm-up); idle: how long to hold.", valueName: "seconds"),
            transform: Seconds.positive)
    var duration: Seconds?

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds at the start left out of the figures (default: 0).", valueName: "seconds"),
            transform: Seconds.zeroOrMore)
    var warmup: Seconds?

    @Option(parsing: .unconditional, help: ArgumentHelp("Open loop: sessions per second in all, spread evenly over the connections.", valueName: "per-second"),
            transform: LoadCommand.parseRate)
    var rate: Double?

    @Flag(help: "With --rate: exit 1 when sessions were dropped (the server could not keep up with the schedule).")
    var failOnDropped = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Worker threads (default: the number of cores).", valueName: "n"),
            transform: wholeNumber(in: 1...1024))
    var threads: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("upper: octets per session, rounded up to whole 16-octet frames (default: 1M).", valueName: "size"),
            transform: ByteCount.parser(minimum: 1, maximum: 1 << 40))
    var bytes: ByteCount?

    @Option(help: "upper: send-all (the book's client: everything before reading) or interleaved (default: send-all).")
    var pattern: LoadPattern?

    @Option(help: ArgumentHelp("Spread connections over source addresses, e.g. 127.0.0.1-127.0.0.8 (at most 65,536 addresses).", valueName: "range"),
            transform: LoadCommand.parseSources)
    var source: [SocketAddress]?

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds without progress before a session fails as timed out (default: 10).", valueName: "seconds"),
            transform: Seconds.positive)
    var timeout = Seconds(10)

    @Option(parsing: .unconditional, help: ArgumentHelp("Hard deadline in seconds: the run stops by itself then, and what is in flight is unfinished (default: duration + warm-up + 2 x timeout + 5, or 600 with -n).", valueName: "seconds"),
            transform: Seconds.positive)
    var maxTime: Seconds?

    @Flag(help: "Print one JSON object instead of the summary (with a series: sessions, errors, p50 and p99 per --interval).")
    var json = false

    @Option(help: ArgumentHelp("Write an HdrHistogram interval log to this file: latencies per --interval, tagged corrected and uncorrected (sixteen report merges such files).", valueName: "file"),
            transform: LoadCommand.parseLogPath)
    var hlog: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds per interval of --hlog and of --json's series, from 0.1 to 3600 (default: 1).", valueName: "seconds"),
            transform: Seconds.interval)
    var interval: Seconds?

    @Option(help: ArgumentHelp("Start when the wall clock reads this, at most 24 hours ahead: RFC 3339 (2026-11-26T15:00:00Z, 2026-11-26T16:00:00.5+01:00) or Unix seconds (@1790000000.5). See the clocks, below.", valueName: "time"),
            transform: LoadCommand.parseStartAt)
    var startAt: WallTime?

    /// How far ahead --start-at may be.
    static let longestWait: Int64 = 24 * 3600 * 1_000_000_000

    static func parseRate(_ text: String) throws -> Double {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCIIDigit || $0 == "." }), let value = Double(text), value.isFinite, value > 0, value <= 1e9 else {
            throw InvalidValue("sessions per second must be a number more than 0 and at most 1000000000")
        }
        return value
    }

    static func parseLogPath(_ text: String) throws -> String {
        guard !text.isEmpty, text != "-" else {
            throw InvalidValue("give the path of the file to write (not standard output: the summary goes there)")
        }
        return text
    }

    static func parseStartAt(_ text: String) throws -> WallTime {
        guard let time = WallTime.parse(text) else {
            throw InvalidValue("give an RFC 3339 time such as 2026-11-26T15:00:00Z (fractions of a second and offsets such as +01:00 allowed) or Unix seconds such as @1790000000.5")
        }
        let now = WallTime.now()
        guard time > now else { throw InvalidValue("\(time.rfc3339) is in the past (the clock here reads \(now.rfc3339))") }
        guard time.nanoseconds - now.nanoseconds <= longestWait else {
            throw InvalidValue("\(time.rfc3339) is more than 24 hours ahead (the clock here reads \(now.rfc3339))")
        }
        return time
    }

    static func parseSources(_ text: String) throws -> [SocketAddress] {
        guard let sources = LoadConfiguration.parseSources(text) else {
            throw InvalidValue("give an IPv4 address or a range FIRST-LAST of at most 65,536 addresses, e.g. 127.0.0.1-127.0.0.8")
        }
        return sources
    }

    func validate() throws {
        guard (number == nil) != (duration == nil) else { throw ValidationError("give exactly one of -n SESSIONS and -d SECONDS") }
        if loadProtocol == .idle, duration == nil { throw ValidationError("--protocol idle needs -d (how long to hold the connections)") }
        if loadProtocol != .upper {
            if bytes != nil { throw ValidationError("--bytes is an option of --protocol upper, not \(loadProtocol.rawValue)") }
            if pattern != nil { throw ValidationError("--pattern is an option of --protocol upper, not \(loadProtocol.rawValue)") }
        }
        if failOnDropped, rate == nil { throw ValidationError("--fail-on-dropped goes with --rate (a closed loop drops nothing)") }
        if interval != nil, hlog == nil, !json { throw ValidationError("--interval sets the intervals of --hlog and of --json's series: give one of them too") }
    }

    func run() throws {
        try checkDescriptors()
        let mode: LoadMode
        switch loadProtocol {
        case .sixteen: mode = .sixteen
        case .idle: mode = .idle
        case .upper: mode = .upper(bytes: bytes?.value ?? 1 << 20, sendAll: (pattern ?? .sendAll) == .sendAll)
        }
        let configuration = LoadConfiguration(
            host: server.host, port: server.port, mode: mode, connections: connections, threads: threads ?? onlineProcessorCount(),
            sessions: number, duration: duration?.duration, warmup: warmup?.duration ?? .zero, rate: rate,
            timeout: timeout.duration, hardDeadline: maxTime?.duration, sources: source ?? [],
            interval: hlog != nil || json ? interval?.duration ?? .seconds(1) : nil, startAt: startAt
        )
        var log: IntervalLogWriter?
        if let hlog {
            do {
                log = try IntervalLogWriter(path: hlog)
            } catch {
                throw CommandFailure(message: error.description)
            }
        }
        let comment = "Logged with sixteen \(BuildInfo.version): " + CommandLine.arguments.dropFirst().joined(separator: " ")
        let onTerminal = isatty(2) != 0
        if onTerminal, let startAt {
            var line = Array("  waiting until \(startAt.rfc3339) (--start-at)".utf8)
            _ = write(2, &line, line.count)
        }
        var lastDone = 0
        var lastTime = 0.0
        let report: LoadReport
        do {
            report = try runLoad(configuration, log: log, logComment: comment, progress: onTerminal ? { progress in
                let rate = Double(progress.sessionsDone - lastDone) / max(progress.elapsedSeconds - lastTime, 1e-3)
                lastDone = progress.sessionsDone
                lastTime = progress.elapsedSeconds
                var line = Array("\r\u{1b}[K  \(Int(progress.elapsedSeconds)) s  \(Int(rate)) sessions/s  in flight \(progress.inFlight)  errors \(progress.errors)".utf8)
                _ = write(2, &line, line.count)
            } : nil)
        } catch {
            throw CommandFailure(message: error.description)
        }
        if onTerminal {
            var clear = Array("\r\u{1b}[K".utf8)
            _ = write(2, &clear, clear.count)
        }
        print(json ? report.json : report.humanSummary)
        fflush(nil)
        do {
            try log?.close()
        } catch {
            throw CommandFailure(message: error.description)
        }
        if report.failed(countingDropped: failOnDropped) {
            var reasons: [String] = []
            if report.errors > 0 { reasons.append("\(count(report.errors, "session")) failed") }
            if report.unfinished > 0 { reasons.append("\(count(report.unfinished, "session")) unfinished at the hard deadline") }
            if failOnDropped, report.dropped > 0 { reasons.append("\(count(report.dropped, "session")) dropped") }
            throw CommandFailure(message: reasons.joined(separator: "; "))
        }
    }

    /// Every connection is a descriptor: raise the soft limit as far as the
    /// hard one allows, and refuse a run that still would not fit.
    private func checkDescriptors() throws {
        let needed = connections + 64
        let soft = DescriptorLimit.raise(to: needed)
        guard needed <= soft else {
            throw CommandFailure(
                message: "-c \(connections) needs about \(needed) descriptors, and the limit is \(soft) (hard limit \(DescriptorLimit.hard)): lower -c, or raise the limit (ulimit -n; as root, ulimit -Hn)",
                exitCode: 2)
        }
    }
}
