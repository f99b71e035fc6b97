import ArgumentParser
import Reactor
import SixteenClient
import SixteenProtocol
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
            dropped; 2 for a usage error.
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

    @Flag(help: "Print one JSON object instead of the summary.")
    var json = false

    static func parseRate(_ text: String) throws -> Double {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCIIDigit || $0 == "." }), let value = Double(text), value.isFinite, value > 0, value <= 1e9 else {
            throw InvalidValue("sessions per second must be a number more than 0 and at most 1000000000")
        }
        return value
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
            timeout: timeout.duration, hardDeadline: maxTime?.duration, sources: source ?? []
        )
        let onTerminal = isatty(2) != 0
        var lastDone = 0
        var lastTime = 0.0
        let report: LoadReport
        do {
            report = try runLoad(configuration, progress: onTerminal ? { progress in
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
