#if canImport(Glibc)
import Glibc
#endif
import CLibEv

/// An `errno` value, printed the way `strerror` does.
public struct Errno: Error, Equatable, Hashable, Sendable, CustomStringConvertible {
    public let code: Int32
    public init(_ code: Int32) { self.code = code }
    /// The calling thread's current `errno`.
    public static var current: Errno { Errno(errno) }
    public var description: String { String(cString: strerror(code)) }

    public static let wouldBlock = Errno(EAGAIN)
    public static let connectionReset = Errno(ECONNRESET)
    public static let brokenPipe = Errno(EPIPE)
    public static let addressInUse = Errno(EADDRINUSE)
    public static let tooManyOpenFiles = Errno(EMFILE)
    public static let connectionRefused = Errno(ECONNREFUSED)
}

/// A failed socket call, with what we were doing when it failed.
public struct SocketError: Error, Equatable, Sendable, CustomStringConvertible {
    public let operation: String
    public let errno: Errno
    public init(_ operation: String, _ errno: Errno) {
        self.operation = operation
        self.errno = errno
    }
    public var description: String { "\(operation): \(errno)" }
}

/// The version of the libev the process runs with (`ev_version_major` and `_minor`).
public var libevVersion: String {
    "\(ev_version_major()).\(ev_version_minor())"
}
