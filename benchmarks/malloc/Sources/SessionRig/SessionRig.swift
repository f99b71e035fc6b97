// The server-and-client rig shared by the `Sessions` benchmark and the
// `session-loop` cross-check: an in-process `Server` and a blocking client
// that allocates nothing per session.

import Logging
import Reactor
import SixteenProtocol
import SixteenServer

#if canImport(Glibc)
import Glibc
#endif

/// Octets one `upper` session sends (and gets back uppercased).
public let upperStreamLength = 64 * 1024

/// One server and everything its client needs, allocated once in `start()`.
/// Only the benchmark's own thread runs sessions; the server runs on its
/// reactor thread.
public final class SessionRig: @unchecked Sendable {
    public enum Kind: Sendable { case sixteen, upper }

    public let kind: Kind
    /// Whether the server logs at `.debug` (into `DiscardingLogHandler`); the control.
    public let debugLogging: Bool
    private var server: Server?
    /// The server's address, copied once into stable memory.
    private let address = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)
    private var addressLength = socklen_t(0)
    /// What the client sends.
    private var request = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// What the server must answer.
    private var expected = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// Where the client reads the answer; larger than `expected`, so extra octets show.
    private var received = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    /// Sessions run, warm-up included; checked against the server's totals at the end.
    public private(set) var sessions = 0

    public init(kind: Kind, debugLogging: Bool = false) {
        self.kind = kind
        self.debugLogging = debugLogging
    }

    /// Starts the server and runs `warmUp` sessions against it.
    public func start(warmUp: Int) throws {
        switch kind {
        case .sixteen:
            request = Self.buffer(repeating: "Hi there, server", count: 16)
            expected = Self.buffer(repeating: "Farewell, client", count: 16)
        case .upper:
            request = Self.buffer(repeating: "capitalize this!", count: upperStreamLength)
            expected = Self.buffer(repeating: "CAPITALIZE THIS!", count: upperStreamLength)
        }
        received = .allocate(byteCount: expected.count + 4096, alignment: 16)

        var logger = Logger(label: "sixteen-malloc-benchmark") { _ in DiscardingLogHandler() }
        logger.logLevel = debugLogging ? .debug : .critical
        let configuration = ServerConfiguration(
            served: kind == .sixteen ? .sixteen(SixteenTimeouts()) : .upper(UpperConfiguration()),
            host: "127.0.0.1",
            port: 0,
            reactors: 1
        )
        let server = try Server(configuration: configuration, logger: logger)
        try server.start()
        self.server = server

        address.initialize(to: sockaddr_storage())
        addressLength = server.address.withSockAddr { sockaddr, length in
            UnsafeMutableRawPointer(address).copyMemory(from: sockaddr, byteCount: Int(length))
            return length
        }

        for _ in 0..<warmUp {
            session()
        }
    }

    /// Shuts the server down and checks its totals against the sessions run.
    public func stop() {
        guard let server else { return }
        server.requestShutdown()
        let stats = server.wait()
        self.server = nil
        switch kind {
        case .sixteen:
            precondition(
                stats.accepted == sessions && stats.sessions(.replied) == sessions && stats.ended == sessions,
                "server totals do not match the \(sessions) sessions run: \(stats.totalsLine)")
        case .upper:
            precondition(
                stats.accepted == sessions && stats.sessions(.replied) == sessions && stats.ended == sessions
                    && stats.octetsSent == sessions * upperStreamLength,
                "server totals do not match the \(sessions) streams run: \(stats.totalsLine)")
        }
        request.deallocate()
        expected.deallocate()
        received.deallocate()
        address.deinitialize(count: 1)
    }

    // MARK: One session (allocates nothing)

    /// The book's `tcp_sixteen.py` client: send `Hi there, server`, read
    /// `Farewell, client` and then EOF, close.
    @inline(never)
    public func sixteenSession() {
        let fd = connectBlocking()
        sendAll(fd, UnsafeRawBufferPointer(request))
        let count = readToEnd(fd)
        precondition(count == expected.count && memcmp(received.baseAddress!, expected.baseAddress!, count) == 0,
                     "wrong reply")
        Socket.close(fd)
        sessions &+= 1
    }

    /// The book's deadlock client, 64 KiB of `capitalize this!`: send it all,
    /// half-close, read the uppercase echo to EOF, close.
    @inline(never)
    public func upperSession() {
        let fd = connectBlocking()
        sendAll(fd, UnsafeRawBufferPointer(request))
        precondition(Socket.shutdownWrite(fd) == nil, "shutdown(SHUT_WR) failed")
        let count = readToEnd(fd)
        precondition(count == expected.count && memcmp(received.baseAddress!, expected.baseAddress!, count) == 0,
                     "wrong echo")
        Socket.close(fd)
        sessions &+= 1
    }

    /// One session of this rig's kind.
    @inline(__always)
    public func session() {
        switch kind {
        case .sixteen: sixteenSession()
        case .upper: upperSession()
        }
    }

    @inline(__always)
    private func connectBlocking() -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        precondition(fd >= 0, "socket() failed")
        let rc = UnsafeRawPointer(address).withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, addressLength)
        }
        precondition(rc == 0, "connect() failed")
        return fd
    }

    @inline(__always)
    private func sendAll(_ fd: Int32, _ octets: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < octets.count {
            switch Socket.send(fd, UnsafeRawBufferPointer(rebasing: octets[offset...])) {
            case .wrote(let count): offset += count
            case .wouldBlock, .failed: preconditionFailure("send failed")
            }
        }
    }

    /// Reads until EOF into `received`; the number of octets read.
    @inline(__always)
    private func readToEnd(_ fd: Int32) -> Int {
        var count = 0
        while true {
            precondition(count < received.count, "server sent more than expected")
            switch Socket.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: received[count...])) {
            case .read(let n): count += n
            case .endOfInput: return count
            case .wouldBlock, .failed: preconditionFailure("read failed")
            }
        }
    }

    /// `pattern` repeated to `count` octets, in memory that never moves.
    private static func buffer(repeating pattern: String, count: Int) -> UnsafeMutableRawBufferPointer {
        let octets = Array(pattern.utf8)
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        for index in 0..<count {
            buffer[index] = octets[index % octets.count]
        }
        return buffer
    }
}

/// A log handler that builds nothing and prints nothing. The server still
/// formats each message it logs (that is the caller's work), which is what
/// the control benchmark counts.
public struct DiscardingLogHandler: LogHandler {
    public var logLevel: Logger.Level = .critical
    public var metadata: Logger.Metadata = [:]

    public init() {}

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {}
}
