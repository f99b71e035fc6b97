import CLibEv

/// The memory of one pooled I/O watcher, to embed in a pooled slot. Opaque
/// outside this module: only `Reactor` knows it holds a libev `ev_io`.
public struct PooledIOStorage {
    var raw = ev_io()
    public init() {}
}

/// The memory of one pooled timer, to embed in a pooled slot; see `PooledIOStorage`.
public struct PooledTimerStorage {
    var raw = ev_timer()
    public init() {}
}

/// An I/O watcher living inside memory its user pooled (a connection slot),
/// so starting, stopping and re-arming it never allocates. Its events go to
/// the loop's callbacks (`EventLoop.install`) with the slot number given to `prepare`.
public struct PooledIO {
    @usableFromInline let raw: UnsafeMutablePointer<ev_io>

    /// The watcher whose memory is `storage` (inside a pooled slot, at a stable address).
    @inline(__always)
    public init(_ storage: UnsafeMutablePointer<PooledIOStorage>) {
        raw = UnsafeMutableRawPointer(storage).assumingMemoryBound(to: ev_io.self)
    }

    /// Binds the watcher to `slot`. Call once, when the slot's memory is made.
    public func prepare(slot: Int) {
        sixteen_ev_io_cb_init(raw) { loop, watcher, revents in
            EventLoop.withCallbacks(of: loop) { callbacks in
                callbacks.ioReady(PooledSlot.index(watcher!.pointee.data), IOEvents(rawValue: revents))
            }
        }
        raw.pointee.data = PooledSlot.tag(slot)
    }

    @inlinable public var isActive: Bool { sixteen_ev_io_is_active(raw) != 0 }
    @inlinable public var events: IOEvents { IOEvents(rawValue: sixteen_ev_io_events(raw)) }

    /// Watches `fd` for `events`, replacing whatever it watched before.
    /// Watching no events stops the watcher. Inlinable, like `stop`: the
    /// reactors call it after every step of a session.
    @inlinable
    public func watch(fd: Int32, events: IOEvents, on loop: EventLoop) {
        if isActive {
            if events == self.events && sixteen_ev_io_fd(raw) == fd { return }
            ev_io_stop(loop.raw, raw)
        }
        guard !events.isEmpty else { return }
        sixteen_ev_io_set(raw, fd, events.rawValue)
        ev_io_start(loop.raw, raw)
    }

    @inlinable
    public func stop(on loop: EventLoop) {
        ev_io_stop(loop.raw, raw)
    }
}

/// A one-shot timer living inside pooled memory; see `PooledIO`.
public struct PooledTimer {
    let raw: UnsafeMutablePointer<ev_timer>

    /// The timer whose memory is `storage` (inside a pooled slot, at a stable address).
    @inline(__always)
    public init(_ storage: UnsafeMutablePointer<PooledTimerStorage>) {
        raw = UnsafeMutableRawPointer(storage).assumingMemoryBound(to: ev_timer.self)
    }

    public func prepare(slot: Int) {
        sixteen_ev_timer_init(raw, { loop, watcher, _ in
            EventLoop.withCallbacks(of: loop) { callbacks in
                callbacks.timerFired(PooledSlot.index(watcher!.pointee.data))
            }
        }, 0, 0)
        raw.pointee.data = PooledSlot.tag(slot)
    }

    public var isActive: Bool { sixteen_ev_timer_is_active(raw) != 0 }

    /// Fires once, `seconds` from the loop's current time (at once if not positive).
    public func arm(inSeconds seconds: Double, on loop: EventLoop) {
        ev_timer_stop(loop.raw, raw)
        sixteen_ev_timer_set(raw, max(seconds, 0), 0)
        ev_timer_start(loop.raw, raw)
    }

    public func stop(on loop: EventLoop) {
        ev_timer_stop(loop.raw, raw)
    }
}

/// Slot numbers travel in a watcher's `data` pointer, offset by one so slot 0 is not nil.
enum PooledSlot {
    static func tag(_ slot: Int) -> UnsafeMutableRawPointer? {
        UnsafeMutableRawPointer(bitPattern: slot + 1)
    }
    static func index(_ data: UnsafeMutableRawPointer?) -> Int {
        Int(bitPattern: data) - 1
    }
}
