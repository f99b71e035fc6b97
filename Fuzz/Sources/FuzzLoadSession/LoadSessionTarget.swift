import FuzzSupport
import SixteenProtocol

// The load generator's `LoadSession`, driven as its worker drives it, in
// each mode (`sixteen`, `idle`, `upper` send-all or interleaved, small
// streams): started, then events decoded from the input (connected or
// refused, released, a write of k request octets or a full socket,
// writability, reply octets from a server that is right, wrong or too
// long, EOF, a reset, the timer, the run's hard deadline, time passing).
// After EVERY event the action and the state are checked against
// LoadSession.swift's rules:
//
//  - what the session sends is the request, octet for octet: the book's
//    16 octets, or `capitalize this!` frames up to the size rounded up to
//    whole frames, each octet once, then (upper only) one half-close
//    (rules 2, 3);
//  - reading waits, in send-all mode, until everything is sent (rule 3);
//  - a reply is `ok` exactly when it is the expected octets, all of them,
//    then EOF; a wrong octet, or one past the end, is `wrongOctets` at once;
//    EOF short of the end is `shortReply` (rule 2);
//  - an idle session sends nothing until released (rule 4);
//  - the timer ends a session only `timeout` after the last octet moved,
//    and never while an idle one is held (rule 5);
//  - the reply completes at its last expected octet, and then only
//    (rule 6); the hard deadline ends anything unfinished (rule 7);
//  - one finish, then no action at all (rule 8).
struct LoadSessionTarget {
    private var session: LoadSession
    private var clock: FuzzClock
    private let upper: Bool
    private let sendAll: Bool
    private let request: [UInt8]
    private let reply: [UInt8]
    private var connectDone = false
    private var connected = false
    private var released: Bool
    /// Request octets the socket took, as the glue reads them from the session.
    private var sent: [UInt8] = []
    private var sendDue = false
    private var blocked = false
    private var shutDown = false
    private var received = 0
    private var lastActivity: Instant
    private var replyCompletedAt: Instant?
    private var finished: LoadOutcome?

    init(_ input: inout FuzzInput) {
        let mode: LoadMode
        switch input.choice(3) {
        case 0: mode = .sixteen
        case 1: mode = .idle
        default: mode = .upper(bytes: Int(input.byte()) - 8, sendAll: input.flag())
        }
        let timeout = fuzzDuration(&input)
        session = LoadSession(mode: mode, timeout: timeout)
        clock = FuzzClock(&input)
        lastActivity = clock.now
        if case .upper(let bytes, let all) = mode {
            (upper, sendAll) = (true, all)
            let length = (max(bytes, 1) + 15) / 16 * 16
            request = Array(repeating: Array("capitalize this!".utf8), count: length / 16).flatMap { $0 }
            reply = Array(repeating: Array("CAPITALIZE THIS!".utf8), count: length / 16).flatMap { $0 }
        } else {
            (upper, sendAll) = (false, false)
            request = Array("Hi there, server".utf8)
            reply = Array("Farewell, client".utf8)
        }
        released = mode != .idle
        trace("mode \(mode), timeout \(timeout); started at \(clock.now)")
        invariant(session.requestLength == request.count && session.expectedLength == reply.count,
                  "rules 2, 3: 16 octets each way, or the size rounded up to whole 16-octet frames")
        expect(session.started(now: clock.now), .armTimer(deadline: clock.now + timeout), "rule 5: the timer covers the connect")
        checkState()
    }

    private var now: Instant { clock.now }
    private var readsNow: Bool { connected && finished == nil && (!sendAll || sent.count == request.count) }

    mutating func run(_ input: inout FuzzInput) {
        while !input.isAtEnd {
            switch input.choice(11) {
            case 0: connect()
            case 1: failConnect(refused: input.flag())
            case 2: release()
            case 3: write(input.byte())
            case 4: becomeWritable()
            case 5: receive(count: input.choice(48) + 1, corrupt: input.choice(8) == 0, at: Int(input.byte()))
            case 6: endInput()
            case 7: fail()
            case 8: fireTimer()
            case 9:
                trace("abandoned")
                expectFinishOr(session.abandoned(), .unfinished, "rule 7: the hard deadline ends what is unfinished")
            default: clock.advance(&input); trace("now \(now)")
            }
            checkState()
        }
    }

    private mutating func connect() {
        guard !connectDone else { return }
        connectDone = true
        trace("connected")
        let action = session.connected(now: now)
        guard finished == nil else { return expect(action, .wait, "rule 8: a finished session ignores every later event") }
        connected = true
        lastActivity = now
        if released {
            sendDue = true
            expect(action, .send(offset: 0), "rules 2, 3: once connected, the request is sent from its first octet")
        } else {
            expect(action, .wait, "rule 4: a held idle session sends nothing")
        }
    }

    private mutating func failConnect(refused: Bool) {
        guard !connectDone else { return }
        connectDone = true
        trace("connect failed, refused: \(refused)")
        expectFinishOr(session.connectFailed(refused: refused), refused ? .refused : .connectFailed,
                       "rule 1: a connect error ends the session, named by kind")
    }

    private mutating func release() {
        trace("released")
        let action = session.releasedToSend(now: now)
        guard !released, finished == nil else {
            return expect(action, .wait, "rule 4: only a held idle session is released, once")
        }
        released = true
        if connected {
            lastActivity = now
            sendDue = true
            expect(action, .send(offset: 0), "rule 4: a released idle session starts its exchange")
        } else {
            expect(action, .wait, "rule 4: released before connected, it sends once connected")
        }
    }

    /// The socket takes `choice` modulo (what is left + 1) request octets;
    /// none means it is full.
    private mutating func write(_ choice: UInt8) {
        guard finished == nil, sendDue, !blocked else { return }
        let offset = sent.count
        let count = Int(choice) % (request.count - offset + 1)
        guard count > 0 else {
            trace("socket full")
            blocked = true
            return
        }
        trace("wrote \(count) from \(offset)")
        for index in offset..<(offset + count) { sent.append(LoadSession.requestOctet(session.mode, at: index)) }
        invariant(sent[offset...].elementsEqual(request[offset..<(offset + count)]), "rules 2, 3: the request is sent octet for octet")
        let action = session.wrote(count, now: now)
        lastActivity = now
        if sent.count < request.count {
            expect(action, .send(offset: sent.count), "rules 2, 3: a partial write sends the rest, from where it stopped")
        } else {
            sendDue = false
            if upper {
                shutDown = true
                expect(action, .shutdownWrite, "rule 3: upper half-closes once everything is sent")
            } else {
                expect(action, .wait, "rule 2: sixteen waits for the reply once the request is sent")
            }
        }
    }

    private mutating func becomeWritable() {
        trace("writable")
        let action = session.becameWritable(now: now)
        if connected && released && finished == nil && sent.count < request.count {
            sendDue = true
            blocked = false
            expect(action, .send(offset: sent.count), "writability resumes the request where it stopped")
        } else {
            expect(action, .wait, "writability with nothing to send does nothing")
        }
    }

    /// `count` reply octets: the expected ones (octets past the end are
    /// `X`), or with the one at `position` modulo `count` flipped.
    private mutating func receive(count: Int, corrupt: Bool, at position: Int) {
        guard readsNow else { return }  // the glue is not reading
        var octets = (received..<(received + count)).map { $0 < reply.count ? reply[$0] : UInt8(ascii: "X") }
        if corrupt { octets[position % count] ^= 0x01 }
        trace("received \(octets)")
        let action = octets.withUnsafeBytes { session.received($0, now: now) }
        lastActivity = now
        if received + count > reply.count || !octets.elementsEqual(reply[received..<(received + count)]) {
            return expect(action, .finish(.wrongOctets), "rule 2: a wrong octet, or one past the reply, is wrong at once")
        }
        received += count
        if received == reply.count { replyCompletedAt = now }
        expect(action, .wait, "rules 2, 3: right octets short of the end wait for the rest")
    }

    private mutating func endInput() {
        guard readsNow else { return }
        trace("EOF")
        expect(session.inputEnded(now: now), .finish(received == reply.count ? .ok : .shortReply),
               "rule 2: EOF after the whole reply is ok, before it a short reply")
    }

    private mutating func fail() {
        trace("connection failed")
        expectFinishOr(session.connectionFailed(), .reset, "a connection error ends the session as reset")
    }

    private mutating func fireTimer() {
        trace("timer")
        let action = session.timerFired(now: now)
        guard finished == nil else { return expect(action, .wait, "rule 8: a finished session ignores every later event") }
        if connected && !released {
            return expect(action, .armTimer(deadline: now + session.timeout), "rule 5: the clock stops while an idle session is held")
        }
        let deadline = lastActivity + session.timeout
        if now < deadline {
            expect(action, .armTimer(deadline: deadline), "rule 5: an early timer re-arms at the last activity plus timeout")
        } else {
            expect(action, .finish(.timedOut), "rule 5: no octet moved for timeout: timed out")
        }
    }

    /// `outcome` if the session was running, nothing if it had finished.
    private mutating func expectFinishOr(_ action: LoadAction, _ outcome: LoadOutcome, _ rule: StaticString) {
        expect(action, finished == nil ? .finish(outcome) : .wait, rule)
    }

    private mutating func expect(_ action: LoadAction, _ expected: LoadAction, _ rule: StaticString) {
        invariant(action == expected, rule, "got \(action), expected \(expected)")
        if case .finish(let outcome) = action { finished = outcome }
    }

    private func checkState() {
        invariant(session.outcome == finished, "rule 8: the outcome is set by the one finish, and only by it")
        invariant(session.octetsSent == sent.count, "the octets sent are those the socket took")
        invariant(session.octetsReceived == received, "the octets received are the right ones that arrived")
        invariant(session.readsNow == readsNow, "rule 3: reading waits, in send-all mode, until everything is sent")
        invariant(session.replyCompletedAt == replyCompletedAt, "rule 6: the reply completes at its last expected octet")
        invariant(!shutDown || (upper && sent.count == request.count), "rule 3: only upper half-closes, once everything is sent")
        if finished == .ok {
            invariant(received == reply.count, "rule 2: ok only for the whole reply")
        }
    }
}
