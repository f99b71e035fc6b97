import SixteenProtocol
import TestSupport
import XCTest

/// The load generator's session (rules in `LoadSession.swift`), as
/// properties: for every mode, any write and read sizes and any
/// interleaving, it sends exactly the request, accepts exactly the expected
/// reply and fails every other (an octet changed, cut short, or one too
/// many) at the octet where it goes wrong; and its inactivity timer acts
/// only at or after the last activity plus the timeout.
final class LoadSessionProperties: XCTestCase {
    private let cases = 1_000

    /// Rules 2, 3, 6: the reply is checked octet by octet. An exact reply
    /// ends `.ok` at EOF, its latency measured at the read of its last
    /// octet; any other fails in the read holding the first wrong or extra
    /// octet (`.wrongOctets`), or at EOF when it is a strict prefix
    /// (`.shortReply`).
    func testVerifiesExactlyTheExpectedReplyAndFailsEveryOther() {
        checkProperty(count: cases, loadCases, describe: describeLoadCase) { input in
            let reply = loadReply(input)
            let expected = expectedLoadReply(input.0)
            let firstWrong = reply.indices.first { $0 >= expected.count || reply[$0] != expected[$0] }
            var completedAt: Instant?
            let run = try runLoad(input, timers: false) { step in
                guard step.before.outcome == nil, case .read(let chunk) = step.event else { return }
                let range = step.delivered..<(step.delivered + chunk.count)
                if let firstWrong, range.contains(firstWrong) {
                    try requireEqual(step.action, .finish(.wrongOctets), "the read of octets \(range) (octet \(firstWrong) is wrong)")
                } else {
                    try requireEqual(step.action, .wait, "the read of octets \(range)")
                    if range.contains(expected.count - 1) { completedAt = step.now }
                }
            }
            let outcome: LoadOutcome = firstWrong != nil ? .wrongOctets : reply.count < expected.count ? .shortReply : .ok
            try requireEqual(run.session.outcome, outcome, "the outcome of \(reply.count) octets")
            if outcome != .wrongOctets {
                try requireEqual(run.session.replyCompletedAt, completedAt, "replyCompletedAt")
            }
        }
    }

    /// Rules 2-4: whatever the socket takes at a time, the session asks for
    /// the request from where it stopped, so exactly the request goes out;
    /// `upper` half-closes once, at its last octet (`sixteen` never);
    /// `sendAll` reads nothing before everything is sent; a held `idle`
    /// session sends nothing until released.
    func testSendsExactlyTheRequest() {
        checkProperty(count: cases, loadCases, describe: describeLoadCase) { input in
            var shutdowns = 0
            // The exact reply, so that no wrong octet ends the session first.
            let run = try runLoad((input.0, (0, 0, 0), input.2), timers: false) { step in
                guard step.before.outcome == nil else { return }
                if case .send(let offset) = step.action { try requireEqual(offset, step.sentAfter, "the offset asked for") }
                if step.action == .shutdownWrite {
                    shutdowns += 1
                    try requireEqual(step.sentAfter, step.after.requestLength, "octets sent at the half-close")
                }
                if case .upper(_, true) = loadMode(input.0) {
                    try requireEqual(step.after.readsNow, step.after.outcome == nil && step.sentAfter == step.after.requestLength, "readsNow with \(step.sentAfter) sent")
                }
            }
            try requireEqual(run.request, expectedLoadRequest(input.0), "the request sent")
            try requireEqual(run.session.outcome, .ok, "the outcome")
            try requireEqual(shutdowns, isUpper(input.0) ? 1 : 0, "half-closes")
        }
    }

    /// Rule 5 and the deadline laws: a timer firing at `t` ends the session
    /// as timed out only if `t` is at least the last activity (start,
    /// connect, release, a write, a read) plus the timeout; fired early, it
    /// re-arms that deadline, which never moves backwards; a held `idle`
    /// session never times out.
    func testTimerActsOnlyAtOrAfterLastActivityPlusTheTimeout() {
        checkProperty(count: cases, loadCases, describe: describeLoadCase) { input in
            var lastDeadline = Instant(nanoseconds: .min)
            _ = try runLoad(input, timers: true) { step in
                guard step.before.outcome == nil, case .timer = step.event else { return }
                let expected: LoadAction
                if step.held {
                    expected = .armTimer(deadline: step.now + loadTimeout)
                } else {
                    let deadline = step.lastActivity + loadTimeout
                    expected = step.now < deadline ? .armTimer(deadline: deadline) : .finish(.timedOut)
                }
                try requireEqual(step.action, expected, "the timer at \(step.now), last activity \(step.lastActivity)")
                if case .armTimer(let deadline) = step.action {
                    try require(deadline >= lastDeadline, "the deadline moved back from \(lastDeadline) to \(deadline)")
                    lastDeadline = deadline
                }
            }
        }
    }

    /// The cases reach every outcome the laws speak of, timers on held
    /// `idle` sessions included.
    func testCasesReachEveryOutcome() {
        var seen: Set<String> = []
        _ = findCounterexample(key: "load coverage", count: cases, loadCases) { input in
            for timers in [false, true] {
                let run = try runLoad(input, timers: timers) { step in
                    if case .timer = step.event, step.held, step.before.outcome == nil { seen.insert("held") }
                }
                seen.insert("\(run.session.outcome.map { "\($0)" } ?? "open")")
            }
        }
        XCTAssertEqual(seen, ["ok", "wrongOctets", "shortReply", "timedOut", "held"])
    }
}

// MARK: - Cases

let loadTimeout = Duration.seconds(5)

/// The mode and its bytes, the reply's change (kind: 0 none, 1 octet
/// `position` XOR `value`, 2 cut to `position`, 3 `position % 20 + 1`
/// extra octets of `value`), and the script: (kind: 0 write, 1 read,
/// 2 timer; size; milliseconds since the last event).
typealias LoadCase = ((Int, Int), (Int, Int, UInt8), [(Int, Int, Int)])

var loadCases: Arbitrary<LoadCase> {
    zip(
        zip(Arbitrary<Int>.integer(in: 0...3), Arbitrary<Int>.integer(in: 1...80)),
        zip(Arbitrary<Int>.integer(in: 0...3), Arbitrary<Int>.integer(in: 0...100), Arbitrary<UInt8>.integer(in: 0...255)),
        zip(Arbitrary<Int>.integer(in: 0...2), Arbitrary<Int>.integer(in: 1...40), Arbitrary<Int>.integer(in: 0...3_000)).array(of: 0...30))
}

/// 0 sixteen, 1 upper sending all first, 2 upper interleaved, 3 idle; `upper`'s bytes.
func loadMode(_ mode: (Int, Int)) -> LoadMode {
    switch mode.0 {
    case 0: .sixteen
    case 1: .upper(bytes: mode.1, sendAll: true)
    case 2: .upper(bytes: mode.1, sendAll: false)
    default: .idle
    }
}

func isUpper(_ mode: (Int, Int)) -> Bool { mode.0 == 1 || mode.0 == 2 }

func describeLoadCase(_ input: LoadCase) -> String {
    let names = ["write", "read", "timer"]
    return "\(loadMode(input.0)), change \(input.1), script: " + input.2.map { "\(names[$0.0]) \($0.1) +\($0.2)ms" }.joined(separator: ", ")
}

/// The request, from the book: `Hi there, server`, or whole frames of `capitalize this!`.
func expectedLoadRequest(_ mode: (Int, Int)) -> [UInt8] {
    guard isUpper(mode) else { return Array("Hi there, server".utf8) }
    return Array(repeating: Array("capitalize this!".utf8), count: (mode.1 + 15) / 16).flatMap { $0 }
}

func expectedLoadReply(_ mode: (Int, Int)) -> [UInt8] {
    guard isUpper(mode) else { return Array("Farewell, client".utf8) }
    return expectedLoadRequest(mode).map { $0 >= 0x61 && $0 <= 0x7a ? $0 - 0x20 : $0 }
}

/// The reply the server sends: the expected one, changed as the case says.
func loadReply(_ input: LoadCase) -> [UInt8] {
    var reply = expectedLoadReply(input.0)
    let (kind, position, value) = input.1
    switch kind {
    case 1: reply[position % reply.count] ^= max(value, 1)
    case 2: reply.removeLast(reply.count - position % reply.count)
    case 3: reply += [UInt8](repeating: value, count: position % 20 + 1)
    default: break
    }
    return reply
}

enum LoadEvent { case start, connect, release, wrote(Int), read([UInt8]), timer, endOfInput }

struct LoadStep {
    let event: LoadEvent
    let now: Instant
    let before: LoadSession
    let after: LoadSession
    let action: LoadAction
    /// Reply octets delivered before this event; request octets sent after it.
    let delivered: Int
    let sentAfter: Int
    /// The last activity before this event, and whether an idle session was held.
    let lastActivity: Instant
    let held: Bool
}

struct LoadRunResult {
    let session: LoadSession
    /// The request octets the glue sent, as the session named them.
    let request: [UInt8]
}

/// Plays the case as the load generator's glue does: start, connect (an
/// idle session released at the first write), the script's writes, reads
/// (what the server can have sent by then) and timers (if `timers`), then
/// the rest of the request, the rest of the reply, and EOF.
func runLoad(_ input: LoadCase, timers: Bool, observe: (LoadStep) throws -> Void) throws -> LoadRunResult {
    let mode = loadMode(input.0)
    let reply = loadReply(input)
    var session = LoadSession(mode: mode, timeout: loadTimeout)
    var now = Instant(nanoseconds: 1_000_000_000)
    var sent = 0
    var delivered = 0
    var request: [UInt8] = []
    var lastActivity = now
    var connected = false
    var released = input.0.0 != 3

    func play(_ event: LoadEvent, _ perform: (inout LoadSession) -> LoadAction) throws {
        let before = session
        let action = perform(&session)
        var sentAfter = sent
        if case .wrote(let count) = event, before.outcome == nil {
            request += (sent..<(sent + count)).map { LoadSession.requestOctet(mode, at: $0) }
            sentAfter += count
        }
        try observe(LoadStep(
            event: event, now: now, before: before, after: session, action: action, delivered: delivered,
            sentAfter: sentAfter, lastActivity: lastActivity, held: connected && !released))
        guard before.outcome == nil else { return }
        sent = sentAfter
        switch event {
        case .read(let chunk): delivered += chunk.count
        case .connect: connected = true
        case .release: released = true
        default: break
        }
        switch event {
        case .start, .connect, .wrote, .read: lastActivity = now
        case .release where connected: lastActivity = now
        default: break
        }
    }
    /// What the server can have sent: a `sixteen` reply once the request is in, an echo as far as the request.
    func available() -> Int {
        sent == session.requestLength ? reply.count : isUpper(input.0) ? min(sent, reply.count) : 0
    }
    func write(_ size: Int) throws {
        if !released { try play(.release) { $0.releasedToSend(now: now) } }
        let count = min(size, session.requestLength - sent)
        guard count > 0 else { return }
        try play(.wrote(count)) { $0.wrote(count, now: now) }
    }
    func read(_ size: Int) throws {
        let count = min(size, available() - delivered)
        guard session.readsNow, count > 0 else { return }
        let chunk = Array(reply[delivered..<(delivered + count)])
        try play(.read(chunk)) { session in chunk.withUnsafeBytes { session.received($0, now: now) } }
    }

    try play(.start) { $0.started(now: now) }
    try play(.connect) { $0.connected(now: now) }
    for (kind, size, gap) in input.2 {
        now = now + .milliseconds(gap)
        switch kind {
        case 0: try write(size)
        case 1: try read(size)
        default: if timers { try play(.timer) { $0.timerFired(now: now) } }
        }
    }
    guard session.outcome == nil else { return LoadRunResult(session: session, request: request) }
    now = now + .milliseconds(1)
    try write(.max)
    try read(.max)
    try play(.endOfInput) { $0.inputEnded(now: now) }
    return LoadRunResult(session: session, request: request)
}
