#if canImport(Glibc)
import Glibc
#endif
import CLibEv

/// What a nonblocking read did. Every case is a normal outcome the caller
/// must handle; none is an exception.
public enum ReadOutcome: Equatable, Sendable {
    /// `count` octets (at least 1) were read.
    case read(Int)
    /// The peer has finished sending (it half-closed or closed).
    case endOfInput
    /// Nothing to read now; wait for readability.
    case wouldBlock
    /// The connection failed (reset, timed out, unreachable).
    case failed(Errno)
}

/// What a nonblocking write did.
public enum WriteOutcome: Equatable, Sendable {
    /// `count` octets (at least 1, possibly fewer than offered) were written.
    case wrote(Int)
    /// The send buffer is full; wait for writability.
    case wouldBlock
    /// The connection failed; `EPIPE` and `ECONNRESET` mean the peer is gone.
    case failed(Errno)
}

/// What a nonblocking accept did.
public enum AcceptOutcome: Equatable, Sendable {
    /// A new connection, already nonblocking and close-on-exec.
    case accepted(Int32)
    /// The backlog is empty.
    case wouldBlock
    /// A connection died in the backlog, or a signal interrupted: accept again.
    case retry
    /// The process or system ran out of descriptors (`EMFILE`, `ENFILE`) or
    /// buffers: the connection stays in the backlog and readiness persists.
    case outOfResources(Errno)
    /// Anything else; the listener may be unusable.
    case failed(Errno)
}

/// Socket calls with typed outcomes. None of them allocates. The ones a
/// session makes (accept, read, send) are inlinable: inlined into the
/// reactors, they cost no call of their own around the system call.
public enum Socket {
    @inlinable @inline(__always)
    public static func read(_ fd: Int32, into buffer: UnsafeMutableRawBufferPointer) -> ReadOutcome {
        while true {
            let n = Glibc.read(fd, buffer.baseAddress, buffer.count)
            if n > 0 { return .read(n) }
            if n == 0 { return .endOfInput }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return .failed(Errno(errno))
            }
        }
    }

    /// Sends with `MSG_NOSIGNAL`, so a vanished peer yields `EPIPE`, never SIGPIPE.
    @inlinable @inline(__always)
    public static func send(_ fd: Int32, _ octets: UnsafeRawBufferPointer) -> WriteOutcome {
        while true {
            let n = Glibc.send(fd, octets.baseAddress, octets.count, SIXTEEN_MSG_NOSIGNAL)
            if n >= 0 { return .wrote(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return .failed(Errno(errno))
            }
        }
    }

    /// Sends up to `count` octets of `file` from `offset` straight from the
    /// page cache (`sendfile`), without copying them through user space.
    @inline(__always)
    public static func sendFile(_ fd: Int32, from file: Int32, offset: Int64, count: Int) -> WriteOutcome {
        var position = off_t(offset)
        while true {
            let n = Glibc.sendfile(fd, file, &position, count)
            if n >= 0 { return .wrote(n) }
            switch errno {
            case EINTR: continue
            case EAGAIN, EWOULDBLOCK: return .wouldBlock
            default: return .failed(Errno(errno))
            }
        }
    }

    /// Accepts one connection; with `peer`, the kernel writes the client's
    /// address there (no `getpeername` needed).
    @inlinable @inline(__always)
    public static func accept(_ listener: Int32, peer: UnsafeMutablePointer<sockaddr_storage>? = nil) -> AcceptOutcome {
        let fd: Int32
        if let peer {
            var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
            fd = peer.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                accept4(listener, $0, &length, SIXTEEN_SOCK_NONBLOCK | SIXTEEN_SOCK_CLOEXEC)
            }
        } else {
            fd = accept4(listener, nil, nil, SIXTEEN_SOCK_NONBLOCK | SIXTEEN_SOCK_CLOEXEC)
        }
        if fd >= 0 { return .accepted(fd) }
        switch errno {
        case EAGAIN, EWOULDBLOCK: return .wouldBlock
        // Linux reports errors pending on the new socket through accept; the
        // listener is fine and the next connection may be too (accept(2)).
        case ECONNABORTED, EINTR, EPROTO, ENETDOWN, ENOPROTOOPT, EHOSTDOWN, ENONET,
             EHOSTUNREACH, EOPNOTSUPP, ENETUNREACH, EPERM:
            return .retry
        case EMFILE, ENFILE, ENOBUFS, ENOMEM: return .outOfResources(Errno(errno))
        default: return .failed(Errno(errno))
        }
    }

    /// Ends our sending direction: the peer reads EOF once it has everything.
    @discardableResult
    public static func shutdownWrite(_ fd: Int32) -> Errno? {
        Glibc.shutdown(fd, SIXTEEN_SHUT_WR) == 0 ? nil : .current
    }

    /// Another descriptor of the same socket, close-on-exec.
    public static func duplicate(_ fd: Int32) -> Result<Int32, Errno> {
        let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3)
        return copy >= 0 ? .success(copy) : .failure(.current)
    }

    public static func close(_ fd: Int32) {
        // Linux always releases the descriptor, even on EINTR: never retry.
        _ = Glibc.close(fd)
    }

    /// Closes with `SO_LINGER` 0, so the peer sees RST at once. For tests and
    /// for clients that want to abort.
    public static func abort(_ fd: Int32) {
        var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
        _ = setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
        _ = Glibc.close(fd)
    }

    /// The error pending on a socket (after a nonblocking connect).
    public static func pendingError(_ fd: Int32) -> Errno? {
        var code: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        if getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &length) != 0 { return .current }
        return code == 0 ? nil : Errno(code)
    }

    public static func setOption(_ fd: Int32, _ level: Int32, _ name: Int32, _ value: Int32) throws(SocketError) {
        var value = value
        if setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)) != 0 {
            throw SocketError("setsockopt(\(level), \(name))", .current)
        }
    }

    /// A new nonblocking, close-on-exec TCP socket for `family`.
    public static func makeTCP(family: Int32) throws(SocketError) -> Int32 {
        let fd = socket(family, SIXTEEN_SOCK_STREAM | SIXTEEN_SOCK_NONBLOCK | SIXTEEN_SOCK_CLOEXEC, 0)
        if fd < 0 { throw SocketError("socket", .current) }
        return fd
    }

    /// A listening socket on `address`. `reusePort` lets several listeners
    /// (one per reactor) share the port, with the kernel spreading
    /// connections across them.
    public static func listen(on address: SocketAddress, reusePort: Bool, backlog: Int32) throws(SocketError) -> Int32 {
        let fd = try makeTCP(family: address.family)
        do throws(SocketError) {
            try setOption(fd, SOL_SOCKET, SO_REUSEADDR, 1)
            if reusePort { try setOption(fd, SOL_SOCKET, SO_REUSEPORT, 1) }
            if address.family == AF_INET6, address.isUnspecified {
                // `::` means every interface, IPv4 too, whatever net.ipv6.bindv6only says.
                try setOption(fd, SIXTEEN_IPPROTO_IPV6, IPV6_V6ONLY, 0)
            }
            let rc = address.withSockAddr { bind(fd, $0, $1) }
            if rc != 0 { throw SocketError("bind", .current) }
            if Glibc.listen(fd, backlog) != 0 { throw SocketError("listen", .current) }
        } catch {
            Glibc.close(fd)
            throw error
        }
        return fd
    }

    /// Lets a socket bind a source address without reserving a port
    /// (`IP_BIND_ADDRESS_NO_PORT`): the port is chosen at connect time, per
    /// destination, so many connections can share one source address.
    /// Best effort: without it, binding still works, with fewer ports.
    public static func bindAddressWithoutPort(_ fd: Int32) {
        _ = try? setOption(fd, SIXTEEN_IPPROTO_IP, SIXTEEN_IP_BIND_ADDRESS_NO_PORT, 1)
    }

    /// Starts a nonblocking connect. `nil` means connected or in progress;
    /// wait for writability and read `pendingError` to learn which.
    public static func startConnect(_ fd: Int32, to address: SocketAddress) -> Errno? {
        let rc = address.withSockAddr { connect(fd, $0, $1) }
        if rc == 0 || errno == EINPROGRESS { return nil }
        return .current
    }
}
