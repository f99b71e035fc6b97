import Logging
import Reactor
import SixteenProtocol

/// The `sixteen` protocol's glue: reads feed the session, and its actions
/// become writes of the reply, a shutdown, timers and closes.
enum SixteenGlue: ServedProtocol {
    typealias Session = SixteenSession
    typealias Reactor = ServerReactor<SixteenGlue>

    static func blankSession(_ configuration: ServerConfiguration) -> SixteenSession {
        SixteenSession(timeouts: configuration.timeouts)
    }

    static func opened(_ slot: Int, on reactor: Reactor, now: Instant) {
        let entry = reactor.table[slot]
        entry.pointee.session = SixteenSession(timeouts: reactor.configuration.timeouts)
        perform(entry.pointee.session.accepted(now: now), on: slot, reactor)
    }

    static func writable(_ slot: Int, on reactor: Reactor) {
        perform(reactor.table[slot].pointee.session.becameWritable(now: reactor.now), on: slot, reactor)
    }

    static func timerFired(_ slot: Int, on reactor: Reactor, now: Instant) {
        perform(reactor.table[slot].pointee.session.timerFired(now: now), on: slot, reactor)
    }

    static func closing(_ entry: UnsafeMutablePointer<ConnectionSlot<SixteenSession>>, on reactor: Reactor) {}

    /// One read per readiness event: level-triggered epoll calls again if
    /// more is waiting, after every other ready connection had its turn.
    static func readable(_ slot: Int, on reactor: Reactor) {
        let entry = reactor.table[slot]
        let action: SixteenAction
        switch Socket.read(entry.pointee.fd, into: reactor.readBuffer) {
        case .read(let count):
            let octets = UnsafeRawBufferPointer(rebasing: reactor.readBuffer[..<count])
            action = entry.pointee.session.received(octets, now: reactor.now)
        case .endOfInput:
            entry.pointee.inputOpen = false
            reactor.updateInterest(entry, writing: reactor.isWaitingToWrite(entry))
            action = entry.pointee.session.inputEnded(now: reactor.now)
        case .wouldBlock:
            return
        case .failed:
            action = entry.pointee.session.connectionFailed()
        }
        perform(action, on: slot, reactor)
    }

    /// Carries out `action` and whatever actions follow from it at once.
    static func perform(_ action: SixteenAction, on slot: Int, _ reactor: Reactor) {
        let entry = reactor.table[slot]
        var action = action
        while true {
            switch action {
            case .wait:
                return
            case .armTimer(let deadline):
                reactor.arm(slot, deadline)
                return
            case .writeReply(let offset, let deadline):
                reactor.arm(slot, deadline)
                switch Socket.send(entry.pointee.fd, UnsafeRawBufferPointer(rebasing: reactor.reply[offset...])) {
                case .wrote(let count):
                    reactor.updateInterest(entry, writing: false)
                    action = entry.pointee.session.wrote(count, now: reactor.now)
                case .wouldBlock:
                    reactor.updateInterest(entry, writing: true)
                    return
                case .failed:
                    action = entry.pointee.session.connectionFailed()
                }
            case .shutDownAndLinger(let deadline):
                if Socket.shutdownWrite(entry.pointee.fd) != nil {
                    action = entry.pointee.session.connectionFailed()
                    continue
                }
                reactor.updateInterest(entry, writing: false)
                reactor.arm(slot, deadline)
                return
            case .close(let outcome):
                finished(slot, outcome, reactor)
                return
            }
        }
    }

    private static func finished(_ slot: Int, _ outcome: SixteenOutcome, _ reactor: Reactor) {
        let counters = reactor.counters
        switch outcome {
        case .replied: counters.add(counters.replied)
        case .shortRequest: counters.add(counters.shortRequests)
        case .reset: counters.add(counters.resets)
        case .requestTimedOut: counters.add(counters.requestTimeouts)
        case .replyTimedOut: counters.add(counters.replyTimeouts)
        }
        if reactor.debugEnabled { logEnded(reactor.table[slot], outcome, reactor) }
        reactor.close(slot)
    }

    /// The book's per-session lines, and how other sessions ended.
    private static func logEnded(_ entry: UnsafeMutablePointer<ConnectionSlot<SixteenSession>>, _ outcome: SixteenOutcome, _ reactor: Reactor) {
        let logger = reactor.logger
        let peer = reactor.describePeer(entry.pointee.fd)
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
