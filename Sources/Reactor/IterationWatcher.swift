import CLibEv

/// Brackets every iteration of a loop: `began` runs when the loop wakes from
/// its poll, before any other callback of that iteration (an `ev_check` at the
/// highest priority: libev invokes check watchers first), and `ended` runs
/// once every callback is done, just before the loop blocks again (an
/// `ev_prepare`). The time between them is what the iteration's callbacks
/// took; Redis 7 calls it `eventloop_duration`.
public final class IterationWatcher {
    private let check: UnsafeMutablePointer<ev_check>
    private let prepare: UnsafeMutablePointer<ev_prepare>
    private let loop: EventLoop
    private let began: () -> Void
    private let ended: () -> Void

    public init(loop: EventLoop, began: @escaping () -> Void, ended: @escaping () -> Void) {
        self.loop = loop
        self.began = began
        self.ended = ended
        check = .allocate(capacity: 1)
        check.initialize(to: ev_check())
        prepare = .allocate(capacity: 1)
        prepare.initialize(to: ev_prepare())
        sixteen_ev_check_init(check) { _, watcher, _ in
            Unmanaged<IterationWatcher>.fromOpaque(watcher!.pointee.data!).takeUnretainedValue().began()
        }
        sixteen_ev_prepare_init(prepare) { _, watcher, _ in
            Unmanaged<IterationWatcher>.fromOpaque(watcher!.pointee.data!).takeUnretainedValue().ended()
        }
        let this = Unmanaged.passUnretained(self).toOpaque()
        check.pointee.data = this
        prepare.pointee.data = this
    }

    deinit {
        stop()
        check.deallocate()
        prepare.deallocate()
    }

    /// Starts both watchers. Neither keeps the loop alive on its own
    /// (`ev_unref`), so a loop with nothing else to watch still returns.
    public func start() {
        ev_check_start(loop.raw, check)
        ev_unref(loop.raw)
        ev_prepare_start(loop.raw, prepare)
        ev_unref(loop.raw)
    }

    public func stop() {
        if sixteen_ev_check_is_active(check) != 0 {
            ev_ref(loop.raw)
            ev_check_stop(loop.raw, check)
        }
        if sixteen_ev_prepare_is_active(prepare) != 0 {
            ev_ref(loop.raw)
            ev_prepare_stop(loop.raw, prepare)
        }
    }
}
