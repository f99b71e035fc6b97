#if canImport(Glibc)
import Glibc
#endif

/// An IPv4 or IPv6 socket address.
public enum SocketAddress: Sendable, Equatable, CustomStringConvertible {
    case v4(sockaddr_in)
    case v6(sockaddr_in6)

    public var family: Int32 {
        switch self {
        case .v4: AF_INET
        case .v6: AF_INET6
        }
    }

    public var port: Int {
        switch self {
        case .v4(let a): Int(UInt16(bigEndian: a.sin_port))
        case .v6(let a): Int(UInt16(bigEndian: a.sin6_port))
        }
    }

    public func withPort(_ port: Int) -> SocketAddress {
        switch self {
        case .v4(var a): a.sin_port = UInt16(port).bigEndian; return .v4(a)
        case .v6(var a): a.sin6_port = UInt16(port).bigEndian; return .v6(a)
        }
    }

    /// `0.0.0.0` or `::`.
    public var isUnspecified: Bool {
        switch self {
        case .v4(let a): a.sin_addr.s_addr == 0
        case .v6(var a):
            withUnsafeBytes(of: &a.sin6_addr) { $0.allSatisfy { $0 == 0 } }
        }
    }

    /// The numeric host, as `inet_ntop` writes it.
    public var host: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        switch self {
        case .v4(var a): _ = inet_ntop(AF_INET, &a.sin_addr, &buffer, socklen_t(buffer.count))
        case .v6(var a): _ = inet_ntop(AF_INET6, &a.sin6_addr, &buffer, socklen_t(buffer.count))
        }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// As Python prints `getsockname()`: `('127.0.0.1', 1060)` or
    /// `('::1', 1060, 0, 0)`, so our lines match the book's transcript.
    public var pythonDescription: String {
        switch self {
        case .v4: "('\(host)', \(port))"
        case .v6(let a): "('\(host)', \(port), \(UInt32(bigEndian: a.sin6_flowinfo)), \(a.sin6_scope_id))"
        }
    }

    /// `127.0.0.1:1060` or `[::1]:1060`.
    public var description: String {
        switch self {
        case .v4: "\(host):\(port)"
        case .v6: "[\(host)]:\(port)"
        }
    }

    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        switch self {
        case .v4(var a):
            withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        case .v6(var a):
            withUnsafePointer(to: &a) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
            }
        }
    }

    /// Reads a `sockaddr_storage` filled in by the kernel.
    public init?(storage: sockaddr_storage) {
        var storage = storage
        switch Int32(storage.ss_family) {
        case AF_INET:
            self = withUnsafeBytes(of: &storage) { .v4($0.load(as: sockaddr_in.self)) }
        case AF_INET6:
            self = withUnsafeBytes(of: &storage) { .v6($0.load(as: sockaddr_in6.self)) }
        default:
            return nil
        }
    }

    /// The local address of a socket (`getsockname`).
    public static func local(of fd: Int32) -> SocketAddress? {
        query(fd, getsockname)
    }

    /// The peer address of a socket (`getpeername`).
    public static func peer(of fd: Int32) -> SocketAddress? {
        query(fd, getpeername)
    }

    private static func query(
        _ fd: Int32,
        _ call: (Int32, UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int32
    ) -> SocketAddress? {
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let rc = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { call(fd, $0, &length) }
        }
        return rc == 0 ? SocketAddress(storage: storage) : nil
    }

    /// Resolves `host` to addresses for a TCP socket on `port`.
    ///
    /// `""`, `"0.0.0.0"` and `"::"` mean every interface when `passive` (the
    /// book's `tcp_sixteen.py server ""`); `""` is IPv4's any address, as in
    /// the book. Names go through `getaddrinfo`, so `/etc/hosts` and DNS apply.
    public static func resolve(host: String, port: Int, passive: Bool) throws(ResolutionError) -> [SocketAddress] {
        if host.isEmpty {
            var any = sockaddr_in()
            any.sin_family = sa_family_t(AF_INET)
            any.sin_port = UInt16(port).bigEndian
            return [.v4(any)]
        }
        var hints = addrinfo()
        hints.ai_family = AF_UNSPEC
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        hints.ai_flags = passive ? AI_PASSIVE : AI_ADDRCONFIG
        var list: UnsafeMutablePointer<addrinfo>?
        let rc = getaddrinfo(host, String(port), &hints, &list)
        guard rc == 0, let first = list else {
            throw ResolutionError(host: host, reason: rc == EAI_SYSTEM ? Errno.current.description : String(cString: gai_strerror(rc)))
        }
        defer { freeaddrinfo(list) }
        var addresses: [SocketAddress] = []
        var cursor: UnsafeMutablePointer<addrinfo>? = first
        while let info = cursor {
            if let raw = info.pointee.ai_addr {
                var storage = sockaddr_storage()
                withUnsafeMutableBytes(of: &storage) {
                    $0.copyMemory(from: UnsafeRawBufferPointer(start: raw, count: Int(info.pointee.ai_addrlen)))
                }
                if let address = SocketAddress(storage: storage), !addresses.contains(address) {
                    addresses.append(address)
                }
            }
            cursor = info.pointee.ai_next
        }
        if addresses.isEmpty { throw ResolutionError(host: host, reason: "no IPv4 or IPv6 address") }
        return addresses
    }
}

/// A host name that does not resolve.
public struct ResolutionError: Error, Equatable, Sendable, CustomStringConvertible {
    public let host: String
    public let reason: String
    public var description: String { "cannot resolve host '\(host)': \(reason)" }
}

extension sockaddr_in: @retroactive Equatable {
    public static func == (lhs: sockaddr_in, rhs: sockaddr_in) -> Bool {
        lhs.sin_port == rhs.sin_port && lhs.sin_addr.s_addr == rhs.sin_addr.s_addr
    }
}

extension sockaddr_in6: @retroactive Equatable {
    public static func == (lhs: sockaddr_in6, rhs: sockaddr_in6) -> Bool {
        var l = lhs.sin6_addr, r = rhs.sin6_addr
        let same = withUnsafeBytes(of: &l) { a in withUnsafeBytes(of: &r) { b in a.elementsEqual(b) } }
        return same && lhs.sin6_port == rhs.sin6_port && lhs.sin6_scope_id == rhs.sin6_scope_id
    }
}
