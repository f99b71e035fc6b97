import SixteenProtocol
import XCTest

/// The admin listener's per-connection state machine, rule by rule (see the
/// header of `AdminSession.swift`). No sockets, no clock: every `now` is
/// hand-made from `origin` (see `SessionTestSupport.swift`).
final class AdminSessionTests: XCTestCase {

    /// Three different timeouts, so a deadline computed from the wrong one shows.
    static let timeouts = AdminTimeouts(request: .seconds(5), response: .seconds(3), linger: .milliseconds(1_500))
    static let getMetrics = "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n"

    static let acceptedAt = sec(0)
    static let requestDeadline = sec(5)
    static let requestCompletedAt = ms(200)
    static let responseReadyAt = ms(250)
    static let responseDeadline = ms(3_250)
    static let writtenAt = ms(400)
    static let lingerDeadline = ms(1_900)
    static let responseLength = 100

    // MARK: Drivers

    static func accepted(file: StaticString = #filePath, line: UInt = #line) -> AdminSession {
        var session = AdminSession(timeouts: timeouts)
        XCTAssertEqual(session.accepted(now: acceptedAt), .armTimer(deadline: requestDeadline), file: file, line: line)
        return session
    }

    static func writing(file: StaticString = #filePath, line: UInt = #line) -> AdminSession {
        var session = accepted(file: file, line: line)
        XCTAssertEqual(session.feed(getMetrics, now: requestCompletedAt), .respond(.route(.metrics, headOnly: false)), file: file, line: line)
        XCTAssertEqual(
            session.responseReady(length: responseLength, now: responseReadyAt),
            .write(offset: 0, deadline: responseDeadline), file: file, line: line)
        return session
    }

    static func lingering(file: StaticString = #filePath, line: UInt = #line) -> AdminSession {
        var session = writing(file: file, line: line)
        XCTAssertEqual(session.wrote(responseLength, now: writtenAt), .shutDownAndLinger(deadline: lingerDeadline), file: file, line: line)
        return session
    }

    // MARK: Rule 1: accept and the request deadline

    func testDefaultTimeouts() {
        XCTAssertEqual(AdminTimeouts(), AdminTimeouts(request: .seconds(5), response: .seconds(5), linger: .seconds(1)))
        XCTAssertEqual(AdminSession(timeouts: Self.timeouts).timeouts, Self.timeouts)
    }

    func testAcceptedArmsTheRequestDeadline() {
        var session = AdminSession(timeouts: Self.timeouts)
        XCTAssertNil(session.outcome)
        XCTAssertNil(session.request)
        XCTAssertEqual(
            session.accepted(now: origin),
            .armTimer(deadline: Instant(nanoseconds: origin.nanoseconds + 5 * nanosecondsPerSecond)))
        XCTAssertNil(session.outcome)
        XCTAssertNil(session.responseOffset)
        // A second accept is ignored; the deadline stays.
        XCTAssertEqual(session.accepted(now: sec(3)), .wait)
        XCTAssertEqual(session.timerFired(now: sec(4)), .armTimer(deadline: sec(5)))
    }

    func testEventsBeforeAcceptDoNothing() {
        var session = AdminSession(timeouts: Self.timeouts)
        XCTAssertEqual(session.feed(Self.getMetrics, now: origin), .wait)
        XCTAssertEqual(session.timerFired(now: sec(100)), .wait)
        XCTAssertEqual(session.inputEnded(now: origin), .wait)
        XCTAssertEqual(session.responseReady(length: 10, now: origin), .wait)
        XCTAssertEqual(session.wrote(10, now: origin), .wait)
        XCTAssertEqual(session.becameWritable(now: origin), .wait)
        XCTAssertNil(session.outcome)
        XCTAssertNil(session.request)
        XCTAssertEqual(session.accepted(now: origin), .armTimer(deadline: sec(5)))
    }

    func testSplitRequestIsAnsweredWhenTheHeadEnds() {
        var session = Self.accepted()
        XCTAssertEqual(session.feed("GET /metrics HT", now: ms(10)), .wait)
        XCTAssertEqual(session.feed("TP/1.1\r\nHost: localhost\r", now: ms(20)), .wait)
        XCTAssertNil(session.request)
        // Nothing but the response is due while reading.
        XCTAssertEqual(session.responseReady(length: 10, now: ms(25)), .wait)
        XCTAssertEqual(session.wrote(10, now: ms(25)), .wait)
        XCTAssertEqual(session.becameWritable(now: ms(25)), .wait)
        XCTAssertEqual(session.feed("\n\r\n", now: ms(30)), .respond(.route(.metrics, headOnly: false)))
        XCTAssertEqual(session.request, .route(.metrics, headOnly: false))
        XCTAssertNil(session.outcome)
        // Reading no longer matters: more octets, EOF and the timer are ignored.
        XCTAssertEqual(session.feed("GET /ready HTTP/1.1\r\n\r\n", now: ms(40)), .wait)
        XCTAssertEqual(session.inputEnded(now: ms(50)), .wait)
        XCTAssertEqual(session.timerFired(now: sec(6)), .wait)
        XCTAssertEqual(session.request, .route(.metrics, headOnly: false))
        XCTAssertNil(session.outcome)
    }

    func testEachRequestKindIsAnswered() {
        let cases: [(String, AdminRequest)] = [
            ("HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n", .route(.health, headOnly: true)),
            ("GET /ready HTTP/1.0\r\n\r\n", .route(.ready, headOnly: false)),
            ("GET /nope HTTP/1.1\r\nHost: a\r\n\r\n", .error(.notFound)),
            ("POST /metrics HTTP/1.1\r\nHost: a\r\n\r\n", .error(.methodNotAllowed)),
            ("GET /metrics HTTP/1.1\r\n\r\n", .error(.badRequest)),
            ("GET / HTTP/2.0\r\n", .error(.versionNotSupported)),
            ("garbage\r\n", .error(.badRequest)),
            ("GET /" + String(repeating: "a", count: 8200), .error(.headersTooLarge)),
        ]
        for (text, expected) in cases {
            var session = Self.accepted()
            XCTAssertEqual(session.feed(text, now: ms(100)), .respond(expected), text)
            XCTAssertEqual(session.request, expected, text)
            XCTAssertEqual(session.responseReady(length: 7, now: ms(150)), .write(offset: 0, deadline: ms(3_150)), text)
        }
    }

    func testTimerBeforeTheRequestDeadlineRearmsIt() {
        var session = Self.accepted()
        XCTAssertEqual(session.timerFired(now: Self.acceptedAt), .armTimer(deadline: Self.requestDeadline))
        XCTAssertEqual(session.timerFired(now: offset(Self.requestDeadline, nanoseconds: -1)), .armTimer(deadline: Self.requestDeadline))
        XCTAssertEqual(session.feed("GET / HTTP/1.1\r\n", now: sec(4)), .wait)
        XCTAssertEqual(session.timerFired(now: ms(4_999)), .armTimer(deadline: Self.requestDeadline))
        XCTAssertNil(session.outcome)
    }

    func testRequestDeadlineClosesWithNoResponse() {
        var session = Self.accepted()
        XCTAssertEqual(session.feed("GET /metrics HTTP/1.1\r\n", now: ms(100)), .wait)
        XCTAssertEqual(session.timerFired(now: Self.requestDeadline), .close(.requestTimeout))
        XCTAssertEqual(session.outcome, .requestTimeout)
        XCTAssertNil(session.request)
        // The rest of the head, arriving late, asks for nothing.
        XCTAssertEqual(session.feed("Host: a\r\n\r\n", now: ms(5_001)), .wait)
        XCTAssertNil(session.request)
        XCTAssertEqual(session.outcome, .requestTimeout)
    }

    func testRequestDeadlineLongPassedClosesToo() {
        var session = Self.accepted()
        XCTAssertEqual(session.timerFired(now: sec(60)), .close(.requestTimeout))
        XCTAssertEqual(session.outcome, .requestTimeout)
    }

    // MARK: Rule 2: writing the response

    func testPartialWritesKeepTheResponseDeadline() {
        var session = Self.writing()
        XCTAssertEqual(session.responseOffset, 0)
        XCTAssertEqual(session.becameWritable(now: ms(260)), .write(offset: 0, deadline: Self.responseDeadline))
        XCTAssertEqual(session.wrote(30, now: ms(300)), .write(offset: 30, deadline: Self.responseDeadline))
        XCTAssertEqual(session.responseOffset, 30)
        XCTAssertEqual(session.wrote(0, now: ms(310)), .write(offset: 30, deadline: Self.responseDeadline))
        XCTAssertEqual(session.wrote(-4, now: ms(320)), .write(offset: 30, deadline: Self.responseDeadline))
        XCTAssertEqual(session.becameWritable(now: ms(2_000)), .write(offset: 30, deadline: Self.responseDeadline))
        XCTAssertEqual(session.wrote(69, now: ms(2_100)), .write(offset: 99, deadline: Self.responseDeadline))
        XCTAssertEqual(session.responseOffset, 99)
        XCTAssertEqual(session.becameWritable(now: ms(2_200)), .write(offset: 99, deadline: Self.responseDeadline))
        // The linger deadline counts from the last write, not from any earlier instant.
        XCTAssertEqual(session.wrote(1, now: ms(2_300)), .shutDownAndLinger(deadline: ms(3_800)))
        XCTAssertNil(session.responseOffset)
        XCTAssertNil(session.outcome)
    }

    func testResponseReadyOnlyOnce() {
        var session = Self.writing()
        XCTAssertEqual(session.responseReady(length: 5, now: ms(300)), .wait)
        XCTAssertEqual(session.wrote(5, now: ms(310)), .write(offset: 5, deadline: Self.responseDeadline))
    }

    func testOverlongWriteReportCountsAsAll() {
        var session = Self.writing()
        XCTAssertEqual(session.wrote(1_000, now: Self.writtenAt), .shutDownAndLinger(deadline: Self.lingerDeadline))
    }

    func testEmptyResponseLingersAtTheFirstWriteReport() {
        var session = Self.accepted()
        XCTAssertEqual(session.feed(Self.getMetrics, now: ms(1)), .respond(.route(.metrics, headOnly: false)))
        XCTAssertEqual(session.responseReady(length: 0, now: ms(2)), .write(offset: 0, deadline: ms(3_002)))
        XCTAssertEqual(session.wrote(0, now: ms(3)), .shutDownAndLinger(deadline: ms(1_503)))
    }

    func testTimerBeforeTheResponseDeadlineRearmsIt() {
        var session = Self.writing()
        XCTAssertEqual(session.timerFired(now: offset(Self.responseDeadline, nanoseconds: -1)), .armTimer(deadline: Self.responseDeadline))
        // The request deadline (5 s) no longer applies.
        XCTAssertEqual(session.wrote(10, now: ms(3_000)), .write(offset: 10, deadline: Self.responseDeadline))
        XCTAssertNil(session.outcome)
    }

    func testResponseDeadlineClosesAsReplyTimeout() {
        var session = Self.writing()
        XCTAssertEqual(session.wrote(40, now: ms(500)), .write(offset: 40, deadline: Self.responseDeadline))
        XCTAssertEqual(session.timerFired(now: Self.responseDeadline), .close(.replyTimeout))
        XCTAssertEqual(session.outcome, .replyTimeout)
        XCTAssertNil(session.responseOffset)
        XCTAssertEqual(session.wrote(60, now: ms(3_300)), .wait)
    }

    func testEOFWhileWritingIsIgnored() {
        var session = Self.writing()
        XCTAssertEqual(session.inputEnded(now: ms(300)), .wait)
        XCTAssertEqual(session.responseOffset, 0)
        XCTAssertEqual(session.wrote(Self.responseLength, now: Self.writtenAt), .shutDownAndLinger(deadline: Self.lingerDeadline))
    }

    // MARK: Rule 3: shut down and linger

    func testEOFWhileLingeringClosesAsReplied() {
        var session = Self.lingering()
        XCTAssertEqual(session.feed("unread body", now: ms(500)), .wait)
        XCTAssertEqual(session.becameWritable(now: ms(500)), .wait)
        XCTAssertEqual(session.inputEnded(now: ms(600)), .close(.replied))
        XCTAssertEqual(session.outcome, .replied)
    }

    func testTimerBeforeTheLingerDeadlineRearmsIt() {
        var session = Self.lingering()
        XCTAssertEqual(session.timerFired(now: offset(Self.lingerDeadline, nanoseconds: -1)), .armTimer(deadline: Self.lingerDeadline))
        XCTAssertNil(session.outcome)
    }

    func testLingerDeadlineClosesAsReplied() {
        var session = Self.lingering()
        XCTAssertEqual(session.timerFired(now: Self.lingerDeadline), .close(.replied))
        XCTAssertEqual(session.outcome, .replied)
    }

    // MARK: Rule 4: EOF and errors

    func testEOFWhileReadingIsShort() {
        var session = Self.accepted()
        XCTAssertEqual(session.inputEnded(now: ms(10)), .close(.short))
        XCTAssertEqual(session.outcome, .short)
        XCTAssertNil(session.request)

        var partial = Self.accepted()
        XCTAssertEqual(partial.feed("GET /metrics HTTP/1.1\r\nHost: a\r\n", now: ms(10)), .wait)
        XCTAssertEqual(partial.inputEnded(now: ms(20)), .close(.short))
        XCTAssertEqual(partial.outcome, .short)
        XCTAssertNil(partial.request)
    }

    func testConnectionFailureIsAResetUntilTheResponseIsOut() {
        var fresh = AdminSession(timeouts: Self.timeouts)
        XCTAssertEqual(fresh.connectionFailed(), .close(.reset))
        XCTAssertEqual(fresh.accepted(now: origin), .wait)

        var reading = Self.accepted()
        XCTAssertEqual(reading.connectionFailed(), .close(.reset))
        XCTAssertEqual(reading.outcome, .reset)

        var awaiting = Self.accepted()
        XCTAssertEqual(awaiting.feed(Self.getMetrics, now: ms(1)), .respond(.route(.metrics, headOnly: false)))
        XCTAssertEqual(awaiting.connectionFailed(), .close(.reset))
        XCTAssertEqual(awaiting.outcome, .reset)

        var writing = Self.writing()
        XCTAssertEqual(writing.wrote(99, now: ms(300)), .write(offset: 99, deadline: Self.responseDeadline))
        XCTAssertEqual(writing.connectionFailed(), .close(.reset))
        XCTAssertEqual(writing.outcome, .reset)

        var lingering = Self.lingering()
        XCTAssertEqual(lingering.connectionFailed(), .close(.replied))
        XCTAssertEqual(lingering.outcome, .replied)
    }

    // MARK: Rule 5: closed is final

    func testEveryEventAfterCloseIsIgnored() {
        var closedSessions: [(AdminSession, SessionOutcome)] = []
        var short = Self.accepted()
        _ = short.inputEnded(now: ms(1))
        closedSessions.append((short, .short))
        var timedOut = Self.accepted()
        _ = timedOut.timerFired(now: sec(5))
        closedSessions.append((timedOut, .requestTimeout))
        var replyTimedOut = Self.writing()
        _ = replyTimedOut.timerFired(now: sec(10))
        closedSessions.append((replyTimedOut, .replyTimeout))
        var reset = Self.writing()
        _ = reset.connectionFailed()
        closedSessions.append((reset, .reset))
        var replied = Self.lingering()
        _ = replied.inputEnded(now: ms(500))
        closedSessions.append((replied, .replied))

        for (closed, outcome) in closedSessions {
            var session = closed
            XCTAssertEqual(session.outcome, outcome)
            XCTAssertEqual(session.accepted(now: sec(20)), .wait, "\(outcome)")
            XCTAssertEqual(session.feed(Self.getMetrics, now: sec(20)), .wait, "\(outcome)")
            XCTAssertEqual(session.responseReady(length: 5, now: sec(20)), .wait, "\(outcome)")
            XCTAssertEqual(session.wrote(5, now: sec(20)), .wait, "\(outcome)")
            XCTAssertEqual(session.becameWritable(now: sec(20)), .wait, "\(outcome)")
            XCTAssertEqual(session.inputEnded(now: sec(20)), .wait, "\(outcome)")
            XCTAssertEqual(session.connectionFailed(), .wait, "\(outcome)")
            XCTAssertEqual(session.timerFired(now: Instant(nanoseconds: .max)), .wait, "\(outcome)")
            XCTAssertEqual(session.outcome, outcome)
            XCTAssertEqual(session.request, closed.request)
            XCTAssertNil(session.responseOffset)
        }
    }
}

extension AdminSession {
    /// Reports `text` as one read.
    mutating func feed(_ text: String, now: Instant) -> AdminAction {
        Array(text.utf8).withUnsafeBytes { received($0, now: now) }
    }
}
