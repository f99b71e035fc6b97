import CLibEv

/// What a loop calls on its hot path: the events of the watchers embedded in
/// pooled memory (`PooledIO`, `PooledTimer`), by slot, and, if asked, a call
/// before and after each iteration's callbacks. One owner per loop.
///
/// A class to subclass, not a protocol: the loop holds its owner unretained
/// and calls it through `_withUnsafeGuaranteedRef`, so an event costs one
/// indirect call and no reference counting. A protocol existential cannot be
/// held that way; calling one retained and released the owner on every event.
open class EventLoopOwner {
    public init() {}

    /// The I/O watcher of `slot` saw `events`.
    open func ioReady(slot: Int, events: IOEvents) {
        preconditionFailure("\(Self.self) starts pooled I/O watchers, so it must override ioReady")
    }

    /// The timer of `slot` fired.
    open func timerFired(slot: Int) {
        preconditionFailure("\(Self.self) starts pooled timers, so it must override timerFired")
    }

    /// The loop woke from its poll and is about to run this iteration's
    /// callbacks (timers and I/O alike); nothing has run yet. Called only for
    /// an owner set with `bracketingIterations`.
    open func iterationBegan() {}

    /// Every callback of the iteration has run, and the loop is about to
    /// poll again. Called only for an owner set with `bracketingIterations`.
    open func iterationEnded() {}
}

/// One libev loop. It belongs to the thread that runs it: every call except
/// `AsyncWakeup.send()` must come from that thread.
public final class EventLoop {
    /// The underlying `struct ev_loop *`.
    public let raw: OpaquePointer
    private let isDefault: Bool

    /// Where the events of pooled watchers on this loop go (`setOwner`). Set
    /// once, before the loop runs, on the loop's thread, and only read after:
    /// no dynamic exclusivity check is needed on every event.
    @exclusivity(unchecked) private var owner: Unmanaged<EventLoopOwner>?

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
        ev_set_userdata(raw, Unmanaged.passUnretained(self).toOpaque())
    }

    private init(defaultLoop: OpaquePointer) {
        raw = defaultLoop
        isDefault = true
        ev_set_userdata(raw, Unmanaged.passUnretained(self).toOpaque())
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

    /// Makes `owner` receive the events of this loop's pooled watchers and,
    /// with `bracketingIterations`, calls it before and after each
    /// iteration's callbacks. Not retained: the owner must outlive every
    /// pooled watcher it starts on this loop, and the loop's runs. Call once,
    /// before the loop runs, on its thread.
    ///
    /// The bracket replaces libev's pending-callback runner (it calls
    /// `ev_invoke_pending` between the two), so it costs one call per
    /// iteration, where a check and a prepare watcher cost two queued events.
    public func setOwner(_ owner: EventLoopOwner, bracketingIterations: Bool) {
        precondition(self.owner == nil, "a loop has one owner")
        self.owner = Unmanaged.passUnretained(owner)
        guard bracketingIterations else { return }
        ev_set_invoke_pending_cb(raw) { loop in
            EventLoop.withOwner(of: loop) { owner in
                owner.iterationBegan()
                ev_invoke_pending(loop)
                owner.iterationEnded()
            }
        }
    }

    /// Calls `body` with the owner of `loop` (a raw libev loop made by this
    /// class), borrowed: neither the loop nor its owner is retained.
    @inline(__always)
    static func withOwner(of loop: OpaquePointer?, _ body: (EventLoopOwner) -> Void) {
        Unmanaged<EventLoop>.fromOpaque(ev_userdata(loop)!)._withUnsafeGuaranteedRef { eventLoop in
            eventLoop.owner!._withUnsafeGuaranteedRef(body)
        }
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
