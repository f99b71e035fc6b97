import SixteenProtocol
import TestSupport
import XCTest

/// The `upper` session's counting and timing laws (rules in
/// `UpperSession.swift`), as properties over random scripts with a small
/// ceiling and a small progress threshold, so that overflow and held input
/// come up: reads as the glue makes them (at most `readRoom`), writes of
/// what is pending, EOF, writability, and timers at any time, on the
/// deadline or just before it. (The octets themselves, through the output
/// queue, are `UpperOutputQueueProperties`' law.)
final class UpperSessionProperties: XCTestCase {
    private let cases = 1_000

    /// Rules 3-5, 7, 8: pending is always received minus sent, within the
    /// ceiling; a read overflows exactly when it would take pending past the
    /// ceiling (with reads of at most `readRoom`: only at the ceiling);
    /// writability asks to send exactly while output is pending; EOF and
    /// the write that empties the queue after it complete, with every octet
    /// echoed; a closed session ignores every event.
    func testCountsOverflowAndCompletionFollowTheRules() {
        checkProperty(count: cases, upperScripts, describe: describeUpperScript) { script in
            _ = try runUpper(script) { step in
                if let outcome = step.before.outcome {
                    try requireEqual(step.action, .wait, "\(step.event) after the close")
                    try requireEqual(step.after.outcome, outcome, "the outcome after \(step.event)")
                    return
                }
                let pending = step.before.pending
                let expected: UpperAction?
                switch step.event {
                case .read(let count):
                    expected = count > step.limits.maxPending - pending
                        ? .close(.overflowed(pending: pending + count)) : .queueAndSend
                    if case .close = expected { try requireEqual(pending, step.limits.maxPending, "pending when a read of at most readRoom overflows") }
                case .wrote(let count):
                    expected = pending > count ? .send : step.ended ? .close(.completed(echoed: step.before.octetsReceived)) : .wait
                case .writable:
                    expected = pending > 0 ? .send : .wait
                case .endOfInput:
                    expected = pending > 0 ? .send : .close(.completed(echoed: step.before.octetsReceived))
                case .failure:
                    expected = .close(.reset(received: step.before.octetsReceived, sent: step.before.octetsSent))
                case .timer:
                    expected = nil
                }
                if let expected { try requireEqual(step.action, expected, "\(step.event) with \(pending) pending") }
                let after = step.after
                try requireEqual(after.pending, after.octetsReceived - after.octetsSent, "pending vs the counts")
                try require(after.pending >= 0 && after.pending <= step.limits.maxPending, "pending \(after.pending)")
            }
        }
    }

    /// Rule 6 and the deadline laws: progress is a write, EOF, input with
    /// nothing pending, or each `holdProgress` octets of input while output
    /// is pending; a timer firing at `t` ends the session as idle only if
    /// `t` is at least the last progress plus `idle`, and fired earlier it
    /// re-arms exactly that deadline, which never moves backwards.
    func testIdleTimerActsOnlyAtOrAfterLastProgressPlusIdle() {
        checkProperty(count: cases, upperScripts, describe: describeUpperScript) { script in
            var lastDeadline = Instant(nanoseconds: .min)
            _ = try runUpper(script) { step in
                guard step.before.outcome == nil, case .timer = step.event else { return }
                let deadline = step.lastProgress + step.limits.idle
                let expected: UpperAction = step.now < deadline
                    ? .armTimer(deadline: deadline)
                    : .close(.idleTimedOut(received: step.before.octetsReceived, sent: step.before.octetsSent))
                try requireEqual(step.action, expected, "the timer at \(step.now), last progress \(step.lastProgress)")
                if case .armTimer(let armed) = step.action {
                    try require(armed >= lastDeadline, "the deadline moved back from \(lastDeadline) to \(armed)")
                    lastDeadline = armed
                }
            }
        }
    }

    /// The scripts reach every ending and held input.
    func testScriptsReachEveryEnding() {
        var seen: Set<String> = []
        _ = findCounterexample(key: "upper session coverage", count: cases, upperScripts) { script in
            let session = try runUpper(script) { step in
                if case .read = step.event, step.before.outcome == nil, step.before.pending > 0 { seen.insert("held") }
            }
            seen.insert(session.outcome.map { "\($0)".prefix { $0 != "(" }.description } ?? "open")
        }
        XCTAssertEqual(seen, ["completed", "overflowed", "idleTimedOut", "reset", "open", "held"])
    }
}

// MARK: - Scripts

/// (ceiling, hold threshold), and events: (kind: 0 read, 1 write, 2 EOF,
/// 3 writable, 4 timer, 5 timer at the deadline + size - 20 ms, 6 reset;
/// size, small ones likely, so that held input hits the threshold exactly;
/// milliseconds since the last event).
typealias UpperScript = ((Int, Int), [(Int, Int, Int)])

var upperScripts: Arbitrary<UpperScript> {
    zip(
        zip(Arbitrary<Int>.integer(in: 1...64, shrinkingToward: 64), Arbitrary<Int>.integer(in: 1...16, shrinkingToward: 16)),
        zip(
            Arbitrary<Int>.element(of: [0, 0, 0, 1, 1, 2, 3, 4, 5, 5, 6]), Arbitrary<Int>.element(of: [1, 2, 3, 4, 8, 16, 40]),
            Arbitrary<Int>.integer(in: 0...20_000)
        ).array(of: 0...40))
}

func describeUpperScript(_ script: UpperScript) -> String {
    let names = ["read", "write", "EOF", "writable", "timer", "timer@deadline", "reset"]
    return "ceiling \(script.0.0), hold \(script.0.1); " + script.1.map { "\(names[$0.0]) \($0.1) +\($0.2)ms" }.joined(separator: ", ")
}

enum UpperEvent: CustomStringConvertible {
    case read(Int), wrote(Int), endOfInput, writable, timer, failure
    var description: String {
        switch self {
        case .read(let count): "a read of \(count)"
        case .wrote(let count): "a write of \(count)"
        case .endOfInput: "EOF"
        case .writable: "writable"
        case .timer: "the timer"
        case .failure: "a reset"
        }
    }
}

struct UpperStep {
    let event: UpperEvent
    let now: Instant
    let limits: UpperLimits
    let before: UpperSession
    let after: UpperSession
    let action: UpperAction
    /// Whether EOF had come, and the last progress by rule 6, before this event.
    let ended: Bool
    let lastProgress: Instant
}

/// Plays the script against a session accepted at `origin`, reads limited
/// to `readRoom` as the glue does, writes to what is pending; tracks
/// progress by rule 6 on its own.
func runUpper(_ script: UpperScript, observe: (UpperStep) throws -> Void) throws -> UpperSession {
    let limits = UpperLimits(idle: .seconds(30), maxPending: script.0.0, holdProgress: script.0.1)
    var session = UpperSession(limits: limits)
    var now = origin
    var ended = false
    var lastProgress = now
    var held = 0
    _ = session.accepted(now: now)

    func play(_ event: UpperEvent, _ perform: (inout UpperSession) -> UpperAction) throws {
        let before = session
        let action = perform(&session)
        try observe(UpperStep(
            event: event, now: now, limits: limits, before: before, after: session, action: action, ended: ended,
            lastProgress: lastProgress))
        guard before.outcome == nil else { return }
        var progressed = false
        switch event {
        case .read(let count) where !ended:
            held += before.pending == 0 ? 0 : count
            progressed = before.pending == 0 || held >= limits.holdProgress
        case .wrote(let count): progressed = count > 0
        case .endOfInput: progressed = !ended
        default: break
        }
        if progressed {
            lastProgress = now
            held = 0
        }
        if case .endOfInput = event { ended = true }
    }

    for (kind, size, gap) in script.1 {
        now = now + .milliseconds(gap)
        switch kind {
        case 0:
            guard !ended else { continue }
            let count = min(size, session.readRoom)
            try play(.read(count)) { $0.received(count, now: now) }
        case 1:
            let count = min(size, session.pending)
            guard count > 0 else { continue }
            try play(.wrote(count)) { $0.wrote(count, now: now) }
        case 2:
            guard !ended else { continue }
            try play(.endOfInput) { $0.inputEnded(now: now) }
        case 3:
            try play(.writable) { $0.becameWritable(now: now) }
        case 4, 5:
            if kind == 5 { now = max(now, lastProgress + limits.idle + .milliseconds(size - 20)) }
            try play(.timer) { $0.timerFired(now: now) }
        default:
            try play(.failure) { $0.connectionFailed() }
        }
    }
    return session
}
