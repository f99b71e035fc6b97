import FuzzSupport
import SixteenProtocol

// `UpperSession` driven as the server's glue drives it: accepted, then
// events decoded from the input (octets read, at most `readRoom` at a time;
// EOF; a reset; a storage failure; a write of k pending octets or a full
// socket; writability; the timer; time passing). The glue's output queue is
// a plain array the target fills with `uppercaseASCII` (the SIMD code the
// server runs) and the client's view is what the socket took. After EVERY
// event the action and the state are checked against UpperSession.swift's
// rules:
//
//  - `upper` output equals the uppercased input prefix: what the client got
//    is, octet for octet, the uppercase of what it sent (checked with a
//    plain per-octet uppercase, not the SIMD one) (rule 1);
//  - every octet read is queued, never one more (rules 2, 3); pending is
//    what the queue holds and never exceeds the ceiling; a read of at most
//    `readRoom` octets overflows only at the ceiling, and an overflow is
//    exactly a read that would pass it (rule 4);
//  - after EOF, the write that empties the queue completes the session, and
//    EOF with nothing pending completes it at once (rule 5);
//  - the idle deadline is the last progress plus `idle`, progress being
//    what rule 6 says (writes, EOF, input with nothing pending, or every
//    `holdProgress` octets of it while output is pending); a timer before
//    it re-arms it, one at or after it closes; armed deadlines never move
//    backwards (rule 6);
//  - a reset or a storage failure closes with the counts so far (rule 7);
//  - one close, then no action at all (rule 8).
struct UpperSessionTarget {
    private var session: UpperSession
    private var clock: FuzzClock
    /// Octets read (and queued).
    private var sent: [UInt8] = []
    /// Uppercased octets not yet taken by the socket: the glue's queue.
    private var queue: [UInt8] = []
    private var queueStart = 0
    /// What the socket took: the client's view.
    private var got: [UInt8] = []
    private var checked = 0
    private var inputEnded = false
    private var blocked = false
    private var lastProgress: Instant
    private var heldInput = 0
    private var lastArmed: Instant?
    private var closed: UpperOutcome?

    init(_ input: inout FuzzInput) {
        // Small ceilings and hold thresholds, so that overflow and held
        // input happen within a short input.
        let idle = fuzzDuration(&input)
        let maxPending = input.choice(4) == 0 ? Int(input.uint16()) : input.choice(64)
        let holdProgress = input.choice(48)
        session = UpperSession(limits: UpperLimits(idle: idle, maxPending: maxPending, holdProgress: holdProgress))
        clock = FuzzClock(&input)
        lastProgress = clock.now
        trace("limits \(session.limits); accepted at \(clock.now)")
        expect(session.accepted(now: clock.now), .armTimer(deadline: clock.now + idle), "rule 6: accepting arms the idle deadline")
        checkState()
    }

    private var now: Instant { clock.now }
    private var pending: Int { queue.count - queueStart }
    private var limits: UpperLimits { session.limits }

    mutating func run(_ input: inout FuzzInput) {
        while !input.isAtEnd {
            switch input.choice(8) {
            case 0: read(input.bytes(upTo: min(input.choice(48) + 1, session.readRoom)))
            case 1: endInput()
            case 2: fail()
            case 3: failStorage()
            case 4: becomeWritable()
            case 5: write(input.uint16())
            case 6: fireTimer()
            default: clock.advance(&input); trace("now \(now)")
            }
            checkState()
        }
    }

    /// Octets read: at most `readRoom` (the target asks for no more).
    private mutating func read(_ octets: UnsafeRawBufferPointer) {
        guard !octets.isEmpty, !inputEnded else { return }
        trace("read \(Array(octets))")
        let room = session.readRoom
        invariant(octets.count <= room, "the glue reads at most readRoom octets")
        let action = session.received(octets.count, now: now)
        guard closed == nil else { return expect(action, .wait, "rule 8: a closed session ignores every later event") }
        if pending == 0 {
            progress()
        } else {
            heldInput += octets.count
            if heldInput >= limits.holdProgress { progress() }
        }
        if pending + octets.count > limits.maxPending {
            invariant(pending == limits.maxPending, "rule 4: a read of at most readRoom octets overflows only at the ceiling",
                      "\(pending) pending, ceiling \(limits.maxPending), read \(octets.count)")
            return expect(action, .close(.overflowed(pending: pending + octets.count)),
                          "rule 4: a read that would take pending past the ceiling overflows, and is not queued")
        }
        expect(action, .queueAndSend, "rules 2, 3: every read is queued and sent, however much is pending")
        sent += octets
        var upper = Array(octets)
        upper.withUnsafeMutableBytes { uppercaseASCII($0) }
        queue += upper
    }

    private mutating func endInput() {
        guard !inputEnded else { return }
        inputEnded = true
        trace("EOF")
        let action = session.inputEnded(now: now)
        guard closed == nil else { return expect(action, .wait, "rule 8: a closed session ignores every later event") }
        progress()
        if pending == 0 {
            expect(action, .close(.completed(echoed: got.count)), "rule 5: EOF with nothing pending completes the session")
        } else {
            expect(action, .send, "rule 5: EOF with output pending sends it")
        }
    }

    private mutating func fail() {
        trace("connection failed")
        let action = session.connectionFailed()
        guard closed == nil else { return expect(action, .wait, "rule 8: a closed session ignores every later event") }
        expect(action, .close(.reset(received: sent.count, sent: got.count)), "rule 7: a reset ends the session as reset")
    }

    private mutating func failStorage() {
        trace("storage failed")
        let action = session.storageFailed()
        guard closed == nil else { return expect(action, .wait, "rule 8: a closed session ignores every later event") }
        expect(action, .close(.storageFailed(received: sent.count, sent: got.count)), "a storage failure ends the session")
    }

    private mutating func becomeWritable() {
        trace("writable")
        let action = session.becameWritable(now: now)
        if closed == nil && pending > 0 {
            blocked = false
            expect(action, .send, "writability with output pending sends it")
        } else {
            expect(action, .wait, "writability with nothing pending, or closed, does nothing")
        }
    }

    /// The socket takes `choice` modulo (pending + 1) octets; none means full.
    private mutating func write(_ choice: UInt16) {
        guard closed == nil, pending > 0, !blocked else { return }
        let count = Int(choice) % (pending + 1)
        guard count > 0 else {
            trace("socket full")
            blocked = true
            return
        }
        trace("wrote \(count)")
        got += queue[queueStart..<(queueStart + count)]
        queueStart += count
        if queueStart == queue.count {
            queue.removeAll(keepingCapacity: true)
            queueStart = 0
        }
        let action = session.wrote(count, now: now)
        progress()
        if pending > 0 {
            expect(action, .send, "rule 5: a write that leaves output pending sends more")
        } else if inputEnded {
            expect(action, .close(.completed(echoed: got.count)), "rule 5: after EOF, the write that empties the queue completes the session")
        } else {
            expect(action, .wait, "a write that empties the queue before EOF waits for input")
        }
    }

    private mutating func fireTimer() {
        trace("timer")
        let action = session.timerFired(now: now)
        guard closed == nil else { return expect(action, .wait, "rule 8: a closed session ignores every later event") }
        let deadline = lastProgress + limits.idle
        if now < deadline {
            expect(action, .armTimer(deadline: deadline), "rule 6: a timer before the last progress plus idle re-arms it there")
        } else {
            expect(action, .close(.idleTimedOut(received: sent.count, sent: got.count)),
                   "rule 6: a timer at or after the last progress plus idle ends the session as idle")
        }
    }

    private mutating func progress() {
        lastProgress = now
        heldInput = 0
    }

    private mutating func expect(_ action: UpperAction, _ expected: UpperAction, _ rule: StaticString) {
        invariant(action == expected, rule, "got \(action), expected \(expected)")
        switch action {
        case .close(let outcome):
            closed = outcome
        case .armTimer(let deadline):
            invariant(deadline >= (lastArmed ?? deadline), "rule 6: the idle deadline never moves backwards",
                      "armed \(deadline) after \(lastArmed!)")
            lastArmed = deadline
        default:
            break
        }
    }

    /// The state against the model. Output is compared octet by octet as
    /// it arrives (`checked` octets were compared before).
    private mutating func checkState() {
        invariant(session.outcome == closed, "rule 8: the outcome is set by the one close, and only by it")
        invariant(got.count <= sent.count, "rule 1: no more octets come back than were sent")
        while checked < got.count {
            invariant(got[checked] == plainUppercase(sent[checked]), "rule 1: upper output equals the uppercased input prefix",
                      "octet \(checked): sent \(sent[checked]), got \(got[checked])")
            checked += 1
        }
        invariant(session.octetsReceived == sent.count, "rules 2, 3: every octet read is counted as received, once")
        invariant(session.octetsSent == got.count, "the octets sent are those the socket took")
        invariant(session.pending == pending, "rule 3: pending is what the queue holds", "\(session.pending) against \(pending)")
        invariant(pending <= limits.maxPending, "rule 4: pending output never exceeds the ceiling")
        invariant(session.readRoom == max(1, limits.maxPending - pending), "rule 4: readRoom is what is left under the ceiling, or 1")
        if closed == nil {
            invariant(!(inputEnded && pending == 0), "rule 5: EOF and nothing pending is a completed session")
        }
    }

    /// `a`-`z` to `A`-`Z`, one octet at a time: the reference for `uppercaseASCII`.
    private func plainUppercase(_ octet: UInt8) -> UInt8 {
        (0x61...0x7A).contains(octet) ? octet - 0x20 : octet
    }
}
