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
        abstract: "Run the sixteen daemon: read 16 octets, answer 'Farewell, client', close."
    )

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
    }

    func run() throws {
        let logger = makeLogger(level: logLevel)
        let configuration = ServerConfiguration(
            host: host,
            port: port,
            reactors: reactors,
            timeouts: SixteenTimeouts(request: requestTimeout.duration, linger: lingerTimeout.duration),
            shutdownTimeout: shutdownTimeout.duration,
            acceptBatch: acceptBatch
        )
        let server: Server
        do {
            server = try Server(configuration: configuration, logger: logger)
        } catch {
            throw CommandFailure(message: error.description)
        }
        print("Listening at \(server.address.pythonDescription)")
        fflush(nil)
        if configuration.listensEverywhere {
            logger.warning("Listening on every interface (\(server.address)): other machines can connect")
        }
        logger.info("Listening at \(server.address) with \(server.reactorCount) reactors; request timeout \(requestTimeout)s, linger \(lingerTimeout)s")
        let totals: ServerStats
        do {
            totals = try server.runUntilSignalled()
        } catch {
            throw CommandFailure(message: error.description)
        }
        logger.info("Stopped. Totals: \(totals)")
    }
}
