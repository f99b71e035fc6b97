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
}

/// The number of processors online, at least 1.
public func onlineProcessorCount() -> Int {
    max(1, sysconf(Int32(_SC_NPROCESSORS_ONLN)))
}

/// Blocks the termination signals in the calling thread, so that only the
/// thread running the default loop (which watches them) receives them.
public func blockTerminationSignals() {
    var set = sigset_t()
    sigemptyset(&set)
    for signal in [SIGINT, SIGTERM, SIGHUP, SIGQUIT] { sigaddset(&set, signal) }
    pthread_sigmask(SIG_BLOCK, &set, nil)
}
