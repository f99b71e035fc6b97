#if canImport(Glibc)
import Glibc
#endif
import CLibEv

/// A plain POSIX thread, for running one event loop. (Foundation's `Thread`
/// is kept out of the daemon.)
public final class ReactorThread: @unchecked Sendable {
    private let thread: pthread_t
    private var joined = false

    private final class Body {
        let name: String
        let run: @Sendable () -> Void
        init(name: String, run: @escaping @Sendable () -> Void) {
            self.name = name
            self.run = run
        }
    }

    /// Starts `body` on a new thread named `name` (at most 15 bytes show in `top -H`).
    public init(name: String, _ body: @escaping @Sendable () -> Void) throws(ReactorError) {
        let context = Unmanaged.passRetained(Body(name: name, run: body)).toOpaque()
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, { context in
            let body = Unmanaged<Body>.fromOpaque(context!).takeRetainedValue()
            _ = pthread_setname_np(pthread_self(), String(body.name.utf8.prefix(15))!)
            body.run()
            return nil
        }, context)
        guard rc == 0 else {
            Unmanaged<Body>.fromOpaque(context).release()
            throw ReactorError("cannot start thread \(name): \(Errno(rc))")
        }
        self.thread = thread
    }

    /// Waits for the thread to end. Everything it wrote is visible afterwards.
    public func join() {
        guard !joined else { return }
        joined = true
        pthread_join(thread, nil)
    }

    /// Waits for the thread to end, at most `timeout`; whether it ended.
    public func join(timeout: Duration) -> Bool {
        guard !joined else { return true }
        var deadline = timespec()
        clock_gettime(CLOCK_REALTIME, &deadline)
        let (seconds, attoseconds) = timeout.components
        let total = Int64(deadline.tv_nsec) + attoseconds / 1_000_000_000
        deadline.tv_sec += Int(seconds) + Int(total / 1_000_000_000)
        deadline.tv_nsec = Int(total % 1_000_000_000)
        guard pthread_timedjoin_np(thread, nil, &deadline) == 0 else { return false }
        joined = true
        return true
    }
}

/// The number of processors online, at least 1.
public func onlineProcessorCount() -> Int {
    max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// Blocks `signals` in the calling thread (a reactor thread), so that only
/// the thread running the default loop, which watches them, receives them.
public func blockSignals(_ signals: [Int32]) {
    var set = sigset_t()
    sigemptyset(&set)
    for signal in signals { sigaddset(&set, signal) }
    pthread_sigmask(SIG_BLOCK, &set, nil)
}

/// Unblocks `signals` in the calling thread.
public func unblockSignals(_ signals: [Int32]) {
    var set = sigset_t()
    sigemptyset(&set)
    for signal in signals { sigaddset(&set, signal) }
    pthread_sigmask(SIG_UNBLOCK, &set, nil)
}

/// The real-time signals applications may use (glibc keeps the first few).
public var realtimeSignals: ClosedRange<Int32> {
    sixteen_sigrtmin()...sixteen_sigrtmax()
}

/// The process's limit on open descriptors (`RLIMIT_NOFILE`).
public enum DescriptorLimit {
    /// The soft limit now.
    public static var soft: Int {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return 1024 }
        return limit.rlim_cur >= rlim_t(Int32.max) ? Int(Int32.max) : Int(limit.rlim_cur)
    }

    /// The hard limit now.
    public static var hard: Int {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return 1024 }
        return limit.rlim_max >= rlim_t(Int32.max) ? Int(Int32.max) : Int(limit.rlim_max)
    }

    /// Raises the soft limit as far as the hard limit, or `target` if lower;
    /// returns the soft limit afterwards.
    @discardableResult
    public static func raise(to target: Int = .max) -> Int {
        var limit = rlimit()
        guard getrlimit(resource, &limit) == 0 else { return soft }
        let wanted = rlim_t(min(target, hard))
        if limit.rlim_cur < wanted {
            limit.rlim_cur = wanted
            _ = setrlimit(resource, &limit)
        }
        return soft
    }

    private static let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
}

/// Hands memory that `free` has taken back, but the allocator still holds,
/// to the kernel (`malloc_trim`): after a flood, so that RSS comes down.
public func returnFreeMemoryToTheSystem() {
    _ = malloc_trim(0)
}
