#if canImport(Glibc)
import Glibc
#endif
import Logging
import Reactor
import SixteenProtocol

/// A protocol's glue: how its sessions open, react to readiness and timers,
/// and let go of their resources. The reactor does everything else.
protocol ServedProtocol {
    associatedtype Session
    static func blankSession(_ configuration: ServerConfiguration) -> Session
    static func opened(_ slot: Int, on reactor: ServerReactor<Self>, now: Instant)
    /// The socket has input (or EOF, or an error) and the peer may still send.
    static func readable(_ slot: Int, on reactor: ServerReactor<Self>)
    /// The socket can take output again after a write would have blocked.
    static func writable(_ slot: Int, on reactor: ServerReactor<Self>)
    static func timerFired(_ slot: Int, on reactor: ServerReactor<Self>, now: Instant)
    /// The slot is about to close: free whatever the session holds.
    static func closing(_ entry: UnsafeMutablePointer<ConnectionSlot<Session>>, on reactor: ServerReactor<Self>)
}

/// What the server sees of a reactor, whatever its protocol.
protocol ReactorHandle: AnyObject {
    var counters: ReactorCounters { get }
    var stopWakeup: AsyncWakeup { get }
    func run()
}

/// One reactor thread of the server: its loop, its `SO_REUSEPORT` listener,
/// its connection table, and the common glue (accepting, interest, timers,
/// closing, draining). The protocol's own glue is `P` (`SixteenGlue`,
/// `UpperGlue`). Everything here runs on the reactor's own thread, except
/// `stopWakeup.send()` and reading `counters`.
final class ServerReactor<P: ServedProtocol>: PooledWatcherOwner, ReactorHandle {
    let index: Int
    let loop: EventLoop
    let counters = ReactorCounters()
    let configuration: ServerConfiguration
    let logger: Logger
    let debugEnabled: Bool
    let table: ConnectionTable<P.Session>
    let readBuffer: UnsafeMutableRawBufferPointer
    let reply: UnsafeRawBufferPointer
    /// Memory for `upper` output; this reactor's share of the global budget.
    let pool: ChunkPool
    let spillDirectory: SpillDirectory
    /// Every connection's deadline, and the one timer that serves them all.
    let deadlines = DeadlineHeap()
    private var deadlineTimer: TimerWatcher!
    /// Where `deadlineTimer` is set to fire, if it is running.
    private var deadlineTimerTarget: Int64?
    /// Octets pending in this reactor's spill files (mirrored to a gauge).
    var spilledOctets = 0
    var spillFiles = 0
    private let listenerFD: Int32

    private var listener: IOWatcher!
    private var stopWatcher: AsyncWatcher!
    private var acceptPause: TimerWatcher!
    private var drainDeadline: TimerWatcher!
    private var listenerOpen = true
    private var draining = false
    /// A descriptor held in reserve, closed to accept-and-shed when the
    /// process runs out (libev's manual: "accepting when you can't").
    private var spareFD: Int32 = -1
    private var lastWarning: Int64?

    /// Wakes the reactor to stop accepting and drain; safe from any thread.
    var stopWakeup: AsyncWakeup { stopWatcher.wakeup }

    init(index: Int, listenerFD: Int32, configuration: ServerConfiguration, logger: Logger) throws(ReactorError) {
        self.index = index
        self.listenerFD = listenerFD
        self.configuration = configuration
        self.logger = logger
        debugEnabled = logger.logLevel <= .debug
        loop = try EventLoop()
        table = ConnectionTable(blank: P.blankSession(configuration))
        readBuffer = .allocate(byteCount: configuration.readBufferSize, alignment: 16)
        let replyCopy = UnsafeMutableRawBufferPointer.allocate(byteCount: sixteenReply.count, alignment: 1)
        replyCopy.copyBytes(from: sixteenReply)
        reply = UnsafeRawBufferPointer(replyCopy)
        pool = ChunkPool(budgetBytes: configuration.output.memoryBudget / max(1, configuration.reactors))
        spillDirectory = SpillDirectory(path: configuration.output.spillDirectory)
        spareFD = Self.openSpare()

        loop.pooledWatcherOwner = self
        listener = IOWatcher(loop: loop, fd: listenerFD, events: .readable) { [unowned self] _ in
            self.acceptBatch()
        }
        stopWatcher = AsyncWatcher(loop: loop) { [unowned self] in self.beginDrain() }
        acceptPause = TimerWatcher(loop: loop) { [unowned self] in self.resumeAccepting() }
        drainDeadline = TimerWatcher(loop: loop) { [unowned self] in self.abortRemaining() }
        deadlineTimer = TimerWatcher(loop: loop) { [unowned self] in self.deadlinesPassed() }
        listener.start()
        stopWatcher.start()
    }

    deinit {
        readBuffer.deallocate()
        reply.deallocate()
        if spareFD >= 0 { Socket.close(spareFD) }
        if listenerOpen { Socket.close(listenerFD) }
    }

    /// Runs the loop until drained after a stop request.
    func run() {
        loop.run()
    }

    // MARK: Accepting

    private func acceptBatch() {
        for _ in 0..<configuration.acceptBatch {
            switch Socket.accept(listenerFD) {
            case .accepted(let fd):
                open(fd)
            case .wouldBlock:
                return
            case .retry:
                continue
            case .outOfResources(let error):
                shedForDescriptors(error)
                return
            case .failed(let error):
                counters.add(counters.acceptFailures)
                warnRateLimited("accept failed on reactor \(index): \(error); pausing accepts for 100 ms")
                pauseAccepting()
                return
            }
        }
    }

    /// Out of descriptors: the pending connection stays in the backlog and
    /// the listener stays readable, so doing nothing would spin at 100% CPU.
    /// Free the spare descriptor, accept and close what waits (the clients
    /// see the connection end at once), and take the spare back. When that
    /// sheds nothing (no spare, another thread took the freed descriptor, or
    /// the kernel is out of memory rather than descriptors), stop watching the
    /// listener for a moment instead.
    private func shedForDescriptors(_ error: Errno) {
        let outOfDescriptors = error.code == EMFILE || error.code == ENFILE
        if outOfDescriptors {
            warnRateLimited("out of descriptors (\(error)) on reactor \(index): shedding new connections; raise the limit (ulimit -n)")
        } else {
            warnRateLimited("cannot accept on reactor \(index): \(error); pausing accepts for 100 ms")
        }
        guard outOfDescriptors, spareFD >= 0 else {
            pauseAccepting()
            return
        }
        Socket.close(spareFD)
        spareFD = -1
        var shed = 0
        for _ in 0..<configuration.acceptBatch {
            guard case .accepted(let fd) = Socket.accept(listenerFD) else { break }
            Socket.abort(fd)
            shed += 1
        }
        counters.add(counters.shedForDescriptors, shed)
        spareFD = Self.openSpare()
        if spareFD < 0 || shed == 0 { pauseAccepting() }
    }

    private func pauseAccepting() {
        listener.stop()
        acceptPause.start(after: 0.1)
    }

    private func resumeAccepting() {
        if spareFD < 0 { spareFD = Self.openSpare() }
        if listenerOpen { listener.start() }
    }

    private static func openSpare() -> Int32 {
        Glibc.open("/dev/null", O_RDONLY | O_CLOEXEC)
    }

    /// Logs a warning at most once a second per reactor.
    func warnRateLimited(_ message: @autoclosure () -> String, level: Logger.Level = .warning) {
        let now = MonotonicClock.nanoseconds()
        if let last = lastWarning, now - last < 1_000_000_000 { return }
        lastWarning = now
        logger.log(level: level, "\(message())")
    }

    // MARK: Connections

    private func open(_ fd: Int32) {
        let slot = table.acquire()
        let entry = table[slot]
        entry.pointee.fd = fd
        entry.pointee.inputOpen = true
        entry.pointee.armedDeadline = .zero
        table.io(entry).watch(fd: fd, events: .readable, on: loop)
        counters.add(counters.accepted)
        counters.add(counters.active)
        if debugEnabled { logAccepted(fd) }
        P.opened(slot, on: self, now: now)
    }

    /// Input first: a read may end the session, and then writability is moot.
    func ioReady(slot: Int, events: IOEvents) {
        let entry = table[slot]
        if entry.pointee.inputOpen, events.contains(.readable) || events.contains(.error) {
            P.readable(slot, on: self)
            guard entry.pointee.fd >= 0 else { return }
        }
        if events.contains(.writable) {
            P.writable(slot, on: self)
        }
    }

    func timerFired(slot: Int) {
        preconditionFailure("server connections have no timers of their own; see DeadlineHeap")
    }

    /// The earliest deadline has come: each slot whose deadline has passed
    /// hears it (and may set a new one); then the timer is set for the next.
    private func deadlinesPassed() {
        deadlineTimerTarget = nil
        let time = now
        while let slot = deadlines.popExpired(now: time.nanoseconds) {
            let entry = table[slot]
            entry.pointee.armedDeadline = .zero
            guard entry.pointee.fd >= 0 else { continue }
            P.timerFired(slot, on: self, now: time)
        }
        setDeadlineTimer()
    }

    /// Points the timer at the earliest deadline, if it is not already.
    private func setDeadlineTimer() {
        guard let earliest = deadlines.earliest else {
            if deadlineTimerTarget != nil {
                deadlineTimer.stop()
                deadlineTimerTarget = nil
            }
            return
        }
        guard deadlineTimerTarget != earliest else { return }
        deadlineTimerTarget = earliest
        deadlineTimer.start(after: now.seconds(until: Instant(nanoseconds: earliest)))
    }

    /// Watches for readability while the peer may send, and for writability when asked.
    func updateInterest(_ entry: UnsafeMutablePointer<ConnectionSlot<P.Session>>, writing: Bool) {
        var events: IOEvents = entry.pointee.inputOpen ? .readable : .none
        if writing { events.insert(.writable) }
        table.io(entry).watch(fd: entry.pointee.fd, events: events, on: loop)
    }

    /// Whether the slot waits for writability now.
    func isWaitingToWrite(_ entry: UnsafeMutablePointer<ConnectionSlot<P.Session>>) -> Bool {
        table.io(entry).events.contains(.writable)
    }

    /// Sets the slot's deadline, unless it is set there already.
    func arm(_ slot: Int, _ deadline: Instant) {
        let entry = table[slot]
        guard entry.pointee.armedDeadline != deadline else { return }
        entry.pointee.armedDeadline = deadline
        deadlines.schedule(slot, at: deadline.nanoseconds)
        if let target = deadlineTimerTarget, target <= deadline.nanoseconds { return }
        setDeadlineTimer()
    }

    /// Stops the slot's watchers, frees what its session holds, closes its socket, frees the slot.
    func close(_ slot: Int) {
        let entry = table[slot]
        table.io(entry).stop(on: loop)
        if entry.pointee.armedDeadline != .zero {
            deadlines.cancel(slot)
            entry.pointee.armedDeadline = .zero
        }
        P.closing(entry, on: self)
        Socket.close(entry.pointee.fd)
        table.release(slot)
        counters.add(counters.active, -1)
        if draining && table.activeCount == 0 { endDrain() }
    }

    @inline(__always)
    var now: Instant { Instant(nanoseconds: MonotonicClock.nanoseconds()) }

    // MARK: Shutdown

    /// Stops accepting; sessions in flight get `shutdownTimeout` to finish.
    private func beginDrain() {
        guard !draining else { return }
        draining = true
        listener.stop()
        acceptPause.stop()
        Socket.close(listenerFD)
        listenerOpen = false
        if table.activeCount == 0 {
            endDrain()
        } else {
            drainDeadline.start(after: Double(configuration.shutdownTimeout.nanoseconds) / 1e9)
        }
    }

    private func abortRemaining() {
        table.forEachActive { slot in
            counters.add(counters.abortedAtShutdown)
            if debugEnabled { logger.debug("Session \(describePeer(table[slot].pointee.fd)) aborted at shutdown") }
            close(slot)
        }
        endDrain()
    }

    private func endDrain() {
        drainDeadline.stop()
        stopWatcher.stop()
        loop.breakAll()
    }

    // MARK: Debug lines (never at the default level)

    func describePeer(_ fd: Int32) -> String {
        SocketAddress.peer(of: fd)?.pythonDescription ?? "(unknown peer)"
    }

    private func logAccepted(_ fd: Int32) {
        let peer = describePeer(fd)
        logger.debug("We have accepted a connection from \(peer)")
        logger.debug("Socket name: \(SocketAddress.local(of: fd)?.pythonDescription ?? "?")")
        logger.debug("Socket peer: \(peer)")
    }
}
