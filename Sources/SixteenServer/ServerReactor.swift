#if canImport(Glibc)
import Glibc
#endif
import Logging
import Reactor
import SixteenProtocol

/// One reactor thread of the server: its loop, its `SO_REUSEPORT` listener,
/// its connection table, and the glue that performs each session's actions
/// on real sockets. Everything here runs on the reactor's own thread, except
/// `stopWakeup.send()` and reading `counters`.
final class ServerReactor: PooledWatcherOwner {
    let index: Int
    let loop: EventLoop
    let counters = ReactorCounters()
    private let configuration: ServerConfiguration
    private let logger: Logger
    private let debugEnabled: Bool
    private let listenerFD: Int32
    private let table: ConnectionTable
    private let readBuffer: UnsafeMutableRawBufferPointer
    private let reply: UnsafeRawBufferPointer

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
        table = ConnectionTable(timeouts: configuration.timeouts)
        readBuffer = .allocate(byteCount: configuration.readBufferSize, alignment: 16)
        let replyCopy = UnsafeMutableRawBufferPointer.allocate(byteCount: sixteenReply.count, alignment: 1)
        replyCopy.copyBytes(from: sixteenReply)
        reply = UnsafeRawBufferPointer(replyCopy)
        spareFD = Self.openSpare()

        loop.pooledWatcherOwner = self
        listener = IOWatcher(loop: loop, fd: listenerFD, events: .readable) { [unowned self] _ in
            self.acceptBatch()
        }
        stopWatcher = AsyncWatcher(loop: loop) { [unowned self] in self.beginDrain() }
        acceptPause = TimerWatcher(loop: loop) { [unowned self] in self.resumeAccepting() }
        drainDeadline = TimerWatcher(loop: loop) { [unowned self] in self.abortRemaining() }
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
    /// see the connection end at once), and take the spare back; without a
    /// spare, stop watching the listener for a moment.
    private func shedForDescriptors(_ error: Errno) {
        warnRateLimited("out of descriptors (\(error)) on reactor \(index): shedding new connections; raise the limit (ulimit -n)")
        guard spareFD >= 0 else {
            pauseAccepting()
            return
        }
        Socket.close(spareFD)
        spareFD = -1
        for _ in 0..<configuration.acceptBatch {
            guard case .accepted(let fd) = Socket.accept(listenerFD) else { break }
            Socket.abort(fd)
            counters.add(counters.shedForDescriptors)
        }
        spareFD = Self.openSpare()
        if spareFD < 0 { pauseAccepting() }
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

    private func warnRateLimited(_ message: @autoclosure () -> String) {
        let now = MonotonicClock.nanoseconds()
        if let last = lastWarning, now - last < 1_000_000_000 { return }
        lastWarning = now
        logger.warning("\(message())")
    }

    // MARK: Sessions

    private func open(_ fd: Int32) {
        let slot = table.acquire()
        let entry = table[slot]
        entry.pointee.fd = fd
        entry.pointee.inputOpen = true
        entry.pointee.armedDeadline = .zero
        entry.pointee.session = SixteenSession(timeouts: configuration.timeouts)
        entry.io.watch(fd: fd, events: .readable, on: loop)
        counters.add(counters.accepted)
        counters.add(counters.active)
        if debugEnabled { logAccepted(fd) }
        perform(entry.pointee.session.accepted(now: now), on: slot)
    }

    func ioReady(slot: Int, events: IOEvents) {
        let entry = table[slot]
        if entry.pointee.inputOpen, events.contains(.readable) || events.contains(.error) {
            readAvailable(slot)
            guard entry.pointee.fd >= 0 else { return }
        }
        if events.contains(.writable) {
            perform(entry.pointee.session.becameWritable(now: now), on: slot)
        }
    }

    func timerFired(slot: Int) {
        let entry = table[slot]
        guard entry.pointee.fd >= 0 else { return }
        entry.pointee.armedDeadline = .zero
        perform(entry.pointee.session.timerFired(now: now), on: slot)
    }

    /// One read per readiness event: level-triggered epoll calls again if
    /// more is waiting, after every other ready connection had its turn.
    private func readAvailable(_ slot: Int) {
        let entry = table[slot]
        let action: SixteenAction
        switch Socket.read(entry.pointee.fd, into: readBuffer) {
        case .read(let count):
            action = entry.pointee.session.received(UnsafeRawBufferPointer(rebasing: readBuffer[..<count]), now: now)
        case .endOfInput:
            entry.pointee.inputOpen = false
            updateInterest(entry, writing: entry.io.events.contains(.writable))
            action = entry.pointee.session.inputEnded(now: now)
        case .wouldBlock:
            return
        case .failed:
            action = entry.pointee.session.connectionFailed()
        }
        perform(action, on: slot)
    }

    /// Carries out `action` and whatever actions follow from it at once.
    private func perform(_ action: SixteenAction, on slot: Int) {
        let entry = table[slot]
        var action = action
        while true {
            switch action {
            case .wait:
                return
            case .armTimer(let deadline):
                arm(entry, deadline)
                return
            case .writeReply(let offset, let deadline):
                arm(entry, deadline)
                switch Socket.send(entry.pointee.fd, UnsafeRawBufferPointer(rebasing: reply[offset...])) {
                case .wrote(let count):
                    updateInterest(entry, writing: false)
                    action = entry.pointee.session.wrote(count, now: now)
                case .wouldBlock:
                    updateInterest(entry, writing: true)
                    return
                case .failed:
                    action = entry.pointee.session.connectionFailed()
                }
            case .shutDownAndLinger(let deadline):
                if Socket.shutdownWrite(entry.pointee.fd) != nil {
                    action = entry.pointee.session.connectionFailed()
                    continue
                }
                updateInterest(entry, writing: false)
                arm(entry, deadline)
                return
            case .close(let outcome):
                finish(slot, outcome)
                return
            }
        }
    }

    private func updateInterest(_ entry: UnsafeMutablePointer<ConnectionSlot>, writing: Bool) {
        var events: IOEvents = entry.pointee.inputOpen ? .readable : .none
        if writing { events.insert(.writable) }
        entry.io.watch(fd: entry.pointee.fd, events: events, on: loop)
    }

    private func arm(_ entry: UnsafeMutablePointer<ConnectionSlot>, _ deadline: Instant) {
        guard entry.pointee.armedDeadline != deadline else { return }
        entry.pointee.armedDeadline = deadline
        entry.timer.arm(inSeconds: now.seconds(until: deadline), on: loop)
    }

    private func finish(_ slot: Int, _ outcome: SixteenOutcome) {
        let entry = table[slot]
        switch outcome {
        case .replied: counters.add(counters.replied)
        case .shortRequest: counters.add(counters.shortRequests)
        case .reset: counters.add(counters.resets)
        case .requestTimedOut: counters.add(counters.requestTimeouts)
        case .replyTimedOut: counters.add(counters.replyTimeouts)
        }
        if debugEnabled { logEnded(entry, outcome) }
        close(slot)
    }

    private func close(_ slot: Int) {
        let entry = table[slot]
        entry.io.stop(on: loop)
        entry.timer.stop(on: loop)
        Socket.close(entry.pointee.fd)
        table.release(slot)
        counters.add(counters.active, -1)
        if draining && table.activeCount == 0 { endDrain() }
    }

    @inline(__always)
    private var now: Instant { Instant(nanoseconds: MonotonicClock.nanoseconds()) }

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
            let entry = table[slot]
            counters.add(counters.abortedAtShutdown)
            if debugEnabled { logger.debug("Session \(describePeer(entry.pointee.fd)) aborted at shutdown") }
            close(slot)
        }
        endDrain()
    }

    private func endDrain() {
        drainDeadline.stop()
        stopWatcher.stop()
        loop.breakAll()
    }

    // MARK: Debug lines (the book's transcript; never at the default level)

    private func describePeer(_ fd: Int32) -> String {
        SocketAddress.peer(of: fd)?.pythonDescription ?? "(unknown peer)"
    }

    private func logAccepted(_ fd: Int32) {
        let peer = describePeer(fd)
        logger.debug("We have accepted a connection from \(peer)")
        logger.debug("Socket name: \(SocketAddress.local(of: fd)?.pythonDescription ?? "?")")
        logger.debug("Socket peer: \(peer)")
    }

    private func logEnded(_ entry: UnsafeMutablePointer<ConnectionSlot>, _ outcome: SixteenOutcome) {
        let peer = describePeer(entry.pointee.fd)
        switch outcome {
        case .replied:
            logger.debug("Incoming sixteen-octet message: \(pythonBytesLiteral(entry.pointee.session.request))")
            logger.debug("Reply sent, socket closed")
        case .shortRequest(let received):
            logger.debug("Short request from \(peer): was expecting 16 bytes but only received \(received)")
        case .reset(let received):
            logger.debug("Connection from \(peer) reset after \(received) request octets")
        case .requestTimedOut(let received):
            logger.debug("Request from \(peer) timed out with \(received) of 16 octets")
        case .replyTimedOut(let sent):
            logger.debug("Reply to \(peer) timed out with \(sent) of 16 octets written")
        }
    }
}
