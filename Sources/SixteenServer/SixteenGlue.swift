import Logging
import Reactor
import SixteenProtocol

/// The `sixteen` protocol's glue: reads feed the session, and its actions
/// become writes of the reply, a shutdown, timers and closes.
extension ServerReactor {
    func sixteenOpened(_ slot: Int, now: Instant) {
        let entry = table[slot]
        entry.pointee.session = .sixteen(SixteenSession(timeouts: configuration.timeouts))
        performSixteen(entry.sixteen { $0.accepted(now: now) }, on: slot)
    }

    func sixteenReady(_ slot: Int, events: IOEvents) {
        let entry = table[slot]
        if entry.pointee.inputOpen, events.contains(.readable) || events.contains(.error) {
            sixteenRead(slot)
            guard entry.pointee.fd >= 0 else { return }
        }
        if events.contains(.writable) {
            performSixteen(entry.sixteen { $0.becameWritable(now: now) }, on: slot)
        }
    }

    /// One read per readiness event: level-triggered epoll calls again if
    /// more is waiting, after every other ready connection had its turn.
    private func sixteenRead(_ slot: Int) {
        let entry = table[slot]
        let action: SixteenAction
        switch Socket.read(entry.pointee.fd, into: readBuffer) {
        case .read(let count):
            let octets = UnsafeRawBufferPointer(rebasing: readBuffer[..<count])
            action = entry.sixteen { $0.received(octets, now: now) }
        case .endOfInput:
            entry.pointee.inputOpen = false
            updateInterest(entry, writing: entry.io.events.contains(.writable))
            action = entry.sixteen { $0.inputEnded(now: now) }
        case .wouldBlock:
            return
        case .failed:
            action = entry.sixteen { $0.connectionFailed() }
        }
        performSixteen(action, on: slot)
    }

    /// Carries out `action` and whatever actions follow from it at once.
    func performSixteen(_ action: SixteenAction, on slot: Int) {
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
                    action = entry.sixteen { $0.wrote(count, now: now) }
                case .wouldBlock:
                    updateInterest(entry, writing: true)
                    return
                case .failed:
                    action = entry.sixteen { $0.connectionFailed() }
                }
            case .shutDownAndLinger(let deadline):
                if Socket.shutdownWrite(entry.pointee.fd) != nil {
                    action = entry.sixteen { $0.connectionFailed() }
                    continue
                }
                updateInterest(entry, writing: false)
                arm(entry, deadline)
                return
            case .close(let outcome):
                sixteenFinished(slot, outcome)
                return
            }
        }
    }

    private func sixteenFinished(_ slot: Int, _ outcome: SixteenOutcome) {
        switch outcome {
        case .replied: counters.add(counters.replied)
        case .shortRequest: counters.add(counters.shortRequests)
        case .reset: counters.add(counters.resets)
        case .requestTimedOut: counters.add(counters.requestTimeouts)
        case .replyTimedOut: counters.add(counters.replyTimeouts)
        }
        if debugEnabled { logSixteenEnded(table[slot], outcome) }
        close(slot)
    }

    /// The book's per-session lines, and how other sessions ended.
    private func logSixteenEnded(_ entry: UnsafeMutablePointer<ConnectionSlot>, _ outcome: SixteenOutcome) {
        let peer = describePeer(entry.pointee.fd)
        switch outcome {
        case .replied:
            logger.debug("Incoming sixteen-octet message: \(pythonBytesLiteral(entry.sixteen { $0.request }))")
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
