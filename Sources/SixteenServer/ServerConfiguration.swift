import Reactor
import SixteenProtocol

/// Which protocol a server speaks.
public enum ServerProtocol: String, Sendable, Equatable, CaseIterable {
    /// Listing 3-1: 16 octets in, `Farewell, client` out.
    case sixteen
    /// Listing 3-2: every octet echoed uppercased, deadlock-proof.
    case upper
}

/// Where `upper` sessions keep output their clients have not read yet.
public struct OutputLimits: Sendable, Equatable {
    /// Octets one connection may hold in memory before spilling to a file.
    public var highWaterMark: Int
    /// Octets all connections together may hold in memory (split evenly
    /// among the reactors); past it, output spills even under the mark.
    public var memoryBudget: Int
    /// The directory for spill files (unnamed: they vanish with the session).
    public var spillDirectory: String

    public init(highWaterMark: Int = 256 * 1024, memoryBudget: Int = 16 << 20, spillDirectory: String = "/tmp") {
        self.highWaterMark = highWaterMark
        self.memoryBudget = memoryBudget
        self.spillDirectory = spillDirectory
    }
}

/// Everything `sixteen server` can be told.
public struct ServerConfiguration: Sendable, Equatable {
    /// The protocol every connection speaks.
    public var serverProtocol: ServerProtocol
    /// The interface to listen on: `""`, `0.0.0.0` or `::` for every one, or an address or name.
    public var host: String
    /// The TCP port; 0 takes a free one.
    public var port: Int
    /// Reactor threads, each with its own loop and `SO_REUSEPORT` listener.
    public var reactors: Int
    /// Per-session deadlines of the `sixteen` protocol.
    public var timeouts: SixteenTimeouts
    /// Per-session limits of the `upper` protocol.
    public var upper: UpperLimits
    /// Pending output of the `upper` protocol: memory, then spill files.
    public var output: OutputLimits
    /// How long in-flight sessions may take to finish after a shutdown request.
    public var shutdownTimeout: Duration
    /// Connections accepted per listener wake-up at most, so a flood of new
    /// connections cannot starve established ones.
    public var acceptBatch: Int
    /// The listen backlog (the kernel caps it at net.core.somaxconn).
    public var backlog: Int32
    /// Octets read per read call.
    public var readBufferSize: Int

    public init(
        serverProtocol: ServerProtocol = .sixteen,
        host: String = "127.0.0.1",
        port: Int = 1060,
        reactors: Int = onlineProcessorCount(),
        timeouts: SixteenTimeouts = SixteenTimeouts(),
        upper: UpperLimits = UpperLimits(),
        output: OutputLimits = OutputLimits(),
        shutdownTimeout: Duration = .seconds(5),
        acceptBatch: Int = 64,
        backlog: Int32 = 4096,
        readBufferSize: Int = 64 * 1024
    ) {
        self.serverProtocol = serverProtocol
        self.host = host
        self.port = port
        self.reactors = reactors
        self.timeouts = timeouts
        self.upper = upper
        self.output = output
        self.shutdownTimeout = shutdownTimeout
        self.acceptBatch = acceptBatch
        self.backlog = backlog
        self.readBufferSize = readBufferSize
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

    public var description: String {
        switch self {
        case .unresolvableHost(let error):
            return error.description
        case .cannotListen(let address, let error):
            var line = "cannot listen on \(address): \(error.errno)"
            switch error.errno.code {
            case Errno.addressInUse.code:
                line += " (another process is listening there; pick another port with -p)"
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
        case .unusableSpillDirectory(let path, let errno):
            return "cannot create spill files in \(path): \(errno) (choose another with --spill-dir)"
        }
    }
}
