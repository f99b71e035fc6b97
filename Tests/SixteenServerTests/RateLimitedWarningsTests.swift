import Logging
import Reactor
import XCTest

@testable import SixteenServer

/// Per-kind rate limiting of warnings: the first of a window is logged at
/// once, the rest are counted and summed up in one "N more like this" line.
/// Driven by a hand-made clock; the log is captured in memory.
final class RateLimitedWarningsTests: XCTestCase {

    /// Two kinds, so their windows can be told apart.
    enum TestWarning: Int, WarningKind {
        case slow
        case broken

        var summary: String {
            switch self {
            case .slow: "slow clients"
            case .broken: "broken pipes"
            }
        }
    }

    /// A non-zero origin for the clock, in nanoseconds.
    static let t0: Int64 = 5_000 * 1_000_000_000 + 17
    static let second: Int64 = 1_000_000_000
    static let millisecond: Int64 = 1_000_000

    /// A fresh log for each test (XCTest makes an instance per test method).
    let log = CapturedLog()

    func limiter(prefix: String = "") -> RateLimitedWarnings<TestWarning> {
        RateLimitedWarnings(logger: log.logger, prefix: prefix)
    }

    func testFirstWarningIsLoggedAtOnceAtItsLevel() {
        let warnings = limiter()
        warnings.warn(.slow, level: .error, now: Self.t0, "client 1 is slow")
        XCTAssertEqual(log.entries, [CapturedLog.Entry(.error, "client 1 is slow")])
        XCTAssertEqual(warnings.heldBack(.slow), 0)
        warnings.warn(.broken, now: Self.t0, "pipe 1 broke")
        XCTAssertEqual(log.entries.last, CapturedLog.Entry(.warning, "pipe 1 broke"))
        XCTAssertEqual(log.entries.count, 2)
    }

    func testRestOfTheWindowIsCountedThenSummedUpByTick() {
        let warnings = limiter()
        var built = 0
        func message(_ number: Int) -> String {
            built += 1
            return "client \(number) is slow"
        }
        warnings.warn(.slow, level: .error, now: Self.t0, message(0))
        for number in 1...49 {
            warnings.warn(.slow, level: .error, now: Self.t0 + Int64(number) * 10 * Self.millisecond, message(number))
        }
        XCTAssertEqual(log.entries, [CapturedLog.Entry(.error, "client 0 is slow")])
        XCTAssertEqual(warnings.heldBack(.slow), 49)
        XCTAssertEqual(warnings.heldBack(.broken), 0)
        XCTAssertEqual(built, 1, "held-back messages are never built")

        warnings.tick(now: Self.t0 + Self.second - 1)
        XCTAssertEqual(log.entries.count, 1)
        XCTAssertEqual(warnings.heldBack(.slow), 49)

        warnings.tick(now: Self.t0 + Self.second)
        XCTAssertEqual(log.entries, [
            CapturedLog.Entry(.error, "client 0 is slow"),
            CapturedLog.Entry(.error, "49 more like this in the last 1.0 s: slow clients"),
        ])
        XCTAssertEqual(warnings.heldBack(.slow), 0)

        // The window is closed: later ticks say nothing, the next warning is logged at once.
        warnings.tick(now: Self.t0 + 5 * Self.second)
        XCTAssertEqual(log.entries.count, 2)
        warnings.warn(.slow, now: Self.t0 + 5 * Self.second + 1, "client 50 is slow")
        XCTAssertEqual(log.entries.count, 3)
        XCTAssertEqual(log.entries.last, CapturedLog.Entry(.warning, "client 50 is slow"))
    }

    func testWindowEndsExactlyOneWindowAfterItOpened() {
        let warnings = limiter()
        warnings.warn(.slow, now: Self.t0, "a")
        warnings.warn(.slow, now: Self.t0 + Self.second - 1, "b")
        XCTAssertEqual(log.messages, ["a"])
        XCTAssertEqual(warnings.heldBack(.slow), 1)
        warnings.warn(.slow, now: Self.t0 + Self.second, "c")
        XCTAssertEqual(log.messages, ["a", "1 more like this in the last 1.0 s: slow clients", "c"])
        XCTAssertEqual(warnings.heldBack(.slow), 0)
    }

    func testElapsedTimeIsInWholeMilliseconds() {
        let warnings = limiter()
        warnings.warn(.slow, now: Self.t0, "a")
        warnings.warn(.slow, now: Self.t0 + 1, "b")
        warnings.warn(.slow, now: Self.t0 + 2, "c")
        warnings.tick(now: Self.t0 + 1_234_567_891)
        XCTAssertEqual(log.messages, ["a", "2 more like this in the last 1.234 s: slow clients"])
    }

    func testKindsDoNotShareAWindow() {
        let warnings = limiter()
        warnings.warn(.slow, now: Self.t0, "slow 1")
        warnings.warn(.slow, now: Self.t0 + Self.millisecond, "slow 2")
        warnings.warn(.broken, level: .notice, now: Self.t0 + 2 * Self.millisecond, "broken 1")
        warnings.warn(.broken, now: Self.t0 + 3 * Self.millisecond, "broken 2")
        warnings.warn(.broken, now: Self.t0 + 4 * Self.millisecond, "broken 3")
        XCTAssertEqual(log.entries, [CapturedLog.Entry(.warning, "slow 1"), CapturedLog.Entry(.notice, "broken 1")])
        XCTAssertEqual(warnings.heldBack(.slow), 1)
        XCTAssertEqual(warnings.heldBack(.broken), 2)

        // Only the window that is over closes.
        warnings.tick(now: Self.t0 + Self.second + Self.millisecond)
        XCTAssertEqual(log.entries.dropFirst(2), [CapturedLog.Entry(.warning, "1 more like this in the last 1.001 s: slow clients")])
        XCTAssertEqual(warnings.heldBack(.broken), 2)
        warnings.tick(now: Self.t0 + Self.second + 2 * Self.millisecond)
        XCTAssertEqual(log.entries.dropFirst(3), [CapturedLog.Entry(.notice, "2 more like this in the last 1.0 s: broken pipes")])
        XCTAssertEqual(log.entries.count, 4)
    }

    func testWarningAfterTheWindowReportsTheTallyFirst() {
        let warnings = limiter()
        warnings.warn(.slow, level: .error, now: Self.t0, "first")
        warnings.warn(.slow, level: .error, now: Self.t0 + 100 * Self.millisecond, "held 1")
        warnings.warn(.slow, level: .error, now: Self.t0 + 200 * Self.millisecond, "held 2")
        // No tick: the next warning after the window reports the tally, then itself, at its own level.
        warnings.warn(.slow, level: .critical, now: Self.t0 + 1_500 * Self.millisecond, "again")
        XCTAssertEqual(log.entries, [
            CapturedLog.Entry(.error, "first"),
            CapturedLog.Entry(.error, "2 more like this in the last 1.5 s: slow clients"),
            CapturedLog.Entry(.critical, "again"),
        ])
        // A new window opened at "again": the next one inside it is held back, and reported at "again"'s level.
        warnings.warn(.slow, now: Self.t0 + 1_600 * Self.millisecond, "held 3")
        XCTAssertEqual(warnings.heldBack(.slow), 1)
        warnings.tick(now: Self.t0 + 2_499 * Self.millisecond)
        XCTAssertEqual(log.entries.count, 3)
        warnings.tick(now: Self.t0 + 2_500 * Self.millisecond)
        XCTAssertEqual(log.entries.last, CapturedLog.Entry(.critical, "1 more like this in the last 1.0 s: slow clients"))
        XCTAssertEqual(log.entries.count, 4)
    }

    func testFlushReportsEveryOpenWindow() {
        let warnings = limiter(prefix: "reactor 2: ")
        warnings.warn(.slow, now: Self.t0, "slow")
        warnings.warn(.broken, level: .error, now: Self.t0 + Self.millisecond, "broken")
        for step in 1...3 { warnings.warn(.slow, now: Self.t0 + Int64(step) * Self.millisecond, "more slow") }
        warnings.warn(.broken, now: Self.t0 + 10 * Self.millisecond, "more broken")
        warnings.flush(now: Self.t0 + 250 * Self.millisecond)
        XCTAssertEqual(log.entries, [
            CapturedLog.Entry(.warning, "reactor 2: slow"),
            CapturedLog.Entry(.error, "reactor 2: broken"),
            CapturedLog.Entry(.warning, "reactor 2: 3 more like this in the last 0.25 s: slow clients"),
            CapturedLog.Entry(.error, "reactor 2: 1 more like this in the last 0.249 s: broken pipes"),
        ])
        XCTAssertEqual(warnings.heldBack(.slow), 0)
        XCTAssertEqual(warnings.heldBack(.broken), 0)
        // Flushed windows are closed: the next warning is logged at once.
        warnings.warn(.slow, now: Self.t0 + 260 * Self.millisecond, "after flush")
        XCTAssertEqual(log.messages.last, "reactor 2: after flush")
        XCTAssertEqual(log.entries.count, 5)
    }

    func testNoTallyLineWhenNothingWasHeldBack() {
        let warnings = limiter()
        warnings.warn(.slow, now: Self.t0, "only")
        warnings.tick(now: Self.t0 + 2 * Self.second)
        warnings.flush(now: Self.t0 + 3 * Self.second)
        XCTAssertEqual(log.messages, ["only"])
        warnings.warn(.broken, now: Self.t0, "once")
        warnings.flush(now: Self.t0 + Self.millisecond)
        warnings.tick(now: Self.t0 + 10 * Self.second)
        XCTAssertEqual(log.messages, ["only", "once"])
        // Nothing at all to report on a limiter that never warned.
        let idle = limiter()
        idle.tick(now: Self.t0)
        idle.flush(now: Self.t0)
        XCTAssertEqual(log.messages, ["only", "once"])
    }

    func testCustomWindow() {
        let warnings = RateLimitedWarnings<TestWarning>(logger: log.logger, windowNanoseconds: 10 * Self.millisecond)
        warnings.warn(.slow, now: Self.t0, "a")
        warnings.warn(.slow, now: Self.t0 + 9 * Self.millisecond, "b")
        warnings.tick(now: Self.t0 + 10 * Self.millisecond)
        XCTAssertEqual(log.messages, ["a", "1 more like this in the last 0.01 s: slow clients"])
    }

    /// A window opened at time 0 (or before it) is a window like any other.
    func testWindowsOpenAtAnyTime() {
        let warnings = limiter()
        for time: Int64 in [0, 1, 2, 3, 4] {
            warnings.warn(.slow, now: time, "w\(time)")
        }
        XCTAssertEqual(log.entries.map(\.message), ["w0"])
        XCTAssertEqual(warnings.heldBack(.slow), 4)
        warnings.tick(now: -Self.second)
        XCTAssertEqual(log.entries.count, 1, "a clock reading before the window opened does not close it")
    }

    func testKindCellsAreRawValues() {
        XCTAssertEqual(TestWarning.allCases.map(\.cell), [0, 1])
    }
}

/// Log lines kept in memory, in order, by a handler that any thread may use.
final class CapturedLog: Sendable {
    struct Entry: Equatable, Sendable, CustomStringConvertible {
        var level: Logger.Level
        var message: String

        init(_ level: Logger.Level, _ message: String) {
            self.level = level
            self.message = message
        }

        var description: String { "\(level): \(message)" }
    }

    private let lines = Lock<[Entry]>([])

    var entries: [Entry] { lines.withLock { $0 } }
    var messages: [String] { entries.map(\.message) }

    /// A logger at `.trace` whose every line lands here.
    var logger: Logger {
        var logger = Logger(label: "test") { _ in CapturingLogHandler(sink: self) }
        logger.logLevel = .trace
        return logger
    }

    func append(_ entry: Entry) {
        lines.withLock { $0.append(entry) }
    }
}

/// A swift-log handler that appends to a `CapturedLog`.
struct CapturingLogHandler: LogHandler {
    let sink: CapturedLog
    var logLevel: Logger.Level = .trace
    var metadata: Logger.Metadata = [:]

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        sink.append(CapturedLog.Entry(event.level, "\(event.message)"))
    }
}
