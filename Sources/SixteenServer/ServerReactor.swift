#if canImport(Glibc)
import Glibc
#endif
import Logging
import Reactor
import SixteenProtocol

/// How a reactor runs, whatever its protocol.
struct ReactorSettings: Sendable {
    /// Connections accepted per listener wake-up at most.
    var acceptBatch: Int
    /// How long sessions in flight may take after a drain begins.
    var shutdownTimeout: Duration
    /// Octets read per read call.
    var readBufferSize: Int
    /// The most connections this reactor holds at once; at it, the reactor
    /// stops accepting (the rest wait in the listen queue). nil: no cap.
    var connectionCap: Int?
    /// The cap shared by every reactor of the process (`--max-connections`).
    var sharedLimit: ConnectionLimit?
    /// `--max-connections-per-ip`, shared by every reactor; nil when off.
    /// The reactor admits on the socket's peer, unless a PROXY header names
    /// the client: then the handler does (`handlerAddressLimit`).
    var addressLimit: AddressLimit?
    var handlerAddressLimit: AddressLimit?
}

/// What the server sees of a reactor, whatever its protocol.
protocol ServingReactor: AnyObject {
    var metrics: ReactorMetrics { get }
    /// Stop accepting and drain (safe from any thread).
    var drainWakeup: AsyncWakeup { get }
    /// Close every session now and stop (safe from any thread).
    var abortWakeup: AsyncWakeup { get }
    /// A place freed up under the shared cap: accept again if paused.
    var resumeWakeup: AsyncWakeup { get }
    func run()
}

/// One reactor thread of the server: its loop, its listener, its connection
/// table, and every socket mechanic common to all protocols: accepting,
/// reading, writing, interest, deadlines, closing, draining and the common
/// counts. What a connection's octets mean is its `Handler`'s business; the
/// handler answers each event with a `ConnectionStep`, which this class
/// performs. Everything here runs on the reactor's own thread, except the
/// two wake-ups and reading `metrics`.
final class ServerReactor<Handler: ProtocolHandler>: ServingReactor {
    typealias Entry = UnsafeMutablePointer<ConnectionSlot<Handler.Session>>

    let index: Int
    let loop: EventLoop
    let handler: Handler
    let metrics: ReactorMetrics
    let counts: Counts<ReactorCount>
    let settings: ReactorSettings
    let logger: Logger
    let debugEnabled: Bool
    let table: ConnectionTable<Handler.Session>
    let warnings: RateLimitedWarnings<ReactorWarning>
    private let readBuffer: UnsafeMutableRawBufferPointer
    private let sessionCells: CounterCells
    private let sessionDuration: HistogramCells
    private let iterationDuration: HistogramCells
    /// Every connection's deadline, and the one timer that serves them all.
    let deadlines = DeadlineHeap()
    private var deadlineTimer: TimerWatcher!
    /// Where `deadlineTimer` is set to fire, if it is running.
    private var deadlineTimerTarget: Int64?
    var heartbeatTimer: TimerWatcher!
    /// What the loop calls per event and per iteration (kept here: the loop
    /// holds it unretained).
    private var callbacks: LoopCallbacks!
    /// The loop's time for this iteration, read once when it woke: every
    /// event of the iteration sees the same `now` (libev's `ev_now` idea),
    /// which spares a clock read per event.
    private(set) var now = Instant.zero

    /// `settings.sharedLimit`, borrowed on the accept path: the server holds
    /// the limit while its reactors run. Read from a strong reference, the
    /// limit was retained and released around every reservation (the
    /// compiler keeps it alive across the atomic operations); an `Unmanaged`
    /// one is lent to the call with no reference counting.
    let sharedLimitBorrowed: Unmanaged<ConnectionLimit>?

    let listenerFD: Int32
    var listener: IOWatcher!
    var listenerOpen = true
    var acceptPause: TimerWatcher!
    /// Whether accepting stopped at the cap, and since when.
    var pausedAtCap = false
    var pausedSince = Instant.zero
    var resumeWatcher: AsyncWatcher!
    /// A descriptor held in reserve, closed to accept-and-shed when the
    /// process runs out (libev's manual: "accepting when you can't").
    var spareFD: Int32 = -1
    /// With `--max-connections-per-ip`: where `accept` writes the peer, and
    /// each slot's address key (a side table, so slots stay small when off).
    let peerStorage = UnsafeMutablePointer<sockaddr_storage>.allocate(capacity: 1)
    var addressKeys: UnsafeMutablePointer<UInt64>?
    var addressKeyCapacity = 0
    var drainWatcher: AsyncWatcher!
    var abortWatcher: AsyncWatcher!
    var drainDeadline: TimerWatcher!
    var draining = false

    var drainWakeup: AsyncWakeup { drainWatcher.wakeup }
    var abortWakeup: AsyncWakeup { abortWatcher.wakeup }
    var resumeWakeup: AsyncWakeup { resumeWatcher.wakeup }

    init(
        index: Int, reactorCount: Int, listenerFD: Int32, configuration: Handler.Configuration,
        shared: Handler.Shared, settings: ReactorSettings, logger: Logger
    ) throws(ReactorError) {
        self.index = index
        self.listenerFD = listenerFD
        self.settings = settings
        sharedLimitBorrowed = settings.sharedLimit.map(Unmanaged.passUnretained)
        self.logger = logger
        debugEnabled = logger.logLevel <= .debug
        loop = try EventLoop()
        metrics = ReactorMetrics(
            index: index, protocolName: Handler.name, outcomes: Handler.outcomes, own: Handler.Count.self,
            now: MonotonicClock.nanoseconds())
        counts = metrics.common
        sessionCells = metrics.sessions
        sessionDuration = metrics.sessionDuration
        iterationDuration = metrics.loopIteration
        warnings = RateLimitedWarnings(logger: logger)
        handler = Handler(configuration, shared: shared, context: HandlerContext(
            reactorIndex: index, reactorCount: reactorCount, logger: logger, debugEnabled: debugEnabled,
            counts: Counts(cells: metrics.own), reactorCounts: metrics.common, addressLimit: settings.handlerAddressLimit))
        table = ConnectionTable(blank: handler.blankSession)
        readBuffer = .allocate(byteCount: settings.readBufferSize, alignment: 16)
        spareFD = Self.openSpare()

        // The loop's callbacks and the watchers below are the reactor's own,
        // stopped before it goes (`endDrain`, then deinit), so they never
        // outlive it. The hot ones (per event, per iteration, per accepting
        // wake-up) lend the reactor to the call (`Unmanaged`), where a
        // captured reference, even `unowned(unsafe)`, is retained and
        // released around it; the rest use `unowned(unsafe)`, which spares
        // the reference count check of plain `unowned`. Each served
        // handler's reactor is made where its type is known
        // (`ServedProtocol`), so this initializer and the closures it makes
        // are specialized for it, and so is everything they call.
        let this = Unmanaged.passUnretained(self)
        callbacks = LoopCallbacks(
            ioReady: { slot, events in this._withUnsafeGuaranteedRef { $0.ioReady(slot: slot, events: events) } },
            iteration: { this._withUnsafeGuaranteedRef { $0.runIteration() } })
        loop.install(callbacks)
        listener = IOWatcher(loop: loop, fd: listenerFD, events: .readable) { _ in this._withUnsafeGuaranteedRef { $0.acceptBatch() } }
        acceptPause = TimerWatcher(loop: loop) { [unowned(unsafe) self] in self.resumeAccepting() }
        drainWatcher = AsyncWatcher(loop: loop) { [unowned(unsafe) self] in self.beginDrain() }
        abortWatcher = AsyncWatcher(loop: loop) { [unowned(unsafe) self] in self.abortNow() }
        resumeWatcher = AsyncWatcher(loop: loop) { [unowned(unsafe) self] in self.resumeBelowCap() }
        drainDeadline = TimerWatcher(loop: loop) { [unowned(unsafe) self] in self.abortRemaining() }
        deadlineTimer = TimerWatcher(loop: loop) { [unowned(unsafe) self] in self.deadlinesPassed() }
        heartbeatTimer = TimerWatcher(loop: loop) { [unowned(unsafe) self] in self.heartbeat() }
        listener.start()
        drainWatcher.start()
        abortWatcher.start()
        resumeWatcher.start()
        heartbeatTimer.start(after: 1, repeat: 1)
        counts.set(.accepting, 1)
    }

    deinit {
        readBuffer.deallocate()
        peerStorage.deallocate()
        addressKeys?.deallocate()
        if spareFD >= 0 { Socket.close(spareFD) }
        if listenerOpen { Socket.close(listenerFD) }
    }

    /// Runs the loop until it has drained after a stop request.
    func run() {
        loop.run()
        metrics.stopped.store(true, ordering: .relaxed)
    }

    // MARK: Connections

    /// Serves a new connection, whose place under the cap is taken (and whose
    /// address key, with `--max-connections-per-ip`, is admitted).
    func open(_ fd: Int32, addressKey: UInt64 = 0) {
        let slot = table.acquire()
        let entry = table[slot]
        if settings.addressLimit != nil { keepAddressKey(addressKey, for: slot) }
        entry.pointee.fd = fd
        entry.pointee.inputOpen = true
        entry.pointee.writeBlocked = false
        entry.pointee.armedDeadline = .zero
        entry.pointee.acceptedAt = now
        counts.add(.accepted)
        counts.add(.active)
        if debugEnabled { logAccepted(ConnectionInfo(fd: fd)) }
        perform(handler.opened(&entry.pointee.session, now: now), slot, entry)
    }

    /// Input first: a read may end the session, and then writability is moot.
    private func ioReady(slot: Int, events: IOEvents) {
        let entry = table[slot]
        if entry.pointee.inputOpen, events.contains(.readable) || events.contains(.error) {
            readOnce(slot, entry)
            guard entry.pointee.fd >= 0 else { return }
        }
        if events.contains(.writable), entry.pointee.writeBlocked {
            entry.pointee.writeBlocked = false
            perform(handler.writable(&entry.pointee.session, now: now), slot, entry)
        }
    }

    /// One read per readiness event: level-triggered epoll reports the
    /// socket again if more is waiting, after every other ready connection
    /// had its turn.
    private func readOnce(_ slot: Int, _ entry: Entry) {
        let step: ConnectionStep
        let limit = handler.readLimit(&entry.pointee.session)
        guard limit > 0 else { return }
        let buffer = limit < readBuffer.count ? UnsafeMutableRawBufferPointer(rebasing: readBuffer[..<limit]) : readBuffer
        switch Socket.read(entry.pointee.fd, into: buffer) {
        case .read(let count):
            counts.add(.octetsReceived, count)
            step = handler.received(&entry.pointee.session, UnsafeMutableRawBufferPointer(rebasing: readBuffer[..<count]), now: now)
        case .endOfInput:
            entry.pointee.inputOpen = false
            step = handler.inputEnded(&entry.pointee.session, now: now)
        case .wouldBlock:
            return
        case .failed:
            step = handler.failed(&entry.pointee.session)
        }
        perform(step, slot, entry)
    }

    /// Carries out `step`, and the steps that follow from it at once.
    private func perform(_ first: ConnectionStep, _ slot: Int, _ entry: Entry) {
        var step = first
        while true {
            switch step {
            case .wait:
                updateInterest(entry)
                return
            case .setDeadline(let deadline):
                arm(slot, entry, deadline)
                updateInterest(entry)
                return
            case .send(let deadline):
                if let deadline { arm(slot, entry, deadline) }
                if entry.pointee.writeBlocked {
                    updateInterest(entry)
                    return
                }
                step = writeOnce(entry)
            case .shutDownWrite(let deadline):
                if Socket.shutdownWrite(entry.pointee.fd) != nil {
                    step = handler.failed(&entry.pointee.session)
                    continue
                }
                arm(slot, entry, deadline)
                updateInterest(entry)
                return
            case .close(let outcome):
                finish(slot, entry, outcome)
                return
            case .reject:
                finish(slot, entry, nil)
                return
            }
        }
    }

    /// The most one `sendfile` call is asked for, so one connection's spill
    /// cannot hold the loop for long.
    private static var sendFileSlice: Int { 1 << 20 }

    /// One write of what the handler offers; the handler's next step.
    private func writeOnce(_ entry: Entry) -> ConnectionStep {
        let fd = entry.pointee.fd
        let result: WriteOutcome
        switch handler.output(&entry.pointee.session) {
        case .empty:
            return .wait
        case .memory(let octets):
            result = Socket.send(fd, octets)
        case .file(let file, let offset, let count):
            result = Socket.sendFile(fd, from: file, offset: offset, count: min(count, Self.sendFileSlice))
        }
        switch result {
        case .wrote(let count):
            counts.add(.octetsSent, count)
            return handler.wrote(&entry.pointee.session, count, now: now)
        case .wouldBlock:
            entry.pointee.writeBlocked = true
            return handler.sendBlocked(&entry.pointee.session, now: now)
        case .failed:
            return handler.failed(&entry.pointee.session)
        }
    }

    /// Watches for input while the peer may send and the handler takes it,
    /// and for writability while output waits for it. (Unchanged interest
    /// costs no system call.)
    @inline(__always)
    private func updateInterest(_ entry: Entry) {
        let reading = entry.pointee.inputOpen && handler.readLimit(&entry.pointee.session) > 0
        var events: IOEvents = reading ? .readable : .none
        if entry.pointee.writeBlocked { events.insert(.writable) }
        table.io(entry).watch(fd: entry.pointee.fd, events: events, on: loop)
    }

    /// Counts the session's end (none for a connection rejected before its
    /// session), lets the handler free what it holds, and closes.
    func finish(_ slot: Int, _ entry: Entry, _ outcome: SessionOutcome?) {
        handler.closing(&entry.pointee.session, outcome, ConnectionInfo(fd: entry.pointee.fd), now: now)
        if let outcome {
            sessionCells.add(Int(outcome.rawValue))
            sessionDuration.record(now.nanoseconds - entry.pointee.acceptedAt.nanoseconds)
        }
        table.io(entry).stop(on: loop)
        if entry.pointee.armedDeadline != .zero {
            deadlines.cancel(slot)
            entry.pointee.armedDeadline = .zero
        }
        Socket.close(entry.pointee.fd)
        table.release(slot)
        counts.add(.active, -1)
        if let addressLimit = settings.addressLimit, let keys = addressKeys { addressLimit.release(keys[slot]) }
        sharedLimitBorrowed?._withUnsafeGuaranteedRef { $0.release() }
        if pausedAtCap { resumeBelowCap() }
        if draining && table.activeCount == 0 { endDrain() }
    }

    // MARK: Deadlines

    /// Sets the slot's deadline, unless it is set there already.
    private func arm(_ slot: Int, _ entry: Entry, _ deadline: Instant) {
        guard entry.pointee.armedDeadline != deadline else { return }
        entry.pointee.armedDeadline = deadline
        deadlines.schedule(slot, at: deadline.nanoseconds)
        if let target = deadlineTimerTarget, target <= deadline.nanoseconds { return }
        setDeadlineTimer()
    }

    /// The earliest deadline has come: each slot whose deadline has passed
    /// hears it (and may set a new one); then the timer is set for the next.
    private func deadlinesPassed() {
        deadlineTimerTarget = nil
        while let slot = deadlines.popExpired(now: now.nanoseconds) {
            let entry = table[slot]
            entry.pointee.armedDeadline = .zero
            guard entry.pointee.fd >= 0 else { continue }
            perform(handler.deadlinePassed(&entry.pointee.session, now: now), slot, entry)
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

    // MARK: The loop's own pulse

    /// One iteration of the loop, woken from its poll: every event of it
    /// sees one `now`, read as it begins (libev's `ev_now` idea, which spares
    /// a clock read per event); how long its callbacks took is
    /// `sixteen_loop_iteration_seconds`, and its end is the loop's pulse.
    private func runIteration() {
        now = Instant(nanoseconds: MonotonicClock.nanoseconds())
        loop.invokePending()
        let end = MonotonicClock.nanoseconds()
        iterationDuration.record(end - now.nanoseconds)
        metrics.lastIterationEnd.store(end, ordering: .relaxed)
    }

    private func logAccepted(_ connection: ConnectionInfo) {
        let peer = connection.peer
        logger.debug("We have accepted a connection from \(peer)")
        logger.debug("Socket name: \(connection.local)")
        logger.debug("Socket peer: \(peer)")
    }
}
