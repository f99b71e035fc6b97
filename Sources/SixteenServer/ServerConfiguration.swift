import Logging
import Reactor
import SixteenProtocol

/// Where `upper` sessions keep output their clients have not read yet.
public struct OutputLimits: Sendable, Equatable {
    /// Octets one connection may hold in memory before spilling to a file.
    public var highWaterMark: Int
    /// Octets all connections together may hold in memory (split evenly
    /// among the reactors); past it, output spills even under the mark.
    public var memoryBudget: Int
    /// The directory for spill files (unnamed: they vanish with the session).
    public var spillDirectory: String
    /// Disk space all spill files together may take; nil: half the free
    /// space of the spill directory's file system at start-up, at most 8 GiB.
    public var maxSpill: Int?
    /// How long a session whose spill file cannot take room stops reading
    /// and retries, before it is closed (`storage`).
    public var spillRetry: Duration

    public init(
        highWaterMark: Int = 256 * 1024, memoryBudget: Int = 16 << 20, spillDirectory: String = "/tmp",
        maxSpill: Int? = nil, spillRetry: Duration = .seconds(5)
    ) {
        self.highWaterMark = highWaterMark
        self.memoryBudget = memoryBudget
        self.spillDirectory = spillDirectory
        self.maxSpill = maxSpill
        self.spillRetry = spillRetry
    }
}

/// Everything the `upper` protocol is configured with.
public struct UpperConfiguration: Sendable, Equatable {
    /// Per-session limits (idle timeout, max pending).
    public var limits: UpperLimits
    /// Where pending output waits: memory, then spill files.
    public var output: OutputLimits

    public init(limits: UpperLimits = UpperLimits(), output: OutputLimits = OutputLimits()) {
        self.limits = limits
        self.output = output
    }
}

/// The protocol a server speaks, with what only that protocol is configured
/// with. Each case is registered with its handler in `served`, below.
public enum ProtocolConfiguration: Sendable, Equatable {
    /// Listing 3-1: 16 octets in, `Farewell, client` out.
    case sixteen(SixteenTimeouts)
    /// Listing 3-2: every octet echoed uppercased, deadlock-proof.
    case upper(UpperConfiguration)

    /// The protocol's handler, type-erased; `proxied`: behind a PROXY
    /// header (`--proxy-protocol`). A new protocol is a session file, a
    /// handler file, and a case here with its line below.
    func served(proxied: Bool) -> ServedProtocol {
        switch self {
        case .sixteen(let timeouts): ServedProtocol(SixteenHandler.self, timeouts, proxied: proxied)
        case .upper(let configuration): ServedProtocol(UpperHandler.self, configuration, proxied: proxied)
        }
    }

    /// The protocol's name: the `protocol` label of its series.
    public var name: String { served(proxied: false).name }

    /// Its settings in a few words, for the start-up log.
    public func summary(proxied: Bool) -> String { served(proxied: proxied).summary }
}

/// A protocol's handler, with its configuration, behind one concrete type:
/// how the server checks it and builds a reactor for it.
struct ServedProtocol: Sendable {
    let name: String
    /// The outcomes its sessions can end with, `aborted` included.
    let outcomes: [SessionOutcome]
    /// Its own series, in cell order.
    let ownDeclarations: [SeriesDeclaration]
    let summary: String
    /// Checks the configuration and makes what the reactors share.
    let prepare: @Sendable (DescriptorPlan) throws(ServerError) -> PreparedProtocol

    /// `Handler`, or `Handler` behind a PROXY header.
    init<Handler: ProtocolHandler>(_ handler: Handler.Type, _ configuration: Handler.Configuration, proxied: Bool) {
        self = proxied ? ServedProtocol(ProxiedHandler<Handler>.self, configuration) : ServedProtocol(Handler.self, configuration)
    }

    private init<Handler: ProtocolHandler>(_ handler: Handler.Type, _ configuration: Handler.Configuration) {
        name = Handler.name
        summary = Handler.describe(configuration)
        outcomes = Handler.outcomes + [.aborted]
        ownDeclarations = Handler.Count.allCases.map(\.declaration)
        prepare = { plan throws(ServerError) in
            let shared = try Handler.prepare(configuration, plan: plan)
            return PreparedProtocol(
                makeReactor: { index, count, listener, settings, logger throws(ReactorError) in
                    try ServerReactor<Handler>(
                        index: index, reactorCount: count, listenerFD: listener, configuration: configuration,
                        shared: shared, settings: settings, logger: logger)
                },
                serviceMetrics: { Handler.serviceMetrics(shared) })
        }
    }
}

/// A protocol ready to serve: how to make each of its reactors, and the
/// series of what they share.
struct PreparedProtocol: Sendable {
    let makeReactor: @Sendable (_ index: Int, _ count: Int, _ listener: Int32, _ settings: ReactorSettings, _ logger: Logger)
        throws(ReactorError) -> any ServingReactor
    let serviceMetrics: @Sendable () -> [(SeriesDeclaration, Double)]
}

/// Where the admin listener binds (`--admin HOST:PORT`).
public struct AdminConfiguration: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// How long one admin request may take, from accept to the last octet of the response.
    public var requestTimeout: Duration
    /// Admin connections open at once at most; the rest wait in the listen queue.
    public var maxConnections: Int

    public init(host: String = "127.0.0.1", port: Int = 0, requestTimeout: Duration = .seconds(5), maxConnections: Int = 64) {
        self.host = host
        self.port = port
        self.requestTimeout = requestTimeout
        self.maxConnections = maxConnections
    }
}

/// One protocol the server speaks, on one port of its host.
public struct Service: Sendable, Equatable {
    /// The protocol, and its own settings.
    public var served: ProtocolConfiguration
    /// The TCP port; 0 takes a free one.
    public var port: Int

    public init(_ served: ProtocolConfiguration, port: Int) {
        self.served = served
        self.port = port
    }
}

/// Everything `sixteen server` can be told.
public struct ServerConfiguration: Sendable, Equatable {
    /// What the server speaks, where: each service has its own port and its
    /// own reactors; each protocol appears at most once.
    public var services: [Service]
    /// The interface to listen on: `""`, `0.0.0.0` or `::` for every one, or an address or name.
    public var host: String
    /// Reactor threads per service, each with its own loop and `SO_REUSEPORT` listener.
    public var reactors: Int
    /// How long in-flight sessions may take to finish after a shutdown request.
    public var shutdownTimeout: Duration
    /// Connections accepted per listener wake-up at most, so a flood of new
    /// connections cannot starve established ones.
    public var acceptBatch: Int
    /// The listen backlog (the kernel caps it at net.core.somaxconn).
    public var backlog: Int32
    /// Octets read per read call.
    public var readBufferSize: Int
    /// The admin listener (`/metrics`, `/healthz`, `/ready`); nil: none.
    public var admin: AdminConfiguration?
    /// The cap on open client connections, over every service; nil: what
    /// the descriptor limit allows after its reserve (see `DescriptorPlan`).
    public var maxConnections: Int?
    /// The most connections one client address may hold; nil: no such cap.
    public var maxConnectionsPerAddress: Int?
    /// Listening sockets handed over (socket activation, an upgrade): used
    /// instead of binding, by name.
    public var inherited: [InheritedListener] = []
    /// Every protocol connection starts with a PROXY header (v1 or v2),
    /// required (`--proxy-protocol`; see `ProxiedHandler`). The admin
    /// listener never takes one.
    public var proxyProtocol = false
    /// After SIGTERM or SIGINT, how long to go on accepting while `/ready`
    /// answers 503, before the listeners close and the drain begins: time
    /// for a balancer's health check to take this daemon out, so that no
    /// connection meets a closed port (`--drain-delay`).
    public var drainDelay: Duration = .zero

    /// One service: `served` on `port`.
    public init(
        served: ProtocolConfiguration = .sixteen(SixteenTimeouts()),
        host: String = "127.0.0.1",
        port: Int = 1060,
        reactors: Int = onlineProcessorCount(),
        shutdownTimeout: Duration = .seconds(5),
        acceptBatch: Int = 64,
        backlog: Int32 = 4096,
        readBufferSize: Int = 64 * 1024,
        admin: AdminConfiguration? = nil,
        maxConnections: Int? = nil,
        maxConnectionsPerAddress: Int? = nil
    ) {
        self.init(
            services: [Service(served, port: port)], host: host, reactors: reactors, shutdownTimeout: shutdownTimeout,
            acceptBatch: acceptBatch, backlog: backlog, readBufferSize: readBufferSize, admin: admin,
            maxConnections: maxConnections, maxConnectionsPerAddress: maxConnectionsPerAddress)
    }

    public init(
        services: [Service],
        host: String = "127.0.0.1",
        reactors: Int = onlineProcessorCount(),
        shutdownTimeout: Duration = .seconds(5),
        acceptBatch: Int = 64,
        backlog: Int32 = 4096,
        readBufferSize: Int = 64 * 1024,
        admin: AdminConfiguration? = nil,
        maxConnections: Int? = nil,
        maxConnectionsPerAddress: Int? = nil
    ) {
        precondition(!services.isEmpty, "a server needs a service")
        precondition(Set(services.map(\.served.name)).count == services.count, "each protocol at most once")
        self.services = services
        self.host = host
        self.reactors = reactors
        self.shutdownTimeout = shutdownTimeout
        self.acceptBatch = acceptBatch
        self.backlog = backlog
        self.readBufferSize = readBufferSize
        self.admin = admin
        self.maxConnections = maxConnections
        self.maxConnectionsPerAddress = maxConnectionsPerAddress
    }

    /// Whether any service keeps output in spill files.
    var spills: Bool {
        services.contains { if case .upper = $0.served { true } else { false } }
    }

    /// Whether `host` means every interface.
    public var listensEverywhere: Bool {
        host.isEmpty || host == "0.0.0.0" || host == "::"
    }
}

/// Why a server could not start. Each reads as one line for stderr.
public enum ServerError: Error, Equatable, CustomStringConvertible {
    case unresolvableHost(ResolutionError)
    case cannotListen(address: String, SocketError)
    case reactor(ReactorError)
    case unusableSpillDirectory(path: String, Errno)
    case tooFewDescriptors(DescriptorPlan)
    case notAListener(name: String)

    public var description: String {
        switch self {
        case .unresolvableHost(let error):
            return error.description
        case .cannotListen(let address, let error):
            var line = "cannot listen on \(address): \(error.errno)"
            switch error.errno.code {
            case Errno.addressInUse.code:
                line += " (another process is listening there; pick another port)"
            case 13 /* EACCES */:
                line += " (ports below 1024 need root or CAP_NET_BIND_SERVICE)"
            case 99 /* EADDRNOTAVAIL */:
                line += " (no interface has that address)"
            default:
                break
            }
            return line
        case .reactor(let error):
            return error.description
        case .unusableSpillDirectory(let path, _):
            return "cannot create spill files in \(path): \(UnnamedFile.explainFailure(in: path)) (choose another with --spill-dir)"
        case .notAListener(let name):
            return "the socket handed over as '\(name)' is not a listening TCP socket (check ListenStream= in the .socket unit)"
        case .tooFewDescriptors(let plan):
            return "too few descriptors: the limit is \(plan.limit) and the daemon itself needs \(plan.fixedReserve + plan.spillFiles) (raise it with ulimit -n, or LimitNOFILE= under systemd)"
        }
    }
}
