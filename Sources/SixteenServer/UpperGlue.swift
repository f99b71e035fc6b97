import Logging
import Reactor
import SixteenProtocol

/// An `upper` connection's own state: the session, and its pending output.
struct UpperConnection {
    var session: UpperSession
    var output = OutputQueue()
}

/// The `upper` protocol's glue. Reads are never held back by pending output
/// (the read watcher stays on until EOF); pending output goes to the slot's
/// output queue — memory, then an unnamed spill file — and leaves it through
/// `send` (memory) or `sendfile` (file) as the socket drains.
enum UpperGlue: ServedProtocol {
    typealias Session = UpperConnection
    typealias Reactor = ServerReactor<UpperGlue>
    typealias Entry = UnsafeMutablePointer<ConnectionSlot<UpperConnection>>

    /// The most a single `sendfile` call is asked for, so one connection's
    /// spill cannot hold the loop for long.
    private static var sendFileSlice: Int { 1 << 20 }

    static func blankSession(_ configuration: ServerConfiguration) -> UpperConnection {
        UpperConnection(session: UpperSession(limits: configuration.upper))
    }

    static func opened(_ slot: Int, on reactor: Reactor, now: Instant) {
        let entry = reactor.table[slot]
        entry.pointee.session = UpperConnection(session: UpperSession(limits: reactor.configuration.upper))
        perform(entry.pointee.session.session.accepted(now: now), on: slot, reactor)
    }

    static func writable(_ slot: Int, on reactor: Reactor) {
        perform(reactor.table[slot].pointee.session.session.becameWritable(now: reactor.now), on: slot, reactor)
    }

    static func timerFired(_ slot: Int, on reactor: Reactor, now: Instant) {
        perform(reactor.table[slot].pointee.session.session.timerFired(now: now), on: slot, reactor)
    }

    /// Returns a closing slot's chunks to the pool and closes its spill file.
    static func closing(_ entry: Entry, on reactor: Reactor) {
        guard !entry.pointee.session.output.isEmpty || entry.pointee.session.output.hasSpillFile else { return }
        let before = snapshot(entry)
        entry.pointee.session.output.release(pool: reactor.pool)
        noteOutputChange(entry, since: before, reactor)
    }

    static func readable(_ slot: Int, on reactor: Reactor) {
        let entry = reactor.table[slot]
        var action: UpperAction
        switch Socket.read(entry.pointee.fd, into: reactor.readBuffer) {
        case .read(let count):
            action = entry.pointee.session.session.received(count, now: reactor.now)
            if action == .queueAndSend {
                let octets = UnsafeMutableRawBufferPointer(rebasing: reactor.readBuffer[..<count])
                uppercaseASCII(octets)
                action = sendOrQueue(UnsafeRawBufferPointer(octets), on: entry, reactor)
            }
        case .endOfInput:
            entry.pointee.inputOpen = false
            reactor.updateInterest(entry, writing: reactor.isWaitingToWrite(entry))
            action = entry.pointee.session.session.inputEnded(now: reactor.now)
        case .wouldBlock:
            return
        case .failed:
            action = entry.pointee.session.session.connectionFailed()
        }
        perform(action, on: slot, reactor)
    }

    /// With nothing queued, the new octets go straight from the read buffer to
    /// the socket (no copy); whatever the socket does not take is queued.
    /// A full socket makes the glue wait for writability instead of trying again.
    private static func sendOrQueue(_ octets: UnsafeRawBufferPointer, on entry: Entry, _ reactor: Reactor) -> UpperAction {
        guard entry.pointee.session.output.isEmpty else {
            // Older output first; the socket is full or about to be.
            return enqueue(octets, on: entry, reactor) ?? (reactor.isWaitingToWrite(entry) ? .wait : .send)
        }
        switch Socket.send(entry.pointee.fd, octets) {
        case .wrote(let count):
            let next = entry.pointee.session.session.wrote(count, now: reactor.now)
            guard count < octets.count else { return next }
            return enqueue(UnsafeRawBufferPointer(rebasing: octets[count...]), on: entry, reactor) ?? .send
        case .wouldBlock:
            if let failed = enqueue(octets, on: entry, reactor) { return failed }
            reactor.updateInterest(entry, writing: true)
            return .wait
        case .failed:
            return entry.pointee.session.session.connectionFailed()
        }
    }

    /// Appends to the slot's output queue; on a storage failure, the action that ends the session.
    private static func enqueue(_ octets: UnsafeRawBufferPointer, on entry: Entry, _ reactor: Reactor) -> UpperAction? {
        let before = snapshot(entry)
        let failure = entry.pointee.session.output.append(
            octets, pool: reactor.pool, highWaterMark: reactor.configuration.output.highWaterMark, spill: reactor.spillDirectory)
        noteOutputChange(entry, since: before, reactor)
        guard let failure else { return nil }
        reactor.warnRateLimited("cannot spill pending output to \(reactor.spillDirectory.path): \(failure); closing the session", level: .error)
        return entry.pointee.session.session.storageFailed()
    }

    /// Carries out `action` and whatever actions follow from it at once.
    static func perform(_ action: UpperAction, on slot: Int, _ reactor: Reactor) {
        let entry = reactor.table[slot]
        var action = action
        while true {
            switch action {
            case .wait:
                if entry.pointee.session.output.isEmpty, reactor.isWaitingToWrite(entry) {
                    reactor.updateInterest(entry, writing: false)
                }
                return
            case .armTimer(let deadline):
                reactor.arm(slot, deadline)
                return
            case .queueAndSend, .send:
                guard let next = sendPending(entry, reactor) else { return }
                action = next
            case .close(let outcome):
                finished(slot, outcome, reactor)
                return
            }
        }
    }

    /// One write from the front of the queue; the session's next action, or
    /// nil when the socket is full (writability is then watched).
    private static func sendPending(_ entry: Entry, _ reactor: Reactor) -> UpperAction? {
        let fd = entry.pointee.fd
        let outcome: WriteOutcome
        switch entry.pointee.session.output.front {
        case .empty:
            return .wait
        case .memory(let octets):
            outcome = Socket.send(fd, octets)
        case .file(let file, let offset, let count):
            outcome = Socket.sendFile(fd, from: file, offset: offset, count: min(count, sendFileSlice))
            if outcome == .wrote(0) {
                // The spill file ended early: it no longer holds what we wrote.
                reactor.warnRateLimited("spill file shorter than expected; closing the session", level: .error)
                return entry.pointee.session.session.storageFailed()
            }
        }
        switch outcome {
        case .wrote(let count):
            let before = snapshot(entry)
            entry.pointee.session.output.consume(count, pool: reactor.pool)
            noteOutputChange(entry, since: before, reactor)
            return entry.pointee.session.session.wrote(count, now: reactor.now)
        case .wouldBlock:
            if !reactor.isWaitingToWrite(entry) { reactor.updateInterest(entry, writing: true) }
            return nil
        case .failed:
            return entry.pointee.session.session.connectionFailed()
        }
    }

    private static func snapshot(_ entry: Entry) -> (spilled: Int, hadFile: Bool) {
        (entry.pointee.session.output.spilledOctets, entry.pointee.session.output.hasSpillFile)
    }

    /// Keeps the memory and spill gauges in step with a queue change.
    private static func noteOutputChange(_ entry: Entry, since before: (spilled: Int, hadFile: Bool), _ reactor: Reactor) {
        let output = entry.pointee.session.output
        reactor.spilledOctets += output.spilledOctets - before.spilled
        if output.hasSpillFile != before.hadFile { reactor.spillFiles += output.hasSpillFile ? 1 : -1 }
        let counters = reactor.counters
        counters.set(counters.bufferedBytes, reactor.pool.bytesInUse)
        counters.set(counters.spilledOctets, reactor.spilledOctets)
        counters.set(counters.spillFiles, reactor.spillFiles)
    }

    private static func finished(_ slot: Int, _ outcome: UpperOutcome, _ reactor: Reactor) {
        let entry = reactor.table[slot]
        let counters = reactor.counters
        let logger = reactor.logger
        switch outcome {
        case .completed(let echoed):
            counters.add(counters.streamsCompleted)
            counters.add(counters.octetsEchoed, echoed)
            if reactor.debugEnabled { logger.debug("Stream from \(reactor.describePeer(entry.pointee.fd)) complete: \(echoed) octets echoed") }
        case .overflowed(let pending):
            counters.add(counters.overflows)
            counters.add(counters.octetsEchoed, entry.pointee.session.session.octetsSent)
            logger.warning("Closing \(reactor.describePeer(entry.pointee.fd)): \(pending) octets pending would exceed --max-pending \(reactor.configuration.upper.maxPending) (the client sends without reading)")
        case .idleTimedOut(let received, let sent):
            counters.add(counters.idleTimeouts)
            counters.add(counters.octetsEchoed, sent)
            if reactor.debugEnabled { logger.debug("Stream from \(reactor.describePeer(entry.pointee.fd)) idle: closed after \(received) octets in, \(sent) out") }
        case .reset(let received, let sent):
            counters.add(counters.resets)
            counters.add(counters.octetsEchoed, sent)
            if reactor.debugEnabled { logger.debug("Stream from \(reactor.describePeer(entry.pointee.fd)) reset after \(received) octets in, \(sent) out") }
        case .storageFailed(_, let sent):
            counters.add(counters.storageFailures)
            counters.add(counters.octetsEchoed, sent)
        }
        reactor.close(slot)
    }
}
