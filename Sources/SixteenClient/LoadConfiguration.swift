import Reactor
import SixteenProtocol

/// Everything `sixteen load` can be told.
public struct LoadConfiguration: Sendable {
    public var host: String
    public var port: Int
    public var mode: LoadMode
    /// Connections in flight.
    public var connections: Int
    /// Worker threads, each with its own loop.
    public var threads: Int
    /// Stop after this many sessions (all threads together)...
    public var sessions: Int?
    /// ...or after this long (after the warm-up).
    public var duration: Duration?
    /// Sessions ending in the first `warmup` are left out of the figures.
    public var warmup: Duration
    /// Open loop: sessions per second, spread evenly over the connections.
    /// Nil: closed loop (a connection starts its next session when the last ends).
    public var rate: Double?
    /// A session with no octet moving for this long fails as timed out.
    public var timeout: Duration
    /// The generator stops by itself at this point, whatever is in flight.
    public var hardDeadline: Duration
    /// Source addresses to spread connections over (empty: the kernel's choice).
    public var sources: [SocketAddress]
    /// Keep figures per interval of this length (for `--json`'s series and
    /// `--hlog`); nil: only the run's totals.
    public var interval: Duration?
    /// Begin when the wall clock reads this (`--start-at`), not at once.
    public var startAt: WallTime?

    public init(
        host: String, port: Int, mode: LoadMode, connections: Int, threads: Int,
        sessions: Int?, duration: Duration?, warmup: Duration = .zero, rate: Double? = nil,
        timeout: Duration = .seconds(10), hardDeadline: Duration? = nil, sources: [SocketAddress] = [],
        interval: Duration? = nil, startAt: WallTime? = nil
    ) {
        self.host = host
        self.port = port
        self.mode = mode
        self.connections = connections
        self.threads = max(1, min(threads, connections))
        self.sessions = sessions
        self.duration = duration
        self.warmup = warmup
        self.rate = rate
        self.timeout = timeout
        self.sources = sources
        self.interval = interval
        self.startAt = startAt
        if let hardDeadline {
            self.hardDeadline = hardDeadline
        } else if let duration {
            self.hardDeadline = warmup + duration + timeout * 2 + .seconds(5)
        } else {
            self.hardDeadline = .seconds(600)
        }
    }

    /// Parses `127.0.0.1-127.0.0.8` (or one address) into IPv4 source addresses.
    public static func parseSources(_ text: String) -> [SocketAddress]? {
        let parts = text.split(separator: "-", maxSplits: 1).map(String.init)
        guard let first = parts.first.flatMap(ipv4), let last = (parts.count == 2 ? ipv4(parts[1]) : ipv4(parts[0])),
              first <= last, last - first < 65536 else { return nil }
        return (first...last).map { value in
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_addr.s_addr = value.bigEndian
            return .v4(address)
        }
    }

    private static func ipv4(_ text: String) -> UInt32? {
        let octets = text.split(separator: ".", omittingEmptySubsequences: false).compactMap { UInt32($0) }
        guard octets.count == 4, octets.allSatisfy({ $0 < 256 }) else { return nil }
        return octets.reduce(0) { $0 << 8 | $1 }
    }
}

#if canImport(Glibc)
import Glibc
#endif
