import ArgumentParser
import Logging
import Reactor
import SixteenProtocol
import SixteenServer
#if canImport(Glibc)
import Glibc
#endif

enum ServerProtocolName: String, ExpressibleByArgument, CaseIterable {
    case sixteen, upper
}

struct ServerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "server",
        abstract: "Run the daemon: 'sixteen' (16 octets in, 'Farewell, client' out) or 'upper' (every octet echoed uppercased).",
        discussion: """
            With --protocol upper the server always drains reads: output a client has not read yet is kept \
            in memory up to --high-water-mark per connection (and --memory-budget in all), then spilled to an \
            unnamed file in --spill-dir, and a client past --max-pending is closed. With --admin, an HTTP \
            listener serves /metrics (Prometheus), /healthz and /ready. Signals: SIGINT or SIGTERM drains, \
            a second one or SIGQUIT stops at once, SIGUSR1 logs every counter, SIGHUP and SIGUSR2 are reserved.
            """
    )

    @Option(name: .customLong("protocol"), help: "The protocol: sixteen or upper (default: sixteen).")
    var serverProtocol: ServerProtocolName?

    @Argument(help: ArgumentHelp(
        "The interface to listen on: \"\" (or 0.0.0.0, or ::) for every interface, or an address or name.",
        valueName: "host"))
    var host: String = "127.0.0.1"

    @Option(name: .short, help: "The TCP port; 0 takes a free one (default: 1060).")
    var port: Int?

    @Option(name: .customLong("listen"), help: ArgumentHelp(
        "Serve PROTOCOL on PORT; repeat to serve both protocols from one daemon (instead of --protocol and -p).",
        valueName: "protocol:port"))
    var listen: [ListenSpecification] = []

    @Option(help: "Reactor threads, each with its own event loop and SO_REUSEPORT listener (default: the number of cores).")
    var reactors: Int = onlineProcessorCount()

    @Option(help: "Seconds a client has to deliver its whole 16-octet request.")
    var requestTimeout = Seconds(10)

    @Option(help: "Seconds to write the reply, and again to wait for the client's EOF after it.")
    var lingerTimeout = Seconds(2)

    @Option(help: "upper: seconds without progress before a session is closed.")
    var idleTimeout = Seconds(60)

    @Option(help: "upper: while a client leaves output unread, the octets it must send per --idle-timeout for that to count as progress.")
    var minProgress = ByteCount(16 << 10, "16K")

    @Option(help: "upper: the most output one client may leave unread before it is closed (suffixes K, M, G).")
    var maxPending = ByteCount(2 << 30, "2GiB")

    @Option(help: "upper: output held in memory per connection before spilling to a file.")
    var highWaterMark = ByteCount(256 << 10, "256KiB")

    @Option(help: "upper: output held in memory by all connections together.")
    var memoryBudget = ByteCount(16 << 20, "16MiB")

    @Option(help: "upper: the directory for spill files (default: $TMPDIR, else /tmp).")
    var spillDir: String?

    @Option(help: "upper: disk space all spill files together may take (default: half the free space of --spill-dir at start-up, at most 8G).")
    var maxSpill: ByteCount?

    @Option(help: "upper: seconds a session whose spill file cannot take room stops reading and retries, before it is closed.")
    var spillRetry = Seconds(5)

    @Option(help: "Seconds sessions in flight may take to finish after SIGINT or SIGTERM.")
    var shutdownTimeout = Seconds(5)

    @Option(help: "Connections accepted per listener wake-up at most.")
    var acceptBatch: Int = 64

    @Option(name: .customLong("max-connections-per-ip"), help: "Connections one client address may hold at once; more are closed as soon as they are accepted, and counted (default: no such cap).")
    var maxConnectionsPerAddress: Int?

    @Option(help: "Client connections open at once at most, over every service; the rest wait in the listen queue (default: what the descriptor limit allows after the daemon's own reserve).")
    var maxConnections: Int?

    @Option(help: ArgumentHelp("Serve /metrics, /healthz and /ready over HTTP on HOST:PORT (port 0 takes a free one; the log says which). Off by default.", valueName: "host:port"))
    var admin: HostAndPort?

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical. At debug, each session logs the book's lines.")
    var logLevel: Logger.Level = .info

    @Option(help: "Log format: text, or json (one object per line, for journald and log shippers).")
    var logFormat: LogFormat = .text

    func validate() throws {
        if !listen.isEmpty {
            guard serverProtocol == nil, port == nil else {
                throw ValidationError("--listen replaces --protocol and -p: give one or the other")
            }
            guard Set(listen.map(\.name)).count == listen.count else {
                throw ValidationError("--listen: each protocol at most once")
            }
        }
        try validatePort(port ?? 1060)
        guard (1...1024).contains(reactors) else { throw ValidationError("--reactors must be between 1 and 1024") }
        guard (1...65536).contains(acceptBatch) else { throw ValidationError("--accept-batch must be between 1 and 65536") }
        guard maxPending.value > 0 else { throw ValidationError("--max-pending must be positive") }
        if let maxConnections, maxConnections < 1 { throw ValidationError("--max-connections must be at least 1") }
        if let maxConnectionsPerAddress, maxConnectionsPerAddress < 1 { throw ValidationError("--max-connections-per-ip must be at least 1") }
    }

    /// What to serve where: `--listen`, or `--protocol` on `-p`.
    var services: [Service] {
        if !listen.isEmpty { return listen.map { Service(configuration(of: $0.name), port: $0.port) } }
        return [Service(configuration(of: serverProtocol ?? .sixteen), port: port ?? 1060)]
    }

    func configuration(of name: ServerProtocolName) -> ProtocolConfiguration {
        switch name {
        case .sixteen:
            return .sixteen(SixteenTimeouts(request: requestTimeout.duration, linger: lingerTimeout.duration))
        case .upper:
            return .upper(UpperConfiguration(
                limits: UpperLimits(idle: idleTimeout.duration, maxPending: maxPending.value, holdProgress: minProgress.value),
                output: OutputLimits(
                    highWaterMark: highWaterMark.value, memoryBudget: memoryBudget.value,
                    spillDirectory: spillDir ?? defaultSpillDirectory(), maxSpill: maxSpill?.value,
                    spillRetry: spillRetry.duration)))
        }
    }

    func run() throws {
        let logger = makeLogger(level: logLevel, format: logFormat)
        // The connection cap comes from the descriptor limit: take all the
        // hard limit allows.
        DescriptorLimit.raise()
        let configuration = ServerConfiguration(
            services: services,
            host: host,
            reactors: reactors,
            shutdownTimeout: shutdownTimeout.duration,
            acceptBatch: acceptBatch,
            admin: admin.map { AdminConfiguration(host: $0.host, port: $0.port) },
            maxConnections: maxConnections,
            maxConnectionsPerAddress: maxConnectionsPerAddress
        )
        let server: Server
        do {
            server = try Server(configuration: configuration, logger: logger)
        } catch {
            throw CommandFailure(message: error.description)
        }
        Server.holdSignals()
        for address in server.addresses {
            print("Listening at \(address.pythonDescription)")
        }
        fflush(nil)
        for (service, address) in zip(configuration.services, server.addresses) {
            if configuration.listensEverywhere {
                logger.warning("Listening on every interface (\(address)): other machines can connect")
            }
            logger.info("Listening at \(address) with \(reactors) reactors, protocol \(service.served.name); \(service.served.summary)")
        }
        let plan = server.descriptorPlan
        if let asked = plan.clampedFrom {
            logger.warning("--max-connections \(asked) is more than the descriptors allow: lowered to \(plan.maxConnections) (raise the limit with ulimit -n, or LimitNOFILE= under systemd)")
        }
        logger.info("At most \(plan.maxConnections) client connections; descriptors: limit \(plan.limit), \(plan.fixedReserve) reserved for the daemon itself\(plan.spillFiles > 0 ? ", \(plan.spillFiles) for spill files" : "")")
        if let adminAddress = server.adminAddress {
            logger.info("Admin listener at \(adminAddress): /metrics, /healthz, /ready")
        }
        let exit: DaemonExit
        do {
            exit = try server.runUntilSignalled { snapshot in
                logger.info("Counters:", metadata: totalsMetadata(snapshot))
            }
        } catch {
            throw CommandFailure(message: error.description)
        }
        // Whatever --log-level says: the totals are what an operator reads last.
        SixteenLogHandler.emit(
            level: .info, label: logger.label, message: "Stopped. Totals:", metadata: totalsMetadata(exit.totals), format: logFormat)
        if exit.status != 0 {
            fflush(nil)
            Glibc.exit(exit.status)
        }
    }
}

/// `PROTOCOL:PORT`, as `--listen` takes it.
struct ListenSpecification: ExpressibleByArgument {
    let name: ServerProtocolName
    let port: Int

    init?(argument: String) {
        let parts = argument.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let name = ServerProtocolName(rawValue: String(parts[0])),
              let port = Int(parts[1]), (0...65535).contains(port) else { return nil }
        self.name = name
        self.port = port
    }
}

/// The totals as log metadata: one field per counter and gauge.
func totalsMetadata(_ snapshot: MetricsSnapshot) -> Logger.Metadata {
    var metadata: Logger.Metadata = [:]
    for (key, value) in snapshot.totals { metadata[key] = .stringConvertible(value) }
    return metadata
}

/// `$TMPDIR` if set, else `/tmp`.
func defaultSpillDirectory() -> String {
    if let value = getenv("TMPDIR"), value.pointee != 0 { return String(cString: value) }
    return "/tmp"
}
