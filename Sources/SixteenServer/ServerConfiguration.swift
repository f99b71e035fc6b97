import Reactor
import SixteenProtocol

/// Everything `sixteen server` can be told.
public struct ServerConfiguration: Sendable, Equatable {
    /// The interface to listen on: `""`, `0.0.0.0` or `::` for every one, or an address or name.
    public var host: String
    /// The TCP port; 0 takes a free one.
    public var port: Int
    /// Reactor threads, each with its own loop and `SO_REUSEPORT` listener.
    public var reactors: Int
    /// Per-session deadlines.
    public var timeouts: SixteenTimeouts
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
        host: String = "127.0.0.1",
        port: Int = 1060,
        reactors: Int = onlineProcessorCount(),
        timeouts: SixteenTimeouts = SixteenTimeouts(),
        shutdownTimeout: Duration = .seconds(5),
        acceptBatch: Int = 64,
        backlog: Int32 = 4096,
        readBufferSize: Int = 64 * 1024
    ) {
        self.host = host
        self.port = port
        self.reactors = reactors
        self.timeouts = timeouts
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
        }
    }
}
