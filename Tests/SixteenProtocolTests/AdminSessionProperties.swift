import SixteenProtocol
import TestSupport
import XCTest

/// The admin connection's state machine (rules in `AdminSession.swift`), as
/// properties over random scripts: inputs made of request pieces
/// (`HTTPRequestParserProperties.vocabulary`) in reads of any size, the
/// response's length and partial writes, writability, EOF, resets, and
/// timers at any time or on the deadline. The model is the rules, phase by
/// phase; the head itself is the parser's business (its own properties).
final class AdminSessionProperties: XCTestCase {
    private let cases = 1_000
    static let timeouts = AdminTimeouts(request: .seconds(5), response: .seconds(3), linger: .milliseconds(1_500))

    /// Rules 1, 2: the session answers exactly once, in the read holding the
    /// octet at which the whole input's head is decided, with what that
    /// head asks (its route, or the refusal's status); never if the request
    /// deadline, EOF or a reset came first.
    func testRespondsOnceWithWhatTheWholeHeadAsks() {
        checkProperty(count: cases, adminScripts, describe: describeAdminScript) { script in
            let octets = joined(HTTPRequestParserProperties.vocabulary, script.0)
            var parser = HTTPRequestParser()
            let decided = decidingOctet(octets, incomplete: HTTPParseResult.incomplete) { read in read.withUnsafeBytes { parser.consume($0) } }
            let answer: AdminRequest? = switch decided.result {
            case .incomplete: nil
            case .complete(let head): .routing(head)
            case .rejected(let status): .error(status)
            }
            var responds = 0
            let run = try runAdmin(script) { step in
                guard case .respond(let request) = step.action else { return }
                responds += 1
                try requireEqual(request, answer, "the answer")
                guard case .read(let range) = step.event, let index = decided.index, range.contains(index) else {
                    throw PropertyFailure("answered at \(step.event), the head decided at octet \(String(describing: decided.index))")
                }
            }
            let decidedWhileReading = decided.index.map { run.deliveredWhileReading > $0 } ?? false
            try requireEqual(responds, decidedWhileReading ? 1 : 0, "answers, \(run.deliveredWhileReading) octets read")
        }
    }

    /// Rules 1-5 and the deadline laws: every event gets the action the
    /// rules give for the phase (reading, awaiting the response, writing,
    /// lingering, closed): writes go on from where the last stopped, the
    /// response's end shuts down and lingers, EOF is short while reading and
    /// replied while lingering, a reset is replied only while lingering,
    /// timers act only at or after the phase's deadline (counted from
    /// accept, from the response being ready, from its last octet) and
    /// re-arm it before, and a closed session ignores everything.
    func testEveryEventGetsTheRulesAction() {
        checkProperty(count: cases, adminScripts, describe: describeAdminScript) { script in
            _ = try runAdmin(script) { step in
                let timeouts = Self.timeouts
                let expected: AdminAction
                switch (step.phase, step.event) {
                case (.closed, _):
                    expected = .wait
                case (.reading, .read):
                    return  // the first property's business
                case (.awaiting, .ready):
                    expected = .write(offset: 0, deadline: step.now + timeouts.response)
                case (.writing(let length, let sent, let deadline), .wrote(let count)):
                    let total = min(length, sent + count)
                    expected = total < length ? .write(offset: total, deadline: deadline) : .shutDownAndLinger(deadline: step.now + timeouts.linger)
                case (.writing(_, let sent, let deadline), .writable):
                    expected = .write(offset: sent, deadline: deadline)
                case (.reading(let deadline), .timer), (.writing(_, _, let deadline), .timer), (.lingering(let deadline), .timer):
                    let ending: SessionOutcome = switch step.phase {
                    case .reading: .requestTimeout
                    case .writing: .replyTimeout
                    default: .replied
                    }
                    expected = step.now < deadline ? .armTimer(deadline: deadline) : .close(ending)
                case (.reading, .endOfInput):
                    expected = .close(.short)
                case (.lingering, .endOfInput), (.lingering, .failure):
                    expected = .close(.replied)
                case (_, .failure):
                    expected = .close(.reset)
                default:
                    expected = .wait
                }
                try requireEqual(step.action, expected, "\(step.event) while \(step.phase)")
            }
        }
    }

    /// The scripts reach every phase's ending.
    func testScriptsReachEveryEnding() {
        var seen: Set<String> = []
        _ = findCounterexample(key: "admin coverage", count: cases, adminScripts) { script in
            let run = try runAdmin(script) { _ in }
            seen.insert(run.session.outcome.map { "\($0)" } ?? "open")
        }
        XCTAssertEqual(seen, ["replied", "short", "reset", "request_timeout", "reply_timeout", "open"])
    }
}

// MARK: - Scripts

/// Input tokens, and events: (kind: 0 read `size` octets, 1 the response is
/// ready, `size` octets long, 2 the socket takes `size`, 3 writable,
/// 4 timer, 5 timer at the phase's deadline + `size` - 20 ms, 6 EOF,
/// 7 reset, 8 a second accept; size; milliseconds since the last event).
typealias AdminScript = ([Int], [(Int, Int, Int)])

var adminScripts: Arbitrary<AdminScript> {
    zip(
        tokens(HTTPRequestParserProperties.vocabulary, count: 0...12),
        zip(
            Arbitrary<Int>.element(of: [0, 0, 0, 1, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8]), Arbitrary<Int>.integer(in: 1...40),
            Arbitrary<Int>.integer(in: 0...2_000)
        ).array(of: 0...30))
}

func describeAdminScript(_ script: AdminScript) -> String {
    let names = ["read", "ready", "take", "writable", "timer", "timer@deadline", "EOF", "reset", "accept"]
    return HTTPRequestParserProperties.describe((script.0, [])) + "; "
        + script.1.map { "\(names[$0.0]) \($0.1) +\($0.2)ms" }.joined(separator: ", ")
}

enum AdminEvent: CustomStringConvertible {
    case read(Range<Int>), ready(Int), wrote(Int), writable, timer, endOfInput, failure, acceptAgain
    var description: String {
        switch self {
        case .read(let range): "the read of octets \(range)"
        case .ready(let length): "a response of \(length) ready"
        case .wrote(let count): "a write of \(count)"
        case .writable: "writable"
        case .timer: "the timer"
        case .endOfInput: "EOF"
        case .failure: "a reset"
        case .acceptAgain: "a second accept"
        }
    }
}

/// The phase by the rules, as the glue sees it from the actions.
enum AdminPhase: Equatable {
    case reading(deadline: Instant)
    case awaiting
    case writing(length: Int, sent: Int, deadline: Instant)
    case lingering(deadline: Instant)
    case closed
}

struct AdminStep {
    let event: AdminEvent
    let now: Instant
    let phase: AdminPhase
    let action: AdminAction
}

struct AdminRun {
    let session: AdminSession
    /// Input octets delivered while the session was reading.
    let deliveredWhileReading: Int
}

/// Plays the script against a session accepted at `origin`, following its
/// phase by the rules from the actions it returns.
func runAdmin(_ script: AdminScript, observe: (AdminStep) throws -> Void) throws -> AdminRun {
    let octets = joined(HTTPRequestParserProperties.vocabulary, script.0)
    let timeouts = AdminSessionProperties.timeouts
    var session = AdminSession(timeouts: timeouts)
    var now = origin
    var delivered = 0
    var deliveredWhileReading = 0
    _ = session.accepted(now: now)
    var phase = AdminPhase.reading(deadline: now + timeouts.request)

    func play(_ event: AdminEvent, _ perform: (inout AdminSession) -> AdminAction) throws {
        let action = perform(&session)
        try observe(AdminStep(event: event, now: now, phase: phase, action: action))
        if case .read(let range) = event, case .reading = phase { deliveredWhileReading = range.upperBound }
        switch (phase, action) {
        case (_, .close): phase = .closed
        case (_, .respond): phase = .awaiting
        case (_, .write(let offset, let deadline)):
            if case .ready(let length) = event { phase = .writing(length: length, sent: 0, deadline: deadline) }
            if case .writing(let length, _, _) = phase { phase = .writing(length: length, sent: offset, deadline: deadline) }
        case (_, .shutDownAndLinger(let deadline)): phase = .lingering(deadline: deadline)
        default: break
        }
    }

    for (kind, size, gap) in script.1 {
        now = now + .milliseconds(gap)
        switch kind {
        case 0:
            let end = min(octets.count, delivered + size)
            guard end > delivered else { continue }
            let read = delivered..<end
            delivered = end
            try play(.read(read)) { session in octets[read].withUnsafeBytes { session.received($0, now: now) } }
        case 1:
            try play(.ready(size)) { $0.responseReady(length: size, now: now) }
        case 2:
            try play(.wrote(size)) { $0.wrote(size, now: now) }
        case 3:
            try play(.writable) { $0.becameWritable(now: now) }
        case 4, 5:
            if kind == 5 {
                switch phase {
                case .reading(let deadline), .writing(_, _, let deadline), .lingering(let deadline):
                    now = max(now, deadline + .milliseconds(size - 20))
                default: break
                }
            }
            try play(.timer) { $0.timerFired(now: now) }
        case 6:
            try play(.endOfInput) { $0.inputEnded(now: now) }
        case 7:
            try play(.failure) { $0.connectionFailed() }
        default:
            try play(.acceptAgain) { $0.accepted(now: now) }
        }
    }
    return AdminRun(session: session, deliveredWhileReading: deliveredWhileReading)
}
