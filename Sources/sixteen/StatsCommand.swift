import ArgumentParser
import Reactor
import SixteenClient
import SixteenProtocol
#if canImport(Glibc)
import Glibc
#endif

struct StatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats",
        abstract: "Show a running daemon's counters: read its /metrics (sixteen server --admin HOST:PORT) and print a table.",
        discussion: """
            Totals, active connections, pending output, sessions by outcome and duration percentiles \
            (interpolated within the histogram's buckets, as Prometheus' histogram_quantile does). \
            --watch redraws every interval with per-second rates, like varnishstat; with --json it prints \
            one object per interval.
            """
    )

    @Argument(help: ArgumentHelp("The daemon's admin listener.", valueName: "host:port"), transform: HostAndPort.parser(ports: 1...65535))
    var admin: HostAndPort

    @Flag(help: "Redraw every --interval seconds, with rates per second, until interrupted.")
    var watch = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds between two scrapes with --watch (default: 1).", valueName: "seconds"),
            transform: Seconds.positive)
    var interval = Seconds(1)

    @Flag(help: "Print one JSON object (with --watch, one per line).")
    var json = false

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds one scrape may take (default: 5).", valueName: "seconds"),
            transform: Seconds.positive)
    var timeout = Seconds(5)

    func run() throws {
        let address = admin.description
        var previous: (stats: DaemonStats, at: Int64)?
        let onTerminal = isatty(1) != 0
        while true {
            let document: ExpositionDocument
            do {
                document = try fetchMetrics(host: admin.host, port: admin.port, timeout: timeout.duration)
            } catch {
                throw CommandFailure(message: error.description)
            }
            let at = MonotonicClock.nanoseconds()
            let stats = DaemonStats(document, now: wallClockSeconds())
            let elapsed = previous.map { Double(at - $0.at) / 1e9 } ?? 0
            if json {
                print(stats.json(address: address, previous: previous?.stats, interval: elapsed))
            } else {
                if watch && onTerminal { print("\u{1b}[H\u{1b}[2J", terminator: "") }
                print(stats.table(address: address, previous: previous?.stats, interval: elapsed))
                if watch && !onTerminal { print("") }
            }
            fflush(nil)
            guard watch else { return }
            previous = (stats, at)
            usleep(UInt32(min(Double(UInt32.max), interval.duration.nanosecondsForSleep / 1000)))
        }
    }
}

/// Seconds since the epoch, now.
func wallClockSeconds() -> Double {
    var now = timespec()
    clock_gettime(CLOCK_REALTIME, &now)
    return Double(now.tv_sec) + Double(now.tv_nsec) / 1e9
}

extension Duration {
    var nanosecondsForSleep: Double {
        let (seconds, attoseconds) = components
        return Double(seconds) * 1e9 + Double(attoseconds) / 1e9
    }
}
