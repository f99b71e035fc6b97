#if canImport(Glibc)
import Glibc
#endif
import Reactor
import SixteenProtocol

/// When a load worker's sessions start (closed loop at once, open loop at
/// their intended times, idle connections held until the release) and how
/// the worker stops starting them: at the end of the run, or at the hard
/// deadline, abandoning what is in flight.
extension LoadWorker {
    /// Whether a session meant to start at `time` may start now: within the
    /// quota, meant for the run's time, and, however late the loop is, not
    /// after the run is over (plus a little grace for a late timer): a
    /// server that cannot keep up with `--rate` does not make the run last
    /// longer than `-d` (as in wrk2); what it could not start is dropped.
    func mayStart(at time: Instant) -> Bool {
        if let quota, quota <= 0 { return false }
        // Idle: every connection opens once, however long opening them all
        // takes (the hold begins for each as it opens; the release is common).
        if case .idle = configuration.mode { return counters.started.load(ordering: .relaxed) < slotCount }
        return time < stopStartingAt && now < lateStartLimit
    }

    /// Open loop: start at the intended time, or at once if it has passed.
    func schedule(_ index: Int) {
        let entry = slots + index
        let time = now
        // Open loop: a session belongs to the run if its intended start does,
        // however late the loop gets to it.
        guard mayStart(at: entry.pointee.intendedStart) else {
            retire(index)
            return
        }
        if entry.pointee.intendedStart <= time {
            begin(index, intended: entry.pointee.intendedStart)
        } else {
            setWaiting(entry, true)
            Self.timer(entry).arm(inSeconds: time.seconds(until: entry.pointee.intendedStart), on: loop)
        }
    }

    func begin(_ index: Int, intended: Instant) {
        let entry = slots + index
        let time = now
        guard mayStart(at: intended) else {
            retire(index)
            return
        }
        if quota != nil { quota! -= 1 }
        setWaiting(entry, false)
        // Closed loop: the intended start is the actual one, so both tags of
        // the interval log hold the same data, to the nanosecond.
        entry.pointee.intendedStart = configuration.rate == nil ? time : intended
        entry.pointee.actualStart = time
        entry.pointee.session = LoadSession(mode: configuration.mode, timeout: configuration.timeout)
        entry.pointee.writeBlocked = false
        counters.add(counters.started)
        counters.add(counters.inFlight)
        live += 1
        beginning = true
        defer { beginning = false }
        perform(entry.pointee.session.started(now: time), index)
        let fd: Int32
        do {
            fd = try Socket.makeTCP(family: target.family)
        } catch {
            perform(entry.pointee.session.connectFailed(refused: false), index)
            return
        }
        entry.pointee.fd = fd
        if !configuration.sources.isEmpty {
            let source = configuration.sources[entry.pointee.globalIndex % configuration.sources.count]
            Socket.bindAddressWithoutPort(fd)
            if source.withSockAddr({ bind(fd, $0, $1) }) != 0 {
                perform(entry.pointee.session.connectFailed(refused: false), index)
                return
            }
        }
        if let error = Socket.startConnect(fd, to: target) {
            perform(entry.pointee.session.connectFailed(refused: error == .connectionRefused), index)
            return
        }
        entry.pointee.connecting = true
        Self.io(entry).watch(fd: fd, events: .writable, on: loop)
    }

    func retire(_ index: Int) {
        let entry = slots + index
        guard !entry.pointee.retired else { return }
        countDropped(entry)
        entry.pointee.retired = true
        setWaiting(entry, false)
        Self.timer(entry).stop(on: loop)
        if live == 0 && waiting == 0 { loop.breakAll() }
    }

    /// The duration is over: no new sessions; idle connections run their exchange now.
    func stopStarting() {
        // A waiting session whose intended start fell inside the run still
        // starts: when the loop is late, its timer may fire after this one.
        for index in 0..<slotCount where slots[index].waitingToStart && slots[index].intendedStart >= stopStartingAt {
            retire(index)
        }
        if case .idle = configuration.mode { releaseIdle() }
        if live == 0 && waiting == 0 { loop.breakAll() }
    }

    // MARK: Ending

    /// Idle mode: every held connection may now run its exchange.
    /// Their latency runs from the release, not from the connect: the hold is
    /// the run's design, not the server's delay.
    func releaseIdle() {
        for index in 0..<slotCount where slots[index].fd >= 0 {
            let time = now
            slots[index].intendedStart = time
            slots[index].actualStart = time
            perform(slots[index].session.releasedToSend(now: time), index)
        }
    }

    /// Sessions this connection was to start and never will: in the open
    /// loop, every intended start before the end that has not come; with a
    /// quota, the quota's share it did not reach (counted by the generator).
    func countDropped(_ entry: UnsafeMutablePointer<LoadSlot>) {
        guard let rate = configuration.rate, configuration.duration != nil,
              entry.pointee.intendedStart < stopStartingAt, stopStartingAt.nanoseconds != .max else { return }
        let interval = Double(configuration.connections) / rate * 1e9
        let span = Double(stopStartingAt.nanoseconds - entry.pointee.intendedStart.nanoseconds)
        counters.add(counters.dropped, Int((span / interval).rounded(.up)))
    }

    /// The hard deadline: whatever is in flight is unfinished.
    func abandonAll() {
        stopStartingAt = .zero
        quota = 0
        for index in 0..<slotCount {
            if slots[index].fd >= 0 {
                perform(slots[index].session.abandoned(), index)
            } else if slots[index].waitingToStart {
                retire(index)
            }
        }
        loop.breakAll()
    }
}
