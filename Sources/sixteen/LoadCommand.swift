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
            Closed loop by default (a connection starts its next session when the last ends); with --rate, \\
            open loop at a constant arrival rate, latency measured from each session's intended start \\
            (corrected for coordinated omission) and, beside it, from its actual start. Every reply is \\
            verified; any error makes the exit status 1.
            """
    )

    @OptionGroup var server: ServerAddress

    @Option(name: .customLong("protocol"), help: "sixteen, upper, or idle (hold connections open without sending, then complete them all).")
    var loadProtocol: LoadProtocol = .sixteen

    @Option(name: .short, help: "Connections in flight.")
    var connections: Int = 50

    @Option(name: .short, help: "Stop after this many sessions.")
    var number: Int?

    @Option(name: .short, help: "Stop after this many seconds (after the warm-up); idle: how long to hold.")
    var duration: Seconds?

    @Option(help: "Seconds at the start left out of the figures.")
    var warmup: Seconds?

    @Option(help: "Open loop: sessions per second in all, spread evenly over the connections.")
    var rate: Double?

    @Option(help: "Worker threads (default: the number of cores).")
    var threads: Int = onlineProcessorCount()

    @Option(help: "upper: octets per session (suffixes K, M, G).")
    var bytes = ByteCount(1 << 20, "1MiB")

    @Option(help: "upper: send-all (the book's client: everything before reading) or interleaved.")
    var pattern: LoadPattern = .sendAll

    @Option(help: "Spread connections over source addresses, e.g. 127.0.0.1-127.0.0.8.")
    var source: String?

    @Option(help: "Seconds without progress before a session fails as timed out.")
    var timeout = Seconds(10)

    @Option(help: "Hard deadline in seconds: the run stops by itself then, whatever is in flight (default: duration + warm-up + 2 × timeout + 5, or 600 with -n).")
    var maxTime: Seconds?

    @Flag(help: "Print one JSON object instead of the summary.")
    var json = false

    func validate() throws {
        guard connections >= 1 else { throw ValidationError("-c must be at least 1") }
        guard (number == nil) != (duration == nil) else { throw ValidationError("give exactly one of -n SESSIONS and -d SECONDS") }
        if let number, number < 1 { throw ValidationError("-n must be at least 1") }
        if loadProtocol == .idle, duration == nil { throw ValidationError("--protocol idle needs -d (how long to hold the connections)") }
        if let rate, !(rate > 0 && rate.isFinite) { throw ValidationError("--rate must be positive") }
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard bytes.value >= 1 else { throw ValidationError("--bytes must be at least 1") }
        if let source, LoadConfiguration.parseSources(source) == nil {
            throw ValidationError("--source must be an IPv4 address or a range like 127.0.0.1-127.0.0.8")
        }
    }

    func run() throws {
        let mode: LoadMode
        switch loadProtocol {
        case .sixteen: mode = .sixteen
        case .idle: mode = .idle
        case .upper: mode = .upper(bytes: bytes.value, sendAll: pattern == .sendAll)
        }
        let configuration = LoadConfiguration(
            host: server.host, port: server.port, mode: mode, connections: connections, threads: threads,
            sessions: number, duration: duration?.duration, warmup: warmup?.duration ?? .zero, rate: rate,
            timeout: timeout.duration, hardDeadline: maxTime?.duration,
            sources: source.flatMap(LoadConfiguration.parseSources) ?? []
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
        if report.failed {
            throw CommandFailure(message: "\(report.errors) sessions failed" + (report.hitDeadline ? "; stopped by the hard deadline" : ""))
        }
    }
}
