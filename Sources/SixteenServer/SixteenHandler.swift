import Logging
import Reactor
import SixteenProtocol

/// The `sixteen` protocol on one reactor: what is read feeds the session's
/// machine; its actions become the reply, a shutdown, deadlines and closes.
final class SixteenHandler: ProtocolHandler {
    typealias Session = SixteenSession
    typealias Configuration = SixteenTimeouts

    static let name = "sixteen"
    static var outcomes: [SessionOutcome] { SixteenOutcome.sessionOutcomes }

    let timeouts: SixteenTimeouts
    private let logger: Logger
    private let debugEnabled: Bool
    /// The reply, in memory of our own: sent from here without copying.
    private let reply: UnsafeRawBufferPointer

    static func describe(_ timeouts: SixteenTimeouts) -> String {
        "request timeout \(shortDescription(of: timeouts.request)), linger \(shortDescription(of: timeouts.linger))"
    }

    init(_ configuration: SixteenTimeouts, shared: Void, context: HandlerContext<NoCounts>) {
        timeouts = configuration
        logger = context.logger
        debugEnabled = context.debugEnabled
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: sixteenReply.count, alignment: 16)
        copy.copyBytes(from: sixteenReply)
        reply = UnsafeRawBufferPointer(copy)
    }

    deinit {
        reply.deallocate()
    }

    var blankSession: SixteenSession { SixteenSession(timeouts: timeouts) }

    func opened(_ session: inout SixteenSession, now: Instant) -> ConnectionStep {
        session = SixteenSession(timeouts: timeouts)
        return step(session.accepted(now: now))
    }

    func received(_ session: inout SixteenSession, _ octets: UnsafeMutableRawBufferPointer, now: Instant) -> ConnectionStep {
        step(session.received(UnsafeRawBufferPointer(octets), now: now))
    }

    func inputEnded(_ session: inout SixteenSession, now: Instant) -> ConnectionStep {
        step(session.inputEnded(now: now))
    }

    func output(_ session: inout SixteenSession) -> OutputRegion {
        guard let offset = session.replyOffset, offset < reply.count else { return .empty }
        return .memory(UnsafeRawBufferPointer(rebasing: reply[offset...]))
    }

    func wrote(_ session: inout SixteenSession, _ count: Int, now: Instant) -> ConnectionStep {
        step(session.wrote(count, now: now))
    }

    func writable(_ session: inout SixteenSession, now: Instant) -> ConnectionStep {
        step(session.becameWritable(now: now))
    }

    func deadlinePassed(_ session: inout SixteenSession, now: Instant) -> ConnectionStep {
        step(session.timerFired(now: now))
    }

    func failed(_ session: inout SixteenSession) -> ConnectionStep {
        step(session.connectionFailed())
    }

    func closing(_ session: inout SixteenSession, _ outcome: SessionOutcome?, _ connection: ConnectionInfo, now: Instant) {
        guard debugEnabled, let ended = session.outcome else { return }
        logEnded(session, ended, connection)
    }

    /// The machine's action as a step for the reactor.
    @inline(__always)
    private func step(_ action: SixteenAction) -> ConnectionStep {
        switch action {
        case .wait: .wait
        case .armTimer(let deadline): .setDeadline(deadline)
        case .writeReply(_, let deadline): .send(deadline: deadline)
        case .shutDownAndLinger(let deadline): .shutDownWrite(deadline: deadline)
        case .close(let outcome): .close(outcome.sessionOutcome)
        }
    }

    /// The book's per-session lines, and how other sessions ended (debug only).
    private func logEnded(_ session: SixteenSession, _ outcome: SixteenOutcome, _ connection: ConnectionInfo) {
        switch outcome {
        case .replied:
            logger.debug("Incoming sixteen-octet message: \(pythonBytesLiteral(session.request))")
            logger.debug("Reply sent, socket closed")
        case .shortRequest(let received):
            logger.debug("Short request from \(connection.peer): was expecting 16 bytes but only received \(received)")
        case .reset(let received):
            logger.debug("Connection from \(connection.peer) reset after \(received) request octets")
        case .requestTimedOut(let received):
            logger.debug("Request from \(connection.peer) timed out with \(received) of 16 octets")
        case .replyTimedOut(let sent):
            logger.debug("Reply to \(connection.peer) timed out with \(sent) of 16 octets written")
        }
    }
}
