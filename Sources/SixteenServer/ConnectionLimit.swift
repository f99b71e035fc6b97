import Reactor
import Synchronization

/// The process's cap on open client connections, shared by every reactor.
///
/// A reactor reserves a place before each `accept` (a compare-and-swap) and
/// gives it back when the connection closes (a subtraction): no lock. At the
/// cap a reactor stops watching its listener, so new connections wait in
/// the kernel's listen queue (as HAProxy does at `maxconn`) instead of being
/// accepted and reset; the reactor that frees a place wakes every reactor
/// that paused. Pausing announces itself before it looks at the count again,
/// and releasing lowers the count before it looks for paused reactors, so a
/// wake-up cannot be lost between the two.
final class ConnectionLimit: @unchecked Sendable {
    let cap: Int
    private let open = Atomic<Int>(0)
    private let pausedCount = Atomic<Int>(0)
    /// Per reactor: whether it is paused at the cap, and how to wake it. Set
    /// by `attach` before the reactor threads start; read-only afterwards.
    private var paused: UnsafeMutablePointer<Atomic<Bool>>?
    private var wakeups: [AsyncWakeup] = []

    static let maxSeries = SeriesDeclaration.gauge(
        "sixteen_connections_max", "The cap on open client connections (--max-connections, or what the descriptor limit allows).")

    init(cap: Int) {
        self.cap = cap
    }

    deinit {
        if let paused {
            paused.deinitialize(count: wakeups.count)
            paused.deallocate()
        }
    }

    /// Gives each reactor (by index) its wake-up. Call once, before any
    /// reactor thread starts (thread creation publishes it to them).
    func attach(_ wakeups: [AsyncWakeup]) {
        precondition(paused == nil, "attached twice")
        let flags = UnsafeMutablePointer<Atomic<Bool>>.allocate(capacity: max(1, wakeups.count))
        for index in 0..<wakeups.count { (flags + index).initialize(to: Atomic(false)) }
        paused = flags
        self.wakeups = wakeups
    }

    /// Connections open (or reserved) now.
    var current: Int { open.load(ordering: .relaxed) }

    /// Takes a place if there is one.
    @inline(__always)
    func reserve() -> Bool {
        var value = open.load(ordering: .relaxed)
        while value < cap {
            let (exchanged, original) = open.compareExchange(expected: value, desired: value + 1, ordering: .sequentiallyConsistent)
            if exchanged { return true }
            value = original
        }
        return false
    }

    /// Takes a place whatever the cap (the drain serves what already waits).
    func reserveBeyondCap() {
        open.add(1, ordering: .sequentiallyConsistent)
    }

    /// Gives a place back, and wakes the reactors paused at the cap.
    @inline(__always)
    func release() {
        open.subtract(1, ordering: .sequentiallyConsistent)
        if pausedCount.load(ordering: .sequentiallyConsistent) > 0 { wakePaused() }
    }

    /// Reactor `index` stops accepting at the cap; true if a place freed up
    /// meanwhile, and it should go on at once.
    func pause(_ index: Int) -> Bool {
        guard let paused, !paused[index].load(ordering: .relaxed) else { return false }
        paused[index].store(true, ordering: .sequentiallyConsistent)
        pausedCount.add(1, ordering: .sequentiallyConsistent)
        return open.load(ordering: .sequentiallyConsistent) < cap
    }

    /// Reactor `index` accepts again.
    func resume(_ index: Int) {
        guard let paused, paused[index].load(ordering: .relaxed) else { return }
        paused[index].store(false, ordering: .sequentiallyConsistent)
        pausedCount.subtract(1, ordering: .sequentiallyConsistent)
    }

    private func wakePaused() {
        guard let paused else { return }
        for (index, wakeup) in wakeups.enumerated() where paused[index].load(ordering: .sequentiallyConsistent) {
            wakeup.send()
        }
    }
}

/// How the process's descriptors are shared out, from `RLIMIT_NOFILE`:
/// a fixed reserve for what the daemon itself holds, a reserve for spill
/// files when `upper` is served, and the rest for client connections.
public struct DescriptorPlan: Sendable, Equatable {
    /// The soft limit on open descriptors (raised to the hard limit at start-up).
    public let limit: Int
    /// Standard streams, listeners, spare descriptors, event loops, the
    /// admin listener and its connections, and slack (logs, `/proc` reads).
    public let fixedReserve: Int
    /// Spill files open at once at most (0 without `upper`).
    public let spillFiles: Int
    /// The cap on client connections.
    public let maxConnections: Int
    /// What was asked for with `--max-connections`, when it had to be lowered.
    public let clampedFrom: Int?

    /// Per reactor: its listener, its spare descriptor, its epoll instance
    /// and its libev wake-up (an eventfd).
    public static let perReactor = 4
    /// Standard streams, the control loop (epoll, signal pipe, eventfd) and slack.
    public static let base = 3 + 3 + 16

    public init(limit: Int, reactors: Int, admin: AdminConfiguration?, spills: Bool, requested: Int?) {
        self.limit = limit
        var fixed = Self.base + Self.perReactor * reactors
        if let admin { fixed += 1 + Self.perReactor + admin.maxConnections }
        fixedReserve = fixed
        let free = max(0, limit - fixed)
        // A spill file per four connections at most, and never more than 4,096.
        spillFiles = spills ? min(4096, free / 5) : 0
        let available = max(0, free - spillFiles)
        if let requested, requested > available {
            maxConnections = available
            clampedFrom = requested
        } else {
            maxConnections = requested ?? available
            clampedFrom = nil
        }
    }
}
