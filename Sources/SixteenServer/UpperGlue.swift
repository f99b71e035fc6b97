import Logging
import Reactor
import SixteenProtocol

/// The `upper` protocol's glue. Reads are never held back by pending output
/// (the read watcher stays on until EOF); pending output goes to the slot's
/// output queue — memory, then an unnamed spill file — and leaves it through
/// `send` (memory) or `sendfile` (file) as the socket drains.
extension ServerReactor {
    /// The most a single `sendfile` call is asked for, so one connection's
    /// spill cannot hold the loop for long.
    private static var sendFileSlice: Int { 1 << 20 }

    func upperOpened(_ slot: Int, now: Instant) {
        let entry = table[slot]
        entry.pointee.session = .upper(UpperSession(limits: configuration.upper))
        performUpper(entry.upper { $0.accepted(now: now) }, on: slot)
    }

    func upperReady(_ slot: Int, events: IOEvents) {
        let entry = table[slot]
        if entry.pointee.inputOpen, events.contains(.readable) || events.contains(.error) {
            upperRead(slot)
            guard entry.pointee.fd >= 0 else { return }
        }
        if events.contains(.writable) {
            performUpper(entry.upper { $0.becameWritable(now: now) }, on: slot)
        }
    }

    private func upperRead(_ slot: Int) {
        let entry = table[slot]
        var action: UpperAction
        switch Socket.read(entry.pointee.fd, into: readBuffer) {
        case .read(let count):
            action = entry.upper { $0.received(count, now: now) }
            if action == .queueAndSend {
                let octets = UnsafeMutableRawBufferPointer(rebasing: readBuffer[..<count])
                uppercaseASCII(octets)
                action = enqueue(UnsafeRawBufferPointer(octets), on: entry) ?? .send
            }
        case .endOfInput:
            entry.pointee.inputOpen = false
            updateInterest(entry, writing: entry.io.events.contains(.writable))
            action = entry.upper { $0.inputEnded(now: now) }
        case .wouldBlock:
            return
        case .failed:
            action = entry.upper { $0.connectionFailed() }
        }
        performUpper(action, on: slot)
    }

    /// Appends to the slot's output queue; on a storage failure, the action that ends the session.
    private func enqueue(_ octets: UnsafeRawBufferPointer, on entry: UnsafeMutablePointer<ConnectionSlot>) -> UpperAction? {
        let hadFile = entry.pointee.output.hasSpillFile
        let spilledBefore = entry.pointee.output.spilledOctets
        let failure = entry.pointee.output.append(
            octets, pool: pool, highWaterMark: configuration.output.highWaterMark, spill: spillDirectory)
        noteOutputChange(entry, spilledBefore: spilledBefore, hadFile: hadFile)
        guard let failure else { return nil }
        warnRateLimited("cannot spill pending output to \(spillDirectory.path): \(failure); closing the session", level: .error)
        return entry.upper { $0.storageFailed() }
    }

    /// Carries out `action` and whatever actions follow from it at once.
    func performUpper(_ action: UpperAction, on slot: Int) {
        let entry = table[slot]
        var action = action
        while true {
            switch action {
            case .wait:
                if entry.pointee.output.isEmpty, entry.io.events.contains(.writable) {
                    updateInterest(entry, writing: false)
                }
                return
            case .armTimer(let deadline):
                arm(entry, deadline)
                return
            case .queueAndSend, .send:
                guard let next = sendPending(entry) else { return }
                action = next
            case .close(let outcome):
                upperFinished(slot, outcome)
                return
            }
        }
    }

    /// One write from the front of the queue; the session's next action, or
    /// nil when the socket is full (writability is then watched).
    private func sendPending(_ entry: UnsafeMutablePointer<ConnectionSlot>) -> UpperAction? {
        let fd = entry.pointee.fd
        let outcome: WriteOutcome
        switch entry.pointee.output.front {
        case .empty:
            return .wait
        case .memory(let octets):
            outcome = Socket.send(fd, octets)
        case .file(let file, let offset, let count):
            outcome = Socket.sendFile(fd, from: file, offset: offset, count: min(count, Self.sendFileSlice))
            if outcome == .wrote(0) {
                // The spill file ended early: it no longer holds what we wrote.
                warnRateLimited("spill file shorter than expected; closing the session", level: .error)
                return entry.upper { $0.storageFailed() }
            }
        }
        switch outcome {
        case .wrote(let count):
            let hadFile = entry.pointee.output.hasSpillFile
            let spilledBefore = entry.pointee.output.spilledOctets
            entry.pointee.output.consume(count, pool: pool)
            noteOutputChange(entry, spilledBefore: spilledBefore, hadFile: hadFile)
            return entry.upper { $0.wrote(count, now: now) }
        case .wouldBlock:
            if !entry.io.events.contains(.writable) { updateInterest(entry, writing: true) }
            return nil
        case .failed:
            return entry.upper { $0.connectionFailed() }
        }
    }

    /// Keeps the memory and spill gauges in step with a queue change.
    private func noteOutputChange(_ entry: UnsafeMutablePointer<ConnectionSlot>, spilledBefore: Int, hadFile: Bool) {
        let output = entry.pointee.output
        spilledOctets += output.spilledOctets - spilledBefore
        if output.hasSpillFile != hadFile { spillFiles += output.hasSpillFile ? 1 : -1 }
        counters.set(counters.bufferedBytes, pool.bytesInUse)
        counters.set(counters.spilledOctets, spilledOctets)
        counters.set(counters.spillFiles, spillFiles)
    }

    /// Returns a closing slot's chunks to the pool and closes its spill file.
    func releaseOutput(_ entry: UnsafeMutablePointer<ConnectionSlot>) {
        let hadFile = entry.pointee.output.hasSpillFile
        let spilledBefore = entry.pointee.output.spilledOctets
        entry.pointee.output.release(pool: pool)
        noteOutputChange(entry, spilledBefore: spilledBefore, hadFile: hadFile)
    }

    private func upperFinished(_ slot: Int, _ outcome: UpperOutcome) {
        let entry = table[slot]
        switch outcome {
        case .completed(let echoed):
            counters.add(counters.streamsCompleted)
            counters.add(counters.octetsEchoed, echoed)
            if debugEnabled { logger.debug("Stream from \(describePeer(entry.pointee.fd)) complete: \(echoed) octets echoed") }
        case .overflowed(let pending):
            counters.add(counters.overflows)
            logger.warning("Closing \(describePeer(entry.pointee.fd)): \(pending) octets pending would exceed --max-pending \(configuration.upper.maxPending) (the client sends without reading)")
        case .idleTimedOut(let received, let sent):
            counters.add(counters.idleTimeouts)
            if debugEnabled { logger.debug("Stream from \(describePeer(entry.pointee.fd)) idle: closed after \(received) octets in, \(sent) out") }
        case .reset(let received, let sent):
            counters.add(counters.resets)
            if debugEnabled { logger.debug("Stream from \(describePeer(entry.pointee.fd)) reset after \(received) octets in, \(sent) out") }
        case .storageFailed:
            counters.add(counters.storageFailures)
        }
        if case .completed = outcome {} else {
            counters.add(counters.octetsEchoed, entry.upper { $0.octetsSent })
        }
        close(slot)
    }
}
