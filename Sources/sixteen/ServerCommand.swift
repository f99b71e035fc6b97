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
            listener serves /metrics (Prometheus), /healthz and /ready. Signals: SIGINT or SIGTERM drains \
            (after --drain-delay, while /ready answers 503), a second one or SIGQUIT stops at once, SIGUSR1 \
            logs every counter, SIGUSR2 upgrades to the binary on disk (it takes the listening sockets, then \
            this process drains), SIGHUP is reserved.
            """
    )

    @Option(name: .customLong("protocol"), help: "The protocol: sixteen or upper (default: sixteen).")
    var serverProtocol: ServerProtocolName?

    @Argument(help: ArgumentHelp(
        "The interface to listen on: \"\" (or 0.0.0.0, or ::) for every interface, or an address or name.",
        valueName: "host"))
    var host: String = "127.0.0.1"

    @Option(name: .short, parsing: .unconditional, help: ArgumentHelp("The TCP port; 0 takes a free one (default: 1060).", valueName: "port"),
            transform: listeningPort)
    var port: Int?

    @Option(name: .customLong("listen"), help: ArgumentHelp(
        "Serve PROTOCOL on PORT; repeat to serve both protocols from one daemon (instead of --protocol and -p).",
        valueName: "protocol:port"), transform: ListenSpecification.parse)
    var listen: [ListenSpecification] = []

    @Option(parsing: .unconditional, help: ArgumentHelp("Reactor threads per protocol, each with its own event loop and SO_REUSEPORT listener (default: the number of cores).", valueName: "n"),
            transform: wholeNumber(in: 1...1024))
    var reactors: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("sixteen: seconds a client has to deliver its whole 16-octet request (default: 10).", valueName: "seconds"),
            transform: Seconds.positive)
    var requestTimeout: Seconds?

    @Option(parsing: .unconditional, help: ArgumentHelp("sixteen: seconds to write the reply, and again to wait for the client's EOF after it (default: 2).", valueName: "seconds"),
            transform: Seconds.positive)
    var lingerTimeout: Seconds?

    @Option(parsing: .unconditional, help: ArgumentHelp("upper: seconds without progress before a session is closed (default: 60).", valueName: "seconds"),
            transform: Seconds.positive)
    var idleTimeout: Seconds?

    @Option(parsing: .unconditional, help: ArgumentHelp("upper: while a client leaves output unread, the octets it must send per --idle-timeout for that to count as progress (default: 16K).", valueName: "size"),
            transform: ByteCount.parser(minimum: 1))
    var minProgress: ByteCount?

    @Option(parsing: .unconditional, help: ArgumentHelp("upper: the most output one client may leave unread before it is closed (default: 2G).", valueName: "size"),
            transform: ByteCount.parser(minimum: 1))
    var maxPending: ByteCount?

    @Option(parsing: .unconditional, help: ArgumentHelp("upper: output held in memory per connection before it spills to a file; 0 spills whatever the socket does not take at once (default: 256K).", valueName: "size"),
            transform: ByteCount.parser(minimum: 0))
    var highWaterMark: ByteCount?

    @Option(parsing: .unconditional, help: ArgumentHelp("upper: output held in memory by all connections together, split among the reactors; at least one 64K chunk per reactor (default: 16M).", valueName: "size"),
            transform: ByteCount.parser(minimum: 64 << 10))
    var memoryBudget: ByteCount?

    @Option(help: ArgumentHelp("upper: the directory for spill files (default: $TMPDIR, else /tmp).", valueName: "directory"))
    var spillDir: String?

    @Option(parsing: .unconditional, help: ArgumentHelp("upper: disk space all spill files together may take (default: half the free space of --spill-dir at start-up, at most 8G).", valueName: "size"),
            transform: ByteCount.parser(minimum: 1 << 20))
    var maxSpill: ByteCount?

    @Option(parsing: .unconditional, help: ArgumentHelp("upper: seconds a session whose spill file cannot take room stops reading and retries, before it is closed (default: 5).", valueName: "seconds"),
            transform: Seconds.positive)
    var spillRetry: Seconds?

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds sessions in flight may take to finish after SIGINT or SIGTERM (default: 5).", valueName: "seconds"),
            transform: Seconds.zeroOrMore)
    var shutdownTimeout = Seconds(5)

    @Option(parsing: .unconditional, help: ArgumentHelp("Behind a balancer: seconds to go on accepting after SIGINT or SIGTERM while /ready answers 503, before the listeners close and the drain begins; longer than the balancer's health check takes to mark the daemon down (default: 0).", valueName: "seconds"),
            transform: Seconds.zeroOrMore)
    var drainDelay = Seconds(0)

    @Option(parsing: .unconditional, help: ArgumentHelp("Connections accepted per listener wake-up at most (default: 64).", valueName: "n"),
            transform: wholeNumber(in: 1...65536))
    var acceptBatch = 64

    @Option(name: .customLong("max-connections-per-ip"), parsing: .unconditional, help: ArgumentHelp("Connections one client address may hold at once; more are closed as soon as they are accepted, and counted (default: no such cap).", valueName: "n"),
            transform: wholeNumber(in: 1...Int(Int32.max)))
    var maxConnectionsPerAddress: Int?

    @Option(parsing: .unconditional, help: ArgumentHelp("Client connections open at once at most, over every service; the rest wait in the listen queue (default: what the descriptor limit allows after the daemon's own reserve).", valueName: "n"),
            transform: wholeNumber(in: 1...Int(Int32.max)))
    var maxConnections: Int?

    @Flag(help: ArgumentHelp("Behind a balancer: every connection must start with a PROXY protocol header, v1 or v2 (HAProxy's send-proxy, send-proxy-v2); one without a valid header is closed and counted. Logs and --max-connections-per-ip then use the client's address from the header; v2 LOCAL connections (health checks) count as health_check. Off by default: a header is then never parsed."))
    var proxyProtocol = false

    @Option(help: ArgumentHelp("Serve /metrics, /healthz and /ready over HTTP on HOST:PORT (port 0 takes a free one; the log says which). Off by default.", valueName: "host:port"),
            transform: HostAndPort.parser(ports: 0...65535))
    var admin: HostAndPort?

    @Option(help: ArgumentHelp("Started as root: the user to serve as, once the listeners are bound (default: nobody); root keeps root, with a warning.", valueName: "name"))
    var user: String?

    @Option(help: "Log level: debug, info, notice, warning, error or critical; at debug, each session logs the book's lines.")
    var logLevel: LogLevel = .info

    @Option(help: "Log format: text, or json (one object per line, for journald and log shippers).")
    var logFormat: LogFormat = .text

    /// The protocols this run serves.
    private var served: Set<ServerProtocolName> {
        listen.isEmpty ? [serverProtocol ?? .sixteen] : Set(listen.map(\.name))
    }

    func validate() throws {
        if !listen.isEmpty {
            guard serverProtocol == nil, port == nil else {
                throw ValidationError("--listen replaces --protocol and -p: give one or the other")
            }
            guard Set(listen.map(\.name)).count == listen.count else {
                throw ValidationError("--listen: each protocol at most once")
            }
        }
        let options: [(String, ServerProtocolName, Bool)] = [
            ("--request-timeout", .sixteen, requestTimeout != nil), ("--linger-timeout", .sixteen, lingerTimeout != nil),
            ("--idle-timeout", .upper, idleTimeout != nil), ("--min-progress", .upper, minProgress != nil),
            ("--max-pending", .upper, maxPending != nil), ("--high-water-mark", .upper, highWaterMark != nil),
            ("--memory-budget", .upper, memoryBudget != nil), ("--spill-dir", .upper, spillDir != nil),
            ("--max-spill", .upper, maxSpill != nil), ("--spill-retry", .upper, spillRetry != nil),
        ]
        for (option, owner, given) in options where given && !served.contains(owner) {
            let speaks = served.map(\.rawValue).sorted().joined(separator: " and ")
            throw ValidationError("\(option) is an option of the \(owner.rawValue) protocol, and this server speaks only \(speaks) (--protocol \(owner.rawValue), or --listen \(owner.rawValue):PORT)")
        }
        let highWater = highWaterMark?.value ?? 256 << 10
        let budget = memoryBudget?.value ?? 16 << 20
        guard highWater <= budget else {
            throw ValidationError("--high-water-mark \(ByteCount.describe(highWater)) is more than --memory-budget \(ByteCount.describe(budget)): no connection could hold it")
        }
        let reactorCount = reactors ?? onlineProcessorCount()
        guard budget / reactorCount >= 64 << 10 else {
            throw ValidationError("--memory-budget \(ByteCount.describe(budget)) is less than one 64K chunk for each of the \(reactorCount) reactors")
        }
    }

    /// What to serve where: `--listen`, or `--protocol` on `-p`.
    var services: [Service] {
        if !listen.isEmpty { return listen.map { Service(configuration(of: $0.name), port: $0.port) } }
        return [Service(configuration(of: serverProtocol ?? .sixteen), port: port ?? 1060)]
    }

    func configuration(of name: ServerProtocolName) -> ProtocolConfiguration {
        switch name {
        case .sixteen:
            let defaults = SixteenTimeouts()
            return .sixteen(SixteenTimeouts(
                request: requestTimeout?.duration ?? defaults.request, linger: lingerTimeout?.duration ?? defaults.linger))
        case .upper:
            let limits = UpperLimits()
            let output = OutputLimits()
            return .upper(UpperConfiguration(
                limits: UpperLimits(
                    idle: idleTimeout?.duration ?? limits.idle, maxPending: maxPending?.value ?? limits.maxPending,
                    holdProgress: minProgress?.value ?? limits.holdProgress),
                output: OutputLimits(
                    highWaterMark: highWaterMark?.value ?? output.highWaterMark, memoryBudget: memoryBudget?.value ?? output.memoryBudget,
                    spillDirectory: spillDir ?? defaultSpillDirectory(), maxSpill: maxSpill?.value,
                    spillRetry: spillRetry?.duration ?? output.spillRetry)))
        }
    }

    func run() throws {
        let logger = makeLogger(level: logLevel.level, format: logFormat)
        // The connection cap comes from the descriptor limit: take all the
        // hard limit allows.
        DescriptorLimit.raise()
        // Listening sockets handed over by systemd or by the process this one
        // upgrades, and where to tell that process it is ready.
        let inherited = ServiceManager.takeListeningSockets().map { InheritedListener(fd: $0.fd, name: $0.name) }
        let readyDescriptor = ServiceManager.takeReadyDescriptor()
        var configuration = ServerConfiguration(
            services: services,
            host: host,
            reactors: reactors ?? onlineProcessorCount(),
            shutdownTimeout: shutdownTimeout.duration,
            acceptBatch: acceptBatch,
            admin: admin.map { AdminConfiguration(host: $0.host, port: $0.port) },
            maxConnections: maxConnections,
            maxConnectionsPerAddress: maxConnectionsPerAddress
        )
        configuration.inherited = inherited
        configuration.proxyProtocol = proxyProtocol
        configuration.drainDelay = drainDelay.duration
        let server: Server
        do {
            server = try Server(configuration: configuration, logger: logger)
            let account = try dropPrivileges()
            try server.prepare()
            // Said once nothing more can fail at start-up: a failure is one line.
            if let account {
                if account.uid == 0 {
                    logger.warning("Serving as root (--user \(account.name)): every flaw becomes the whole machine's; prefer an unprivileged user")
                } else {
                    logger.info("Serving as user \(account.name) (uid \(account.uid), gid \(account.gid))")
                }
            }
        } catch let failure as CommandFailure {
            throw failure
        } catch let error as ServerError {
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
            logger.info("Listening at \(address) with \(count(configuration.reactors, "reactor")), protocol \(service.served.name); \(service.served.summary(proxied: configuration.proxyProtocol))")
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
            exit = try server.runUntilSignalled(supervision: Supervision(readyDescriptor: readyDescriptor)) { snapshot in
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

extension ServerCommand {
    /// Started as root, the listeners bound: become `--user` (nobody by
    /// default), before any thread starts and before the spill directory is
    /// checked, so that it is checked as the user who will write there.
    /// Returns the account served as when started as root.
    func dropPrivileges() throws -> Privileges.Account? {
        guard Privileges.isRoot else {
            if let user, user != "root", Privileges.account(named: user)?.uid != geteuid() {
                throw CommandFailure(message: "--user \(user) needs the daemon to be started as root")
            }
            return nil
        }
        let name = user ?? "nobody"
        guard let account = Privileges.account(named: name) else {
            throw CommandFailure(message: Privileges.Failure.noSuchUser(name).description)
        }
        if account.uid != 0, let failure = Privileges.become(account) {
            throw CommandFailure(message: failure.description)
        }
        return account
    }
}

/// `PROTOCOL:PORT`, as `--listen` takes it.
struct ListenSpecification: Sendable {
    let name: ServerProtocolName
    let port: Int

    static func parse(_ text: String) throws -> ListenSpecification {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 2, let name = ServerProtocolName(rawValue: String(parts[0])),
              let port = Int(parts[1]), (0...65535).contains(port) else {
            throw InvalidValue("give PROTOCOL:PORT, with sixteen or upper and a port from 0 to 65535")
        }
        return ListenSpecification(name: name, port: port)
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
