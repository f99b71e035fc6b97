import FuzzSupport
import SixteenProtocol

// `SixteenSession` driven as the server's glue drives it: accepted, then
// events decoded from the input (octets from the client, EOF, a reset, a
// write of k reply octets or a full socket, writability, the timer, time
// passing, a second accept). The target keeps what the client sent and what
// the socket took, and after EVERY event checks the machine's action and
// state against the rules in SixteenSession.swift's header:
//
//  - the action is the one its rule names for the phase (request, reply,
//    linger, closed), deadlines included: the request deadline is accept
//    plus `request`, the reply deadline the 16th octet plus `linger`, the
//    linger deadline the last write plus `linger`, and none of them moves
//    while its phase lasts (rules 1, 3, 5, 8); timeouts round up to whole
//    milliseconds;
//  - never more than 16 request octets taken, and they are the first 16
//    the client sent (rules 2, 4);
//  - the reply is written exactly once: every write asks for the octets
//    after those already taken, never one twice, never past the 16th, and
//    only once the request is complete (rule 3);
//  - the session counts as replied exactly when all 16 reply octets were
//    taken (rules 5, 7, 8), shuts down its write side only then and only if
//    the client has not finished (rule 5);
//  - one close, then no action at all (rule 9).
struct SixteenSessionTarget {
    private var session: SixteenSession
    private var clock: FuzzClock
    private let acceptedAt: Instant
    /// Octets handed to the machine while it was open.
    private var delivered: [UInt8] = []
    private var inputEnded = false
    /// Reply octets the socket took.
    private var written: [UInt8] = []
    /// The reply octet the machine asked to write from, while a write is due.
    private var writeFrom: Int?
    /// The socket was full: a write waits for writability.
    private var blocked = false
    private var requestCompletedAt: Instant?
    private var lingerSince: Instant?
    private var closed: SixteenOutcome?

    init(_ input: inout FuzzInput) {
        let request = fuzzDuration(&input), linger = fuzzDuration(&input)
        session = SixteenSession(timeouts: SixteenTimeouts(request: request, linger: linger))
        for (asked, kept) in [(request, session.timeouts.request), (linger, session.timeouts.linger)] {
            invariant(kept >= asked && kept < asked + .milliseconds(1), "timeouts are kept in whole milliseconds, rounded up",
                      "\(asked) kept as \(kept)")
        }
        clock = FuzzClock(&input)
        acceptedAt = clock.now
        trace("timeouts \(session.timeouts); accepted at \(acceptedAt)")
        expect(session.accepted(now: acceptedAt), .armTimer(deadline: acceptedAt + session.timeouts.request),
               "rule 1: accepting arms the request deadline, request timeout after the accept")
        checkState()
    }

    private var now: Instant { clock.now }
    private var requestComplete: Bool { delivered.count >= SixteenSession.requestLength }
    private var replyDeadline: Instant { requestCompletedAt! + session.timeouts.linger }

    mutating func run(_ input: inout FuzzInput) {
        while !input.isAtEnd {
            switch input.choice(8) {
            case 0: receive(input.bytes(upTo: input.choice(32) + 1))
            case 1: endInput()
            case 2: fail()
            case 3: becomeWritable()
            case 4: write(input.byte())
            case 5: fireTimer()
            case 6: clock.advance(&input); trace("now \(now)")
            default:
                trace("accepted again")
                expect(session.accepted(now: now), .wait, "an accepted session ignores another accept")
            }
            checkState()
        }
    }

    private mutating func receive(_ octets: UnsafeRawBufferPointer) {
        guard !octets.isEmpty, !inputEnded else { return }  // nothing is read after EOF
        trace("received \(Array(octets))")
        let action = session.received(octets, now: now)
        guard closed == nil else { return expect(action, .wait, "rule 9: a closed session ignores every later event") }
        let before = delivered.count
        delivered += octets
        if before < SixteenSession.requestLength && requestComplete {
            requestCompletedAt = now
            writeFrom = 0
            blocked = false
            expect(action, .writeReply(offset: 0, deadline: replyDeadline), "rule 3: the 16th octet starts the reply, due linger timeout later")
        } else {
            expect(action, .wait, "rules 2, 4: octets before the 16th wait for the rest; octets after it are discarded, never answered")
        }
    }

    private mutating func endInput() {
        guard !inputEnded else { return }
        inputEnded = true
        trace("EOF")
        let action = session.inputEnded(now: now)
        if closed != nil {
            expect(action, .wait, "rule 9: a closed session ignores every later event")
        } else if !requestComplete {
            expect(action, .close(.shortRequest(received: delivered.count)), "rule 6: EOF before 16 octets is a short request")
        } else if written.count < sixteenReply.count {
            expect(action, .wait, "rule 5: EOF while the reply is written waits for the reply")
        } else {
            expect(action, .close(.replied), "rule 5: EOF while lingering closes, replied")
        }
    }

    private mutating func fail() {
        trace("connection failed")
        let action = session.connectionFailed()
        if closed != nil {
            expect(action, .wait, "rule 9: a closed session ignores every later event")
        } else if !requestComplete {
            expect(action, .close(.reset(received: delivered.count)), "rule 7: a reset before the reply is a reset")
        } else if written.count < sixteenReply.count {
            expect(action, .close(.reset(received: SixteenSession.requestLength)), "rule 7: a reset before the reply is written in full is a reset")
        } else {
            expect(action, .close(.replied), "rule 7: a reset after the whole reply was written counts as replied")
        }
    }

    private mutating func becomeWritable() {
        trace("writable")
        let action = session.becameWritable(now: now)
        if closed == nil && requestComplete && written.count < sixteenReply.count {
            writeFrom = written.count
            blocked = false
            expect(action, .writeReply(offset: written.count, deadline: replyDeadline),
                   "rule 3: writability resumes the reply after the octets already written, by the same deadline")
        } else {
            expect(action, .wait, "writability matters only while the reply is being written")
        }
    }

    /// The socket takes `choice` modulo (what is left + 1) octets of the
    /// write the machine asked for; none means it is full.
    private mutating func write(_ choice: UInt8) {
        guard closed == nil, let offset = writeFrom, !blocked else { return }  // no write is due
        let count = Int(choice) % (sixteenReply.count - offset + 1)
        guard count > 0 else {
            trace("socket full")
            blocked = true
            return
        }
        trace("wrote \(count) from \(offset)")
        written += sixteenReply[offset..<(offset + count)]
        writeFrom = nil
        let action = session.wrote(count, now: now)
        if written.count < sixteenReply.count {
            writeFrom = written.count
            expect(action, .writeReply(offset: written.count, deadline: replyDeadline),
                   "rule 3: a partial write asks for the rest of the reply, by the same deadline")
        } else if inputEnded {
            expect(action, .close(.replied), "rule 5: the whole reply written after the client's EOF closes, replied")
        } else {
            lingerSince = now
            expect(action, .shutDownAndLinger(deadline: now + session.timeouts.linger),
                   "rule 5: the whole reply written before EOF shuts down and lingers, linger timeout from now")
        }
    }

    private mutating func fireTimer() {
        trace("timer")
        let action = session.timerFired(now: now)
        let deadline: Instant, expired: SixteenOutcome
        if closed != nil {
            return expect(action, .wait, "rule 9: a closed session ignores every later event")
        } else if !requestComplete {
            (deadline, expired) = (acceptedAt + session.timeouts.request, .requestTimedOut(received: delivered.count))
        } else if written.count < sixteenReply.count {
            (deadline, expired) = (replyDeadline, .replyTimedOut(sent: written.count))
        } else {
            (deadline, expired) = (lingerSince! + session.timeouts.linger, .replied)
        }
        if now < deadline {
            expect(action, .armTimer(deadline: deadline), "rule 8: a timer before the deadline re-arms it, unmoved")
        } else {
            expect(action, .close(expired), "rule 8: a timer at or after the deadline ends the session as its phase says")
        }
    }

    /// Compares an action with the one the rules name; a close is recorded.
    private mutating func expect(_ action: SixteenAction, _ expected: SixteenAction, _ rule: StaticString) {
        invariant(action == expected, rule, "got \(action), expected \(expected)")
        if case .close(let outcome) = action { closed = outcome }
    }

    /// The machine's state against what the client and the socket saw.
    private func checkState() {
        invariant(session.outcome == closed, "rule 9: the outcome is set by the one close, and only by it",
                  "\(String(describing: session.outcome)) after \(String(describing: closed))")
        invariant(session.requestReceived == min(delivered.count, SixteenSession.requestLength),
                  "rule 2: never more than 16 request octets taken, all that arrived up to 16",
                  "\(session.requestReceived) taken of \(delivered.count)")
        invariant(session.request.elementsEqual(delivered.prefix(SixteenSession.requestLength)),
                  "rule 2: the request is the first 16 octets the client sent")
        invariant(written.count <= sixteenReply.count && written.elementsEqual(sixteenReply.prefix(written.count)),
                  "rule 3: the reply is written exactly once, in order")
        let sending = closed == nil && requestComplete && written.count < sixteenReply.count
        invariant(session.replyOffset == (sending ? written.count : nil), "rule 3: the reply offset is what the socket took, while sending",
                  "\(String(describing: session.replyOffset)) with \(written.count) written")
        if let closed {
            invariant((closed == .replied) == (written.count == sixteenReply.count),
                      "rules 5, 7, 8: a session counts as replied exactly when the whole reply was written", "\(closed)")
        }
    }
}
