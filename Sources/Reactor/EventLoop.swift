import CLibEv

/// What a loop calls on its hot path: the events of the watchers embedded in
/// pooled memory (`PooledIO`, `PooledTimer`), by slot, and, if given, the
/// closure that runs each whole iteration. One set per loop
/// (`EventLoop.install`); its owner keeps it for as long as the loop runs.
///
/// Closures in `let`s of an object the loop holds unretained, so each event
/// is one indirect call with no reference counting: the loop lends the object
/// to the call (`_withUnsafeGuaranteedRef`), and a `let` closure of a borrowed
/// object is called borrowed. Closures rather than methods to override: made
/// where the owner's type is known (the specialized initializer of a generic
/// reactor), they call code specialized for it, where a virtual method of a
/// generic class enters its unspecialized body and looks the type up first.
/// (A protocol existential, the first design, retained the owner per event.)
public final class LoopCallbacks {
    /// The I/O watcher of `slot` saw `events`.
    let ioReady: (_ slot: Int, _ events: IOEvents) -> Void
    /// The timer of `slot` fired.
    let timerFired: (_ slot: Int) -> Void
    /// Runs one iteration's callbacks, once the loop has woken from its poll:
    /// it must call `EventLoop.invokePending()` once, and may do what it
    /// likes before (nothing of the iteration has run yet) and after (every
    /// callback has run, and the loop is about to poll again). One closure,
    /// not one before and one after: a call fewer per iteration.
    let iteration: () -> Void
    /// Whether `iteration` was given; without it, libev runs the callbacks.
    let runsIterations: Bool

    /// Callbacks that run each iteration's watcher callbacks through
    /// `iteration`. (Two initializers, not an optional closure: a closure
    /// stored through an `Optional` is re-abstracted, and every call then
    /// went through two thunks.)
    public init(
        ioReady: @escaping (_ slot: Int, _ events: IOEvents) -> Void,
        timerFired: @escaping (_ slot: Int) -> Void = LoopCallbacks.noPooledTimers,
        iteration: @escaping () -> Void
    ) {
        self.ioReady = ioReady
        self.timerFired = timerFired
        self.iteration = iteration
        runsIterations = true
    }

    /// Callbacks for pooled watchers only; libev runs each iteration.
    public init(
        ioReady: @escaping (_ slot: Int, _ events: IOEvents) -> Void,
        timerFired: @escaping (_ slot: Int) -> Void = LoopCallbacks.noPooledTimers
    ) {
        self.ioReady = ioReady
        self.timerFired = timerFired
        iteration = {}
        runsIterations = false
    }

    /// For a loop that starts no pooled timers.
    public static func noPooledTimers(_ slot: Int) {
        preconditionFailure("a pooled timer fired on a loop whose callbacks take none")
    }
}

/// One libev loop. It belongs to the thread that runs it: every call except
/// `AsyncWakeup.send()` must come from that thread.
public final class EventLoop {
    /// The underlying `struct ev_loop *`.
    public let raw: OpaquePointer
    private let isDefault: Bool

    /// Whether `install` was called (it may be, once).
    private var hasCallbacks = false

    /// A new loop on epoll (falling back to libev's choice if epoll is
    /// missing), leaving the thread's signal mask alone: signals are watched
    /// only on the default loop.
    public init() throws(ReactorError) {
        let flags = SIXTEEN_EVFLAG_NOENV | SIXTEEN_EVFLAG_NOSIGMASK
        guard let loop = ev_loop_new(flags | SIXTEEN_EVBACKEND_EPOLL) ?? ev_loop_new(flags) else {
            throw ReactorError("cannot create an event loop (out of descriptors or memory?)")
        }
        raw = loop
        isDefault = false
    }

    private init(defaultLoop: OpaquePointer) {
        raw = defaultLoop
        isDefault = true
    }

    /// The process's default loop, the only one that may watch signals.
    /// Create it once, on the thread that will run it.
    public static func makeDefault() throws(ReactorError) -> EventLoop {
        guard let loop = ev_default_loop(SIXTEEN_EVFLAG_NOENV) else {
            throw ReactorError("cannot create the default event loop")
        }
        return EventLoop(defaultLoop: loop)
    }

    deinit {
        if !isDefault { ev_loop_destroy(raw) }
    }

    /// Runs until `breakAll()` is called or no active watcher is left.
    public func run() {
        ev_run(raw, 0)
    }

    /// Makes `run()` return after the current iteration.
    public func breakAll() {
        ev_break(raw, SIXTEEN_EVBREAK_ALL)
    }

    /// Brings the loop's cached time up to date. Timers count from it, so a
    /// loop made long before it runs (a load run waiting for --start-at) must
    /// call this before starting any, or they fire early by the wait.
    public func updateNow() {
        ev_now_update(raw)
    }

    /// Whether the backend is epoll (it should be, on Linux).
    public var usesEpoll: Bool {
        ev_backend(raw) == SIXTEEN_EVBACKEND_EPOLL
    }

    /// Makes `callbacks` receive the events of this loop's pooled watchers
    /// and, if it has an `iteration` closure, run each iteration's callbacks
    /// through it. Not retained (libev's user data points at it): its owner
    /// keeps it while the loop may run. Call once, before the loop runs, on
    /// its thread.
    ///
    /// `iteration` replaces libev's pending-callback runner, so it costs one
    /// call per iteration, where a check and a prepare watcher around the
    /// callbacks cost two queued events. libev also runs it once as `run()`
    /// starts, with nothing pending.
    public func install(_ callbacks: LoopCallbacks) {
        precondition(!hasCallbacks, "a loop has one set of callbacks")
        hasCallbacks = true
        ev_set_userdata(raw, Unmanaged.passUnretained(callbacks).toOpaque())
        guard callbacks.runsIterations else { return }
        ev_set_invoke_pending_cb(raw) { loop in
            EventLoop.withCallbacks(of: loop) { $0.iteration() }
        }
    }

    /// Runs the callbacks of every watcher pending in this iteration; for
    /// `LoopCallbacks.iteration` only.
    @inline(__always)
    public func invokePending() {
        ev_invoke_pending(raw)
    }

    /// Calls `body` with the callbacks installed on `loop`, borrowed.
    @inline(__always)
    static func withCallbacks(of loop: OpaquePointer?, _ body: (LoopCallbacks) -> Void) {
        Unmanaged<LoopCallbacks>.fromOpaque(ev_userdata(loop)!)._withUnsafeGuaranteedRef(body)
    }
}

/// An error setting up the reactor itself (not a socket error).
public struct ReactorError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Which readiness an I/O watcher waits for, or saw.
public struct IOEvents: OptionSet, Sendable, Hashable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    // Computed and inlinable, not stored `static let`s: other modules read a
    // stored one through its lazy initializer's once-check, on every event.
    @inlinable public static var readable: IOEvents { IOEvents(rawValue: SIXTEEN_EV_READ) }
    @inlinable public static var writable: IOEvents { IOEvents(rawValue: SIXTEEN_EV_WRITE) }
    /// libev's `EV_ERROR`: the watcher failed (a bad descriptor); treat as readable.
    @inlinable public static var error: IOEvents { IOEvents(rawValue: SIXTEEN_EV_ERROR) }
    @inlinable public static var none: IOEvents { [] }
}
