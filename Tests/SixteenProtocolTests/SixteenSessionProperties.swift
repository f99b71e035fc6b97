import SixteenProtocol
import TestSupport
import XCTest

/// The `sixteen` session's laws (rules in `SixteenSession.swift`), as
/// properties over random scripts: any input, cut into any reads, with
/// partial writes of the reply, EOF, resets, and timers firing early, late
/// or on the deadline, at any time. The glue is modelled as the daemon's is:
/// it writes `sixteenReply[offset...]` when asked, the socket taking what the
/// script says. Exhaustive tests of the splits of the book's request and of
/// the write sizes stay in `SixteenSessionTests`; these cover what those
/// cannot enumerate: interleavings with time, EOF, resets and trailing input.
final class SixteenSessionProperties: XCTestCase {
    /// Cases per property: under 0.1 s each in a debug build.
    private let cases = 1_000

    /// Rules 2-4: however the input is cut and whenever it arrives, the read
    /// that brings the 16th octet, and only that read, starts the reply
    /// (its deadline counted from that read), the request is the first 16
    /// octets, every later octet is ignored, and the reply is written once,
    /// each write going on at the offset where the last one stopped.
    func testRepliesExactlyOnceAndOnlyAfterSixteenOctets() {
        checkProperty(count: cases, sixteenScripts, describe: describeSixteenScript) { script in
            var starts = 0
            let run = try runSixteen(script) { step in
                let open = step.before.outcome == nil
                if case .read(let chunk) = step.event, open {
                    let total = step.delivered + chunk.count
                    if step.delivered < 16, total >= 16 {
                        try requireEqual(step.action, .writeReply(offset: 0, deadline: step.now + testTimeouts.linger), "the 16th octet's read")
                    } else {
                        try requireEqual(step.action, .wait, "a read with \(step.delivered) octets in before it")
                    }
                    try requireEqual(step.after.requestReceived, min(total, 16), "requestReceived")
                }
                if case .read = step.event, case .writeReply = step.action { starts += 1 }
                switch step.action {
                case .writeReply(let offset, _):
                    try require(step.delivered + step.event.octets >= 16, "a reply before 16 octets: \(step.action)")
                    try requireEqual(offset, step.writtenAfter, "the offset to write from")
                case .shutDownAndLinger, .close(.replied):
                    try requireEqual(step.writtenAfter, 16, "reply octets written when the reply is done")
                default:
                    break
                }
            }
            try requireEqual(starts, run.delivered >= 16 ? 1 : 0, "reads that started the reply")
            try requireEqual(run.session.request, Array(run.stream.prefix(min(run.delivered, 16))), "the request")
        }
    }

    /// Rules 3, 5-7, 9: writes, writability, EOF and connection failures
    /// get the action the rules give for the phase the session is in (the
    /// write that completes the reply closes if the client has finished,
    /// and lingers if not), every session closes at most once, and a closed
    /// session answers every later event with `.wait` and keeps its outcome.
    func testEveryEndingIsTheRulesAndFinal() {
        checkProperty(count: cases, sixteenScripts, describe: describeSixteenScript) { script in
            var closes = 0
            _ = try runSixteen(script) { step in
                if let outcome = step.before.outcome {
                    try requireEqual(step.action, .wait, "\(step.event) after the close")
                    try requireEqual(step.after.outcome, outcome, "the outcome after \(step.event)")
                    return
                }
                let phase = step.phase
                switch step.event {
                case .endOfInput:
                    let expected: SixteenAction = switch phase {
                    case .awaiting: .close(.shortRequest(received: step.delivered))
                    case .sending: .wait
                    case .lingering: .close(.replied)
                    }
                    try requireEqual(step.action, expected, "EOF while \(phase)")
                case .failure:
                    let expected: SixteenAction = switch phase {
                    case .awaiting: .close(.reset(received: step.delivered))
                    case .sending: .close(.reset(received: 16))
                    case .lingering: .close(.replied)
                    }
                    try requireEqual(step.action, expected, "a reset while \(phase)")
                case .acceptAgain:
                    try requireEqual(step.action, .wait, "a second accept")
                case .wrote where phase == .sending:
                    let expected: SixteenAction = step.writtenAfter < 16
                        ? .writeReply(offset: step.writtenAfter, deadline: step.deadline)
                        : step.peerFinished ? .close(.replied) : .shutDownAndLinger(deadline: step.now + testTimeouts.linger)
                    try requireEqual(step.action, expected, "\(step.event) of the reply, EOF \(step.peerFinished ? "in" : "not in")")
                case .writable where phase == .sending:
                    try requireEqual(step.action, .writeReply(offset: step.written, deadline: step.deadline), "writable")
                case .wrote, .writable:
                    try requireEqual(step.action, .wait, "\(step.event) while \(phase)")
                default:
                    break
                }
                if case .close(let outcome) = step.action {
                    closes += 1
                    try requireEqual(step.after.outcome, outcome, "the outcome")
                }
            }
            try require(closes <= 1, "\(closes) closes")
        }
    }

    /// Rules 1, 3, 5, 8, and the deadline laws: the timer acts only at or
    /// after the deadline of the phase (from accept: `request`; from the
    /// 16th octet: `linger`; from the last reply octet: `linger`), fired
    /// early it re-arms that same deadline, and every deadline the session
    /// announces is its phase's: progress within a phase never moves it.
    func testTimersActOnlyAtOrAfterThePhasesDeadline() {
        checkProperty(count: cases, sixteenScripts, describe: describeSixteenScript) { script in
            _ = try runSixteen(script) { step in
                guard step.before.outcome == nil else { return }
                let deadline = step.deadline
                if case .timer = step.event {
                    let expected: SixteenAction
                    if step.now < deadline {
                        expected = .armTimer(deadline: deadline)
                    } else {
                        switch step.phase {
                        case .awaiting: expected = .close(.requestTimedOut(received: step.delivered))
                        case .sending: expected = .close(.replyTimedOut(sent: step.written))
                        case .lingering: expected = .close(.replied)
                        }
                    }
                    try requireEqual(step.action, expected, "the timer at \(step.now), deadline \(deadline), \(step.phase)")
                }
                switch step.action {
                case .armTimer(let announced), .writeReply(_, let announced), .shutDownAndLinger(let announced):
                    try requireEqual(announced, step.deadlineAfter, "the deadline announced after \(step.event)")
                default:
                    break
                }
            }
        }
    }

    /// The scripts reach what the laws are about: every outcome, lingering,
    /// partial writes, and timers exactly on their deadline. (A property
    /// whose cases never get there would pass vacuously.)
    func testScriptsReachEveryOutcomeAndEdge() {
        var seen: Set<String> = []
        _ = findCounterexample(key: "sixteen coverage", count: cases, sixteenScripts) { script in
            _ = try runSixteen(script) { step in
                guard step.before.outcome == nil else { return }
                if case .close(let outcome) = step.action { seen.insert("\(outcome)".prefix { $0 != "(" }.description) }
                if case .shutDownAndLinger = step.action { seen.insert("lingering") }
                if case .wrote(let count) = step.event, count < 16 { seen.insert("partial write") }
                if case .timer = step.event, step.now == step.deadline { seen.insert("timer on the deadline") }
            }
        }
        let expected: Set = [
            "replied", "shortRequest", "reset", "requestTimedOut", "replyTimedOut", "lingering", "partial write",
            "timer on the deadline",
        ]
        XCTAssertEqual(seen.intersection(expected), expected)
    }
}

// MARK: - Scripts

/// What the client sends (at most this), and the events, each as (kind,
/// amount, milliseconds since the last event).
typealias SixteenScript = ([UInt8], [(Int, Int, Int)])

/// Kinds, simplest first (reads shrink toward `read`): 0 read `amount`
/// octets, 1 the socket takes `amount` reply octets, 2 writable, 3 timer,
/// 4 EOF, 5 reset, 6 the timer at the armed deadline + `amount` - 10 ms,
/// 7 a second accept.
var sixteenScripts: Arbitrary<SixteenScript> {
    zip(
        Arbitrary<UInt8>.integer(in: 0...255).array(of: 0...40),
        zip(
            Arbitrary<Int>.element(of: [0, 0, 0, 1, 1, 2, 3, 4, 5, 6, 6, 7]),
            Arbitrary<Int>.integer(in: 0...20),
            Arbitrary<Int>.integer(in: 0...3_000)
        ).array(of: 0...40))
}

func describeSixteenScript(_ script: SixteenScript) -> String {
    let names = ["read", "write", "writable", "timer", "EOF", "reset", "timer@deadline", "accept"]
    return "\(script.0.count) octets \(script.0); events: "
        + script.1.map { "\(names[$0.0]) \($0.1) +\($0.2)ms" }.joined(separator: ", ")
}

enum SixteenEvent: CustomStringConvertible {
    case accept, acceptAgain, read([UInt8]), wrote(Int), writable, timer, endOfInput, failure

    var octets: Int {
        if case .read(let chunk) = self { return chunk.count }
        return 0
    }
    var description: String {
        switch self {
        case .accept: "accept"
        case .acceptAgain: "a second accept"
        case .read(let chunk): "read of \(chunk.count)"
        case .wrote(let count): "wrote \(count)"
        case .writable: "writable"
        case .timer: "timer"
        case .endOfInput: "EOF"
        case .failure: "reset"
        }
    }
}

enum SixteenPhase { case awaiting, sending, lingering }

/// One event as the session saw it, with what the glue knew before it.
struct SixteenStep {
    let event: SixteenEvent
    let now: Instant
    let before: SixteenSession
    let after: SixteenSession
    let action: SixteenAction
    /// Octets delivered to the session before this event.
    let delivered: Int
    /// Whether the client's EOF had come.
    let peerFinished: Bool
    /// Reply octets the socket had taken before this event, and after it.
    let written: Int
    let writtenAfter: Int
    let acceptedAt: Instant
    let requestCompletedAt: Instant?
    let replyWrittenAt: Instant?

    var phase: SixteenPhase {
        requestCompletedAt == nil ? .awaiting : replyWrittenAt == nil ? .sending : .lingering
    }

    /// The deadline of the phase before this event, from the rules.
    var deadline: Instant {
        if let replyWrittenAt { return replyWrittenAt + testTimeouts.linger }
        if let requestCompletedAt { return requestCompletedAt + testTimeouts.linger }
        return acceptedAt + testTimeouts.request
    }

    /// The deadline of the phase after this event: a new phase's counts from now.
    var deadlineAfter: Instant {
        if replyWrittenAt == nil, written < 16, writtenAfter == 16 {
            return now + testTimeouts.linger
        }
        if requestCompletedAt == nil, before.outcome == nil, delivered + event.octets >= 16 {
            return now + testTimeouts.linger
        }
        return deadline
    }
}

struct SixteenRunResult {
    let session: SixteenSession
    let stream: [UInt8]
    let delivered: Int
    let requestCompletedAt: Instant?
}

/// Plays `script` against a session accepted at `origin`, as the glue would,
/// calling `observe` after every event.
func runSixteen(_ script: SixteenScript, observe: (SixteenStep) throws -> Void) throws -> SixteenRunResult {
    var stream = script.0
    var session = SixteenSession(timeouts: testTimeouts)
    var now = origin
    var delivered = 0
    var written = 0
    var ended = false
    var requestCompletedAt: Instant?
    var replyWrittenAt: Instant?
    /// The reply offset the session asked the glue to write from, and the armed deadline.
    var writing: Int?
    var armed = origin

    func play(_ event: SixteenEvent, _ perform: (inout SixteenSession) -> SixteenAction) throws {
        let before = session
        let action = perform(&session)
        var writtenAfter = written
        if case .wrote(let count) = event, writing != nil { writtenAfter += count }
        try observe(SixteenStep(
            event: event, now: now, before: before, after: session, action: action, delivered: delivered,
            peerFinished: ended, written: written, writtenAfter: writtenAfter, acceptedAt: origin, requestCompletedAt: requestCompletedAt,
            replyWrittenAt: replyWrittenAt))
        if before.outcome == nil { delivered += event.octets }
        written = writtenAfter
        if before.outcome == nil, session.requestReceived == 16, requestCompletedAt == nil { requestCompletedAt = now }
        if written == 16, replyWrittenAt == nil { replyWrittenAt = now }
        switch action {
        case .armTimer(let deadline): armed = deadline
        case .writeReply(let offset, let deadline): (writing, armed) = (offset, deadline)
        case .shutDownAndLinger(let deadline): (writing, armed) = (nil, deadline)
        case .close: writing = nil
        case .wait: break
        }
    }

    try play(.accept) { $0.accepted(now: now) }
    for (kind, amount, gap) in script.1 {
        now = now + .milliseconds(gap)
        switch kind {
        case 0:
            let count = min(max(amount, 1), stream.count - delivered)
            guard !ended, count > 0 else { continue }
            let chunk = Array(stream[delivered..<(delivered + count)])
            try play(.read(chunk)) { $0.feed(chunk, now: now) }
        case 1:
            // A full socket takes nothing: the glue waits for writability.
            let count = writing.map { min(amount, 16 - $0) } ?? amount
            guard count > 0 else { continue }
            try play(.wrote(count)) { $0.wrote(count, now: now) }
        case 2:
            try play(.writable) { $0.becameWritable(now: now) }
        case 3, 6:
            if kind == 6 { now = max(now, armed + .milliseconds(amount - 10)) }
            try play(.timer) { $0.timerFired(now: now) }
        case 4:
            guard !ended else { continue }
            // The client sent no more than was read.
            ended = true
            stream = Array(stream.prefix(delivered))
            try play(.endOfInput) { $0.inputEnded(now: now) }
        case 5:
            try play(.failure) { $0.connectionFailed() }
        default:
            try play(.acceptAgain) { $0.accepted(now: now) }
        }
    }
    return SixteenRunResult(session: session, stream: stream, delivered: delivered, requestCompletedAt: requestCompletedAt)
}
