import CLibEv

// Each watcher's C callback borrows the watcher it was handed
// (`_withUnsafeGuaranteedRef`) instead of retaining it for the call: a
// started watcher is alive (its deinit stops it first), and a listener's
// callback runs once per accepting wake-up.

/// A stand-alone I/O watcher for the few long-lived descriptors of a loop
/// (listeners). Its callback is a closure set once; calling it allocates
/// nothing. For per-connection watchers use `PooledIO`.
public final class IOWatcher {
    private let raw: UnsafeMutablePointer<ev_io>
    private let loop: EventLoop
    private let handler: (IOEvents) -> Void

    public init(loop: EventLoop, fd: Int32, events: IOEvents, handler: @escaping (IOEvents) -> Void) {
        self.loop = loop
        self.handler = handler
        raw = .allocate(capacity: 1)
        raw.initialize(to: ev_io())
        sixteen_ev_io_init(raw, { _, watcher, revents in
            Unmanaged<IOWatcher>.fromOpaque(watcher!.pointee.data!)._withUnsafeGuaranteedRef { this in
                this.handler(IOEvents(rawValue: revents))
            }
        }, fd, events.rawValue)
        raw.pointee.data = Unmanaged.passUnretained(self).toOpaque()
    }

    deinit {
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
            Unmanaged<TimerWatcher>.fromOpaque(watcher!.pointee.data!)._withUnsafeGuaranteedRef { $0.handler() }
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
            Unmanaged<SignalWatcher>.fromOpaque(watcher!.pointee.data!)._withUnsafeGuaranteedRef { this in
                this.handler(watcher!.pointee.signum)
            }
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
            Unmanaged<AsyncWatcher>.fromOpaque(watcher!.pointee.data!)._withUnsafeGuaranteedRef { $0.handler() }
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
