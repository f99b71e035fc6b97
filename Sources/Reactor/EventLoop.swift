import CLibEv

/// Receives the events of watchers embedded in pooled memory (see `PooledIO`
/// and `PooledTimer`). One owner per loop; it is looked up through the loop's
/// user data, so dispatching an event allocates nothing.
public protocol PooledWatcherOwner: AnyObject {
    /// The I/O watcher of `slot` saw `events`.
    func ioReady(slot: Int, events: IOEvents)
    /// The timer of `slot` fired.
    func timerFired(slot: Int)
}

/// One libev loop. It belongs to the thread that runs it: every call except
/// `AsyncWakeup.send()` must come from that thread.
public final class EventLoop {
    /// The underlying `struct ev_loop *`.
    public let raw: OpaquePointer
    private let isDefault: Bool

    /// Where the events of pooled watchers on this loop go. Not retained: the
    /// owner must outlive every pooled watcher it starts on this loop. Set
    /// once, before the loop runs, on the loop's thread, and only read
    /// after: no dynamic exclusivity check is needed on every event.
    @exclusivity(unchecked) public unowned(unsafe) var pooledWatcherOwner: (any PooledWatcherOwner)?

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

    static func from(_ loop: OpaquePointer?) -> EventLoop {
        Unmanaged<EventLoop>.fromOpaque(ev_userdata(loop)!).takeUnretainedValue()
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
    public static let readable = IOEvents(rawValue: SIXTEEN_EV_READ)
    public static let writable = IOEvents(rawValue: SIXTEEN_EV_WRITE)
    /// libev's `EV_ERROR`: the watcher failed (a bad descriptor); treat as readable.
    public static let error = IOEvents(rawValue: SIXTEEN_EV_ERROR)
    public static let none: IOEvents = []
}
