#if canImport(Glibc)
import Glibc
#endif
import Reactor
import SixteenProtocol

/// Why a client conversation failed. Each reads as one line for stderr.
public enum ClientError: Error, Equatable, CustomStringConvertible {
    case unresolvableHost(ResolutionError)
    case cannotConnect(address: String, Errno)
    case timedOut(doing: String, after: Duration)
    case shortReply(expected: Int, received: [UInt8])
    case connectionFailed(doing: String, Errno)

    public var description: String {
        switch self {
        case .unresolvableHost(let error):
            return error.description
        case .cannotConnect(let address, let errno):
            return "cannot connect to \(address): \(errno)"
        case .timedOut(let doing, let after):
            return "timed out after \(after) \(doing)"
        case .shortReply(let expected, let received):
            return "short reply: was expecting \(expected) bytes but only received \(received.count) "
                + "(\(pythonBytesLiteral(received))) before the server closed"
        case .connectionFailed(let doing, let errno):
            return "connection failed \(doing): \(errno)"
        }
    }
}

/// A TCP connection used in the book's blocking style (connect, send all,
/// receive exactly N), built on a nonblocking socket and `poll` so that one
/// overall deadline bounds every step.
public final class DeadlineConnection {
    public let fd: Int32
    public let peer: SocketAddress
    private let deadline: Int64
    private let timeout: Duration
    private var closed = false

    /// Connects to the first address of `host` that accepts, within
    /// `timeout`; from `source` (any port) if given.
    public init(host: String, port: Int, timeout: Duration, source: SocketAddress? = nil) throws(ClientError) {
        self.timeout = timeout
        deadline = MonotonicClock.nanoseconds() &+ timeout.nanoseconds
        let addresses: [SocketAddress]
        do {
            addresses = try SocketAddress.resolve(host: host, port: port, passive: false)
        } catch {
            throw .unresolvableHost(error)
        }
        var lastError = ClientError.cannotConnect(address: "\(host):\(port)", Errno(EHOSTUNREACH))
        for address in addresses {
            let fd: Int32
            do {
                fd = try Socket.makeTCP(family: address.family)
            } catch {
                throw .cannotConnect(address: address.description, error.errno)
            }
            if let source, source.withSockAddr({ bind(fd, $0, $1) }) != 0 {
                let error = Errno.current
                Socket.close(fd)
                throw .cannotConnect(address: address.description, error)
            }
            if let error = Socket.startConnect(fd, to: address) {
                Socket.close(fd)
                lastError = .cannotConnect(address: address.description, error)
                continue
            }
            do throws(ClientError) {
                try Self.wait(fd, for: Int16(POLLOUT), until: deadline, timeout: timeout, doing: "connecting to \(address)")
            } catch {
                Socket.close(fd)
                throw error
            }
            if let error = Socket.pendingError(fd) {
                Socket.close(fd)
                lastError = .cannotConnect(address: address.description, error)
                continue
            }
            self.fd = fd
            self.peer = address
            return
        }
        throw lastError
    }

    deinit {
        if !closed { Socket.close(fd) }
    }

    /// Ends our sending direction (the server reads EOF), keeping the reading one.
    public func shutdownWrite() {
        Socket.shutdownWrite(fd)
    }

    /// Closes at once with RST (`SO_LINGER` 0), as a crashed client would.
    public func abort() {
        guard !closed else { return }
        closed = true
        Socket.abort(fd)
    }

    /// This end's address (the book's "assigned socket name").
    public var localAddress: SocketAddress? { SocketAddress.local(of: fd) }

    /// Sends every octet, waiting for the socket as needed.
    public func sendAll(_ octets: [UInt8]) throws(ClientError) {
        var offset = 0
        while offset < octets.count {
            let outcome = octets.withUnsafeBytes { Socket.send(fd, UnsafeRawBufferPointer(rebasing: $0[offset...])) }
            switch outcome {
            case .wrote(let count): offset += count
            case .wouldBlock: try Self.wait(fd, for: Int16(POLLOUT), until: deadline, timeout: timeout, doing: "sending")
            case .failed(let errno): throw .connectionFailed(doing: "while sending", errno)
            }
        }
    }

    /// Receives exactly `count` octets, as the book's `recvall` does.
    public func receive(exactly count: Int) throws(ClientError) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: count)
        while received.count < count {
            let want = count - received.count
            let outcome = buffer.withUnsafeMutableBytes { Socket.read(fd, into: UnsafeMutableRawBufferPointer(rebasing: $0[..<want])) }
            switch outcome {
            case .read(let n): received += buffer[..<n]
            case .endOfInput: throw .shortReply(expected: count, received: received)
            case .wouldBlock: try Self.wait(fd, for: Int16(POLLIN), until: deadline, timeout: timeout, doing: "waiting for the reply")
            case .failed(let errno): throw .connectionFailed(doing: "while receiving", errno)
            }
        }
        return received
    }

    /// Reads until EOF (discarding nothing), for checking that the server closed.
    public func receiveUntilEnd(limit: Int = 1 << 20) throws(ClientError) -> [UInt8] {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while received.count <= limit {
            let outcome = buffer.withUnsafeMutableBytes { Socket.read(fd, into: $0) }
            switch outcome {
            case .read(let n): received += buffer[..<n]
            case .endOfInput: return received
            case .wouldBlock: try Self.wait(fd, for: Int16(POLLIN), until: deadline, timeout: timeout, doing: "waiting for the end of the reply")
            case .failed(let errno): throw .connectionFailed(doing: "while receiving", errno)
            }
        }
        return received
    }

    private static func wait(_ fd: Int32, for events: Int16, until deadline: Int64, timeout: Duration, doing: String) throws(ClientError) {
        while true {
            let left = deadline &- MonotonicClock.nanoseconds()
            if left <= 0 { throw .timedOut(doing: doing, after: timeout) }
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&entry, 1, Int32(min((left + 999_999) / 1_000_000, Int64(Int32.max))))
            if rc > 0 { return }
            if rc < 0 && errno != EINTR { throw .connectionFailed(doing: doing, .current) }
        }
    }
}

/// The book's client (Listing 3-1): connect, send the request, read exactly
/// 16 octets. `connected` hears the local address as soon as it is known.
public func exchangeSixteen(
    host: String,
    port: Int,
    request: [UInt8] = sixteenRequest,
    timeout: Duration = .seconds(10),
    connected: (SocketAddress?) -> Void = { _ in }
) throws(ClientError) -> [UInt8] {
    let connection = try DeadlineConnection(host: host, port: port, timeout: timeout)
    connected(connection.localAddress)
    try connection.sendAll(request)
    return try connection.receive(exactly: sixteenReply.count)
}
