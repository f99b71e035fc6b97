#if canImport(Glibc)
import Glibc
#endif
import Histogram
import Reactor
import SixteenProtocol
import Synchronization

/// One connection of a worker, at a stable address (its watchers live here).
struct LoadSlot {
    var io = PooledIOStorage()
    var timer = PooledTimerStorage()
    var fd: Int32 = -1
    var session: LoadSession
    /// When this session was meant to start (open loop) or started (closed loop).
    var intendedStart = Instant.zero
    var actualStart = Instant.zero
    var connecting = false
    var writeBlocked = false
    /// Waiting on its timer for the next scheduled start (open loop).
    var waitingToStart = false
    /// No more sessions for this connection.
    var retired = false
    /// This connection's index among all the generator's connections.
    var globalIndex = 0
}

/// One thread of the load generator: a loop driving its share of the
/// connections, each through back-to-back `LoadSession`s.
final class LoadWorker {
    let loop: EventLoop
    let counters = LoadCounters()
    let configuration: LoadConfiguration
    let target: SocketAddress
    let slots: UnsafeMutablePointer<LoadSlot>
    let slotCount: Int
    private let pattern: UnsafeMutableRawBufferPointer
    private let readBuffer: UnsafeMutableRawBufferPointer
    /// Sessions this worker may still start (for `-n`), nil for `-d`.
    var quota: Int?
    private var startedAt = Instant.zero
    private var measureFrom = Instant.zero
    var stopStartingAt = Instant(nanoseconds: .max)
    /// The run's end, and the latest a late session may still start.
    var lateStartLimit = Instant(nanoseconds: .max)
    var live = 0
    var waiting = 0
    /// Inside `begin`: a session that ends now must not start the next one recursively.
    var beginning = false
    private var stopWatcher: AsyncWatcher!
    private var stopTimer: TimerWatcher!
    /// What the loop calls per event (kept here: the loop holds it
    /// unretained; the closures lend this worker to each call).
    private var callbacks: LoopCallbacks!

    /// Latency from the intended start (corrected for coordinated omission) and from the actual start, in ns.
    var corrected = LatencyHistogram.make()
    var uncorrected = LatencyHistogram.make()
    /// The same, and failures, per interval (with `configuration.interval`).
    let intervals: IntervalRing?
    private var intervalTimer: TimerWatcher?
    /// Latencies past the histogram's range (an hour): counted, never dropped silently.
    var outOfRange = 0
    var measuredSessions = 0
    var measuredOctets = 0
    var lastFinish = Instant.zero

    var stopWakeup: AsyncWakeup { stopWatcher.wakeup }

    init(configuration: LoadConfiguration, target: SocketAddress, firstConnection: Int, connections: Int, quota: Int?) throws(ReactorError) {
        self.configuration = configuration
        self.target = target
        self.quota = quota
        intervals = configuration.interval.map { IntervalRing(interval: $0) }
        loop = try EventLoop()
        slotCount = connections
        slots = .allocate(capacity: connections)
        let session = LoadSession(mode: configuration.mode, timeout: configuration.timeout)
        for index in 0..<connections {
            (slots + index).initialize(to: LoadSlot(session: session, globalIndex: firstConnection + index))
            Self.io(slots + index).prepare(slot: index)
            Self.timer(slots + index).prepare(slot: index)
        }
        pattern = .allocate(byteCount: 64 * 1024, alignment: 16)
        for offset in 0..<pattern.count {
            pattern[offset] = LoadSession.requestOctet(configuration.mode, at: offset % session.requestLength)
        }
        readBuffer = .allocate(byteCount: 256 * 1024, alignment: 16)
        let this = Unmanaged.passUnretained(self)
        callbacks = LoopCallbacks(
            ioReady: { slot, events in this._withUnsafeGuaranteedRef { $0.ioReady(slot: slot, events: events) } },
            timerFired: { slot in this._withUnsafeGuaranteedRef { $0.timerFired(slot: slot) } })
        loop.install(callbacks)
        stopWatcher = AsyncWatcher(loop: loop) { [unowned self] in self.abandonAll() }
        stopTimer = TimerWatcher(loop: loop) { [unowned self] in self.stopStarting() }
        stopWatcher.start()
        if let intervals {
            intervalTimer = TimerWatcher(loop: loop) { [unowned self] in intervals.advance(at: self.now) }
        }
    }

    deinit {
        for index in 0..<slotCount where slots[index].fd >= 0 { Socket.close(slots[index].fd) }
        slots.deinitialize(count: slotCount)
        slots.deallocate()
        pattern.deallocate()
        readBuffer.deallocate()
    }

    /// Runs every connection until the quota or the duration is done.
    func run(startingAt start: Instant) {
        // The loop was made before a --start-at wait: its idea of now must catch up.
        loop.updateNow()
        startedAt = start
        if let intervals, let intervalTimer {
            intervals.begin(at: start)
            intervalTimer.start(after: intervals.secondsToNextBoundary(from: now), repeat: intervals.intervalSeconds)
        }
        defer {
            intervalTimer?.stop()
            intervals?.finish()
        }
        measureFrom = start + configuration.warmup
        if let duration = configuration.duration {
            stopStartingAt = measureFrom + duration
            lateStartLimit = stopStartingAt + min(.seconds(1), duration / 10)
            stopTimer.start(after: now.seconds(until: stopStartingAt))
        }
        for index in 0..<slotCount {
            let entry = slots + index
            if let rate = configuration.rate {
                entry.pointee.intendedStart = start + .nanoseconds(Int64(Double(entry.pointee.globalIndex) / rate * 1e9))
                schedule(index)
            } else {
                begin(index, intended: now)
            }
        }
        if live > 0 || waiting > 0 { loop.run() }
    }

    func setWaiting(_ entry: UnsafeMutablePointer<LoadSlot>, _ value: Bool) {
        guard entry.pointee.waitingToStart != value else { return }
        entry.pointee.waitingToStart = value
        waiting += value ? 1 : -1
    }

    @inline(__always)
    var now: Instant { Instant(nanoseconds: MonotonicClock.nanoseconds()) }

    static func io(_ entry: UnsafeMutablePointer<LoadSlot>) -> PooledIO {
        PooledIO((UnsafeMutableRawPointer(entry) + MemoryLayout<LoadSlot>.offset(of: \LoadSlot.io)!).assumingMemoryBound(to: PooledIOStorage.self))
    }

    static func timer(_ entry: UnsafeMutablePointer<LoadSlot>) -> PooledTimer {
        PooledTimer((UnsafeMutableRawPointer(entry) + MemoryLayout<LoadSlot>.offset(of: \LoadSlot.timer)!).assumingMemoryBound(to: PooledTimerStorage.self))
    }

    // MARK: Events

    private func ioReady(slot index: Int, events: IOEvents) {
        let entry = slots + index
        guard entry.pointee.fd >= 0 else { return }
        if entry.pointee.connecting {
            entry.pointee.connecting = false
            if let error = Socket.pendingError(entry.pointee.fd) {
                perform(entry.pointee.session.connectFailed(refused: error == .connectionRefused), index)
            } else {
                counters.add(counters.connected)
                perform(entry.pointee.session.connected(now: now), index)
            }
            return
        }
        if events.contains(.readable) || events.contains(.error), entry.pointee.session.readsNow {
            let action: LoadAction
            switch Socket.read(entry.pointee.fd, into: readBuffer) {
            case .read(let count):
                counters.add(counters.octetsReceived, count)
                action = entry.pointee.session.received(UnsafeRawBufferPointer(rebasing: readBuffer[..<count]), now: now)
            case .endOfInput:
                action = entry.pointee.session.inputEnded(now: now)
            case .wouldBlock:
                action = .wait
            case .failed:
                action = entry.pointee.session.connectionFailed()
            }
            perform(action, index)
            guard entry.pointee.fd >= 0 else { return }
        }
        if events.contains(.writable) && entry.pointee.writeBlocked {
            entry.pointee.writeBlocked = false
            perform(entry.pointee.session.becameWritable(now: now), index)
        }
    }

    private func timerFired(slot index: Int) {
        let entry = slots + index
        if entry.pointee.waitingToStart {
            begin(index, intended: entry.pointee.intendedStart)
            return
        }
        guard entry.pointee.fd >= 0 else { return }
        perform(entry.pointee.session.timerFired(now: now), index)
    }

    func perform(_ action: LoadAction, _ index: Int) {
        let entry = slots + index
        var action = action
        while true {
            switch action {
            case .wait:
                updateInterest(entry)
                return
            case .armTimer(let deadline):
                Self.timer(entry).arm(inSeconds: now.seconds(until: deadline), on: loop)
                updateInterest(entry)
                return
            case .send(let offset):
                let length = entry.pointee.session.requestLength
                let start = offset % pattern.count
                let count = min(pattern.count - start, length - offset)
                switch Socket.send(entry.pointee.fd, UnsafeRawBufferPointer(rebasing: pattern[start..<(start + count)])) {
                case .wrote(let n):
                    counters.add(counters.octetsSent, n)
                    action = entry.pointee.session.wrote(n, now: now)
                case .wouldBlock:
                    entry.pointee.writeBlocked = true
                    updateInterest(entry)
                    return
                case .failed:
                    action = entry.pointee.session.connectionFailed()
                }
            case .shutdownWrite:
                Socket.shutdownWrite(entry.pointee.fd)
                updateInterest(entry)
                return
            case .finish(let outcome):
                finish(index, outcome)
                return
            }
        }
    }

    private func updateInterest(_ entry: UnsafeMutablePointer<LoadSlot>) {
        guard entry.pointee.fd >= 0, !entry.pointee.connecting else { return }
        var events: IOEvents = entry.pointee.session.readsNow ? .readable : .none
        if entry.pointee.writeBlocked { events.insert(.writable) }
        Self.io(entry).watch(fd: entry.pointee.fd, events: events, on: loop)
    }

    private func finish(_ index: Int, _ outcome: LoadOutcome) {
        let entry = slots + index
        let time = now
        Self.io(entry).stop(on: loop)
        Self.timer(entry).stop(on: loop)
        if entry.pointee.fd >= 0 {
            if outcome == .ok { Socket.close(entry.pointee.fd) } else { Socket.abort(entry.pointee.fd) }
            entry.pointee.fd = -1
        }
        entry.pointee.connecting = false
        counters.count(outcome)
        counters.add(counters.inFlight, -1)
        live -= 1
        if outcome == .ok, let end = entry.pointee.session.replyCompletedAt, end >= measureFrom {
            let fromIntended = max(0, end.nanoseconds - entry.pointee.intendedStart.nanoseconds)
            let fromActual = max(0, end.nanoseconds - entry.pointee.actualStart.nanoseconds)
            if !corrected.record(UInt64(max(fromIntended, 1_000))) { outOfRange += 1 }
            uncorrected.record(UInt64(max(fromActual, 1_000)))
            if let slot = intervals?.slot(at: time) {
                slot.pointee.corrected.record(UInt64(max(fromIntended, 1_000)))
                slot.pointee.uncorrected.record(UInt64(max(fromActual, 1_000)))
                slot.pointee.sessions += 1
            }
            measuredSessions += 1
            measuredOctets += entry.pointee.session.octetsReceived
            lastFinish = max(lastFinish, time)
        } else if outcome.isFailure, let slot = intervals?.slot(at: time) {
            slot.pointee.errors += 1
        }
        next(index, after: outcome)
    }

    /// The connection's next session: at once (closed loop) or on schedule
    /// (open loop). After a failed connect it waits `retryDelay` first, so a
    /// refusing server or exhausted ports cannot make the client spin; and a
    /// connect that failed inside `begin` never starts the next session on the
    /// same call stack.
    private func next(_ index: Int, after outcome: LoadOutcome) {
        let entry = slots + index
        if case .idle = configuration.mode {
            retire(index)
            return
        }
        let failedToConnect = outcome == .refused || outcome == .connectFailed
        if let rate = configuration.rate {
            entry.pointee.intendedStart = entry.pointee.intendedStart + .nanoseconds(Int64(Double(configuration.connections) / rate * 1e9))
            if failedToConnect || beginning {
                startLater(index, at: max(entry.pointee.intendedStart, now + Self.retryDelay))
            } else {
                schedule(index)
            }
        } else if failedToConnect || beginning {
            entry.pointee.intendedStart = now + Self.retryDelay
            startLater(index, at: entry.pointee.intendedStart)
        } else {
            begin(index, intended: now)
        }
        if live == 0 && waiting == 0 { loop.breakAll() }
    }

    private static var retryDelay: Duration { .milliseconds(1) }

    /// Starts the connection's next session from its timer, at `time`.
    private func startLater(_ index: Int, at time: Instant) {
        let entry = slots + index
        guard mayStart(at: entry.pointee.intendedStart) else {
            retire(index)
            return
        }
        setWaiting(entry, true)
        Self.timer(entry).arm(inSeconds: now.seconds(until: time), on: loop)
    }

}
