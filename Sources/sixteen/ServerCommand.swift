import ArgumentParser
import Logging
import Reactor
import SixteenProtocol
import SixteenServer
#if canImport(Glibc)
import Glibc
#endif

struct ServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the daemon: 'sixteen' (16 octets in, 'Farewell, client' out) or 'upper' (every octet echoed uppercased).",
        discussion: """
            With --protocol upper the server always drains reads: output a client has not read yet is kept \
            in memory up to --high-water-mark per connection (and --memory-budget in all), then spilled to an \
            unnamed file in --spill-dir, and a client past --max-pending is closed.
            """
    )

    @Option(name: .customLong("protocol"), help: "The protocol: sixteen or upper.")
    var serverProtocol: ServerProtocol = .sixteen

    @Argument(help: ArgumentHelp(
        "The interface to listen on: \"\" (or 0.0.0.0, or ::) for every interface, or an address or name.",
        valueName: "host"))
    var host: String = "127.0.0.1"

    @Option(name: .short, help: "The TCP port; 0 takes a free one.")
    var port: Int = 1060

    @Option(help: "Reactor threads, each with its own event loop and SO_REUSEPORT listener (default: the number of cores).")
    var reactors: Int = onlineProcessorCount()

    @Option(help: "Seconds a client has to deliver its whole 16-octet request.")
    var requestTimeout = Seconds(10)

    @Option(help: "Seconds to write the reply, and again to wait for the client's EOF after it.")
    var lingerTimeout = Seconds(2)

    @Option(help: "upper: seconds with no octet moving either way before a session is closed.")
    var idleTimeout = Seconds(60)

    @Option(help: "upper: the most output one client may leave unread before it is closed (suffixes K, M, G).")
    var maxPending = ByteCount(2 << 30, "2GiB")

    @Option(help: "upper: output held in memory per connection before spilling to a file.")
    var highWaterMark = ByteCount(256 << 10, "256KiB")

    @Option(help: "upper: output held in memory by all connections together.")
    var memoryBudget = ByteCount(16 << 20, "16MiB")

    @Option(help: "upper: the directory for spill files (default: $TMPDIR, else /tmp).")
    var spillDir: String?

    @Option(help: "Seconds sessions in flight may take to finish after SIGINT or SIGTERM.")
    var shutdownTimeout = Seconds(5)

    @Option(help: "Connections accepted per listener wake-up at most.")
    var acceptBatch: Int = 64

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. At debug, each session logs the book's lines.")
    var logLevel: Logger.Level = .info

    func validate() throws {
        try validatePort(port)
        guard (1...1024).contains(reactors) else { throw ValidationError("--reactors must be between 1 and 1024") }
        guard (1...65536).contains(acceptBatch) else { throw ValidationError("--accept-batch must be between 1 and 65536") }
        guard maxPending.value > 0 else { throw ValidationError("--max-pending must be positive") }
    }

    func run() throws {
        let logger = makeLogger(level: logLevel)
        let configuration = ServerConfiguration(
            serverProtocol: serverProtocol,
            host: host,
            port: port,
            reactors: reactors,
            timeouts: SixteenTimeouts(request: requestTimeout.duration, linger: lingerTimeout.duration),
            upper: UpperLimits(idle: idleTimeout.duration, maxPending: maxPending.value),
            output: OutputLimits(
                highWaterMark: highWaterMark.value, memoryBudget: memoryBudget.value,
                spillDirectory: spillDir ?? defaultSpillDirectory()),
            shutdownTimeout: shutdownTimeout.duration,
            acceptBatch: acceptBatch
        )
        let server: Server
        do {
            server = try Server(configuration: configuration, logger: logger)
        } catch {
            throw CommandFailure(message: error.description)
        }
        Server.holdShutdownSignals()
        print("Listening at \(server.address.pythonDescription)")
        fflush(nil)
        if configuration.listensEverywhere {
            logger.warning("Listening on every interface (\(server.address)): other machines can connect")
        }
        switch serverProtocol {
        case .sixteen:
            logger.info("Listening at \(server.address) with \(server.reactorCount) reactors, protocol sixteen; request timeout \(requestTimeout)s, linger \(lingerTimeout)s")
        case .upper:
            logger.info("Listening at \(server.address) with \(server.reactorCount) reactors, protocol upper; idle timeout \(idleTimeout)s, max pending \(maxPending), memory \(highWaterMark) per connection and \(memoryBudget) in all, spilling to \(configuration.output.spillDirectory)")
        }
        let totals: ServerStats
        do {
            totals = try server.runUntilSignalled()
        } catch {
            throw CommandFailure(message: error.description)
        }
        logger.info("Stopped. Totals: \(totals.summary(for: serverProtocol))")
    }
}

extension ServerProtocol: ExpressibleByArgument {}

/// `$TMPDIR` if set, else `/tmp`.
func defaultSpillDirectory() -> String {
    if let value = getenv("TMPDIR"), value.pointee != 0 { return String(cString: value) }
    return "/tmp"
}
