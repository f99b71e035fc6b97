#if canImport(Glibc)
import Glibc
#endif
import CLibEv

/// The service manager's side of the daemon (systemd's protocols, which
/// other supervisors speak too), implemented directly: libsystemd has no
/// static library, and each protocol is a few lines.
public enum ServiceManager {
    /// Sends one notification datagram (`READY=1`, `STATUS=…`) to
    /// `$NOTIFY_SOCKET`, a Unix datagram socket (`@name` is in the abstract
    /// namespace). Does nothing without `$NOTIFY_SOCKET`; returns false when
    /// the socket is set but the send failed.
    @discardableResult
    public static func notify(_ message: String, socket path: String? = environment("NOTIFY_SOCKET")) -> Bool {
        guard let path, !path.isEmpty else { return true }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        var bytes = Array(path.utf8)
        let abstract = bytes.first == UInt8(ascii: "@")
        if abstract { bytes[0] = 0 }
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: bytes) }
        let length = socklen_t(MemoryLayout<sa_family_t>.size + bytes.count + (abstract ? 0 : 1))
        let fd = socket(AF_UNIX, SIXTEEN_SOCK_DGRAM | SIXTEEN_SOCK_CLOEXEC, 0)
        guard fd >= 0 else { return false }
        defer { Glibc.close(fd) }
        var payload = Array(message.utf8)
        let sent = withUnsafePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { target in
                sendto(fd, &payload, payload.count, SIXTEEN_MSG_NOSIGNAL, target, length)
            }
        }
        return sent == payload.count
    }

    /// How often to send `WATCHDOG=1` (half of `$WATCHDOG_USEC`), when the
    /// watchdog is on for this process (`$WATCHDOG_PID`, if set, is ours).
    public static var watchdogInterval: Duration? {
        guard let text = environment("WATCHDOG_USEC"), let usec = Int64(text), usec > 0 else { return nil }
        if let pid = environment("WATCHDOG_PID"), pid != String(getpid()) { return nil }
        return .microseconds(usec / 2)
    }

    /// The listening sockets passed at start: by an upgrading Sixteen
    /// (`SIXTEEN_LISTEN_FDS`, `SIXTEEN_LISTEN_FDNAMES`: its pid cannot be
    /// known before the spawn, so no pid check), or by socket activation
    /// (`LISTEN_PID` is ours, `LISTEN_FDS`, `LISTEN_FDNAMES`): descriptors
    /// 3… The variables are unset afterwards, so children do not take them
    /// for theirs, and the descriptors are made close-on-exec.
    public static func takeListeningSockets() -> [(fd: Int32, name: String)] {
        defer {
            for name in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "SIXTEEN_LISTEN_FDS", "SIXTEEN_LISTEN_FDNAMES"] { unsetenv(name) }
        }
        let count: Int32
        let names: [String]
        if let handed = environment("SIXTEEN_LISTEN_FDS"), let value = Int32(handed), value > 0 {
            count = value
            names = environment("SIXTEEN_LISTEN_FDNAMES")?.split(separator: ":", omittingEmptySubsequences: false).map(String.init) ?? []
        } else {
            guard let pid = environment("LISTEN_PID"), pid == String(getpid()),
                  let countText = environment("LISTEN_FDS"), let value = Int32(countText), value > 0 else { return [] }
            count = value
            names = environment("LISTEN_FDNAMES")?.split(separator: ":", omittingEmptySubsequences: false).map(String.init) ?? []
        }
        return (0..<count).map { index in
            let fd = 3 + index
            _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
            // Reactors accept until EAGAIN: a blocking listener would hold a
            // reactor in accept. (The flag is the socket's, shared with the
            // service manager, which only polls it.)
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
            return (fd, Int(index) < names.count ? names[Int(index)] : "unknown")
        }
    }

    /// Whether `fd` is a listening TCP socket.
    public static func isListeningStream(_ fd: Int32) -> Bool {
        var type: Int32 = 0
        var listening: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &length) == 0, type == SIXTEEN_SOCK_STREAM else { return false }
        length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &length) == 0 else { return false }
        return listening != 0
    }

    /// In a process started by an upgrade: the descriptor on which to say
    /// "ready" (`SIXTEEN_READY_FD`); the variable is unset.
    public static func takeReadyDescriptor() -> Int32? {
        defer { unsetenv("SIXTEEN_READY_FD") }
        guard let text = environment("SIXTEEN_READY_FD"), let fd = Int32(text), fd >= 3 else { return nil }
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        return fd
    }

    public static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}
