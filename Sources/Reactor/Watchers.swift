import CLibEv

// The timer, signal and async watchers' C callbacks hold the watcher they
// were handed for the length of the call (`takeUnretainedValue` retains
// it), so a handler may drop the last reference to its own watcher. The
// I/O watcher's callback runs on every accepting wake-up of a listener, so
// it borrows its watcher instead, and traps if the handler lets it go.

/// A stand-alone I/O watcher for the few long-lived descriptors of a loop
/// (listeners). Its callback is a closure set once; calling it allocates and
/// counts nothing: the watcher is lent to the call, not retained. So a
/// handler must not release the last reference to its own watcher (stop it
/// and let it go later); if one does, the watcher's deinit traps rather
/// than free the handler while it runs. For per-connection watchers use
/// `PooledIO`.
public final class IOWatcher {
    private let raw: UnsafeMutablePointer<ev_io>
    private let loop: EventLoop
    private let handler: (IOEvents) -> Void
    /// Whether `handler` is running. One thread; no access spans a call
    /// that could reach it again.
    @exclusivity(unchecked) private var calling = false

    public init(loop: EventLoop, fd: Int32, events: IOEvents, handler: @escaping (IOEvents) -> Void) {
        self.loop = loop
        self.handler = handler
        raw = .allocate(capacity: 1)
        raw.initialize(to: ev_io())
        sixteen_ev_io_init(raw, { _, watcher, revents in
            Unmanaged<IOWatcher>.fromOpaque(watcher!.pointee.data!)._withUnsafeGuaranteedRef { this in
                this.calling = true
                this.handler(IOEvents(rawValue: revents))
                this.calling = false
            }
        }, fd, events.rawValue)
        raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        precondition(!calling, "an IOWatcher's handler released its own watcher: stop it instead, and let it go later")
        ev_io_stop(loop.raw, raw)
        raw.deallocate()
    }

    public var isActive: Bool { sixteen_ev_io_is_active(raw) != 0 }
    public func start() { ev_io_start(loop.raw, raw) }
    public func stop() { ev_io_stop(loop.raw, raw) }
}

/// A stand-alone timer. `start(after:repeat:)` re-arms it from now.
public final class TimerWatcher {
    private let raw: UnsafeMutablePointer<ev_timer>
    private let loop: EventLoop
    private let handler: () -> Void

    public init(loop: EventLoop, handler: @escaping () -> Void) {
        self.loop = loop
        self.handler = handler
        raw = .allocate(capacity: 1)
        raw.initialize(to: ev_timer())
        sixteen_ev_timer_init(raw, { _, watcher, _ in
            Unmanaged<TimerWatcher>.fromOpaque(watcher!.pointee.data!).takeUnretainedValue().handler()
        }, 0, 0)
        raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        ev_timer_stop(loop.raw, raw)
        raw.deallocate()
    }

    public var isActive: Bool { sixteen_ev_timer_is_active(raw) != 0 }

    public func start(after seconds: Double, repeat interval: Double = 0) {
        ev_timer_stop(loop.raw, raw)
        sixteen_ev_timer_set(raw, max(seconds, 0), interval)
        ev_timer_start(loop.raw, raw)
    }

    public func stop() { ev_timer_stop(loop.raw, raw) }
}

/// Watches one signal. Only the default loop may watch signals, and one
/// signal is watched by one loop at a time.
public final class SignalWatcher {
    private let raw: UnsafeMutablePointer<ev_signal>
    private let loop: EventLoop
    private let handler: (Int32) -> Void

    public init(loop: EventLoop, signal: Int32, handler: @escaping (Int32) -> Void) {
        self.loop = loop
        self.handler = handler
        raw = .allocate(capacity: 1)
        raw.initialize(to: ev_signal())
        sixteen_ev_signal_init(raw, { _, watcher, _ in
            let this = Unmanaged<SignalWatcher>.fromOpaque(watcher!.pointee.data!).takeUnretainedValue()
            this.handler(watcher!.pointee.signum)
        }, signal)
        raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        ev_signal_stop(loop.raw, raw)
        raw.deallocate()
    }

    public func start() { ev_signal_start(loop.raw, raw) }
    public func stop() { ev_signal_stop(loop.raw, raw) }
}

/// Wakes its loop from any thread (`ev_async`). Several sends before the
/// loop wakes are delivered as one event.
public final class AsyncWatcher {
    fileprivate let raw: UnsafeMutablePointer<ev_async>
    private let loop: EventLoop
    private let handler: () -> Void

    public init(loop: EventLoop, handler: @escaping () -> Void) {
        self.loop = loop
        self.handler = handler
        raw = .allocate(capacity: 1)
        raw.initialize(to: ev_async())
        sixteen_ev_async_init(raw) { _, watcher, _ in
            Unmanaged<AsyncWatcher>.fromOpaque(watcher!.pointee.data!).takeUnretainedValue().handler()
        }
        raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
        ev_async_stop(loop.raw, raw)
        raw.deallocate()
    }

    public func start() { ev_async_start(loop.raw, raw) }
    public func stop() { ev_async_stop(loop.raw, raw) }

    /// A handle other threads may use to wake this watcher. It is valid as
    /// long as the watcher and its loop are: join the loop's thread before
    /// either goes away.
    public var wakeup: AsyncWakeup { AsyncWakeup(loop: loop.raw, watcher: raw) }
}

/// The thread-safe side of an `AsyncWatcher`.
public struct AsyncWakeup: @unchecked Sendable {
    private let loop: OpaquePointer
    private let watcher: UnsafeMutablePointer<ev_async>

    fileprivate init(loop: OpaquePointer, watcher: UnsafeMutablePointer<ev_async>) {
        self.loop = loop
        self.watcher = watcher
    }

    /// Wakes the watcher's loop; async-signal-safe and callable from any thread.
    public func send() { ev_async_send(loop, watcher) }
}
