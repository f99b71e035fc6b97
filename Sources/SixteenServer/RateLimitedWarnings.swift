import Logging

/// The kinds of warning one owner rate-limits, each separately.
public protocol WarningKind: CaseIterable, Sendable {
    /// This kind's position among its owner's kinds.
    var cell: Int { get }
    /// What the "N more like this" line calls this kind of warning.
    var summary: String { get }
}

extension WarningKind where Self: RawRepresentable, RawValue == Int {
    public var cell: Int { rawValue }
}

/// Warnings rate-limited per kind, so a flood of one kind neither floods
/// the log nor hides another kind. In each window (a second by default) the
/// first warning of a kind is logged as it happens; the rest are only
/// counted, and when the window is over one line says how many more there
/// were ("48 more like this in the last 1.0 s: …"). Only log lines are
/// limited: counters always count everything.
///
/// Used by one thread only (its owner's loop); `tick` is called from the
/// owner's heartbeat, so a window's tally is logged even when nothing else
/// of its kind happens.
final class RateLimitedWarnings<Kind: WarningKind> {
    private let logger: Logger
    private let window: Int64
    private let prefix: String
    /// Per kind: when its window opened (nil: no window open), warnings
    /// suppressed in it, and the level they were at.
    private var opened: [Int64?]
    private var suppressed: [Int]
    private var levels: [Logger.Level]
    /// `Kind.allCases`, made once: the heartbeat walks it every second, and
    /// `allCases` builds a new array each time it is asked.
    private let kinds: [Kind]

    init(logger: Logger, prefix: String = "", windowNanoseconds: Int64 = 1_000_000_000) {
        self.logger = logger
        self.prefix = prefix
        window = windowNanoseconds
        kinds = Array(Kind.allCases)
        let count = kinds.count
        opened = Array(repeating: nil, count: count)
        suppressed = Array(repeating: 0, count: count)
        levels = Array(repeating: .warning, count: count)
    }

    /// Logs `message` unless a warning of this kind was logged less than a
    /// window ago; then only counts it.
    func warn(_ kind: Kind, level: Logger.Level = .warning, now: Int64, _ message: @autoclosure () -> String) {
        let cell = kind.cell
        if let start = opened[cell], now - start < window {
            suppressed[cell] += 1
            return
        }
        report(kind, now: now)
        opened[cell] = now
        levels[cell] = level
        logger.log(level: level, "\(prefix)\(message())")
    }

    /// Closes every window that is over, saying how many it held back.
    func tick(now: Int64) {
        for kind in kinds {
            guard let start = opened[kind.cell], now - start >= window else { continue }
            report(kind, now: now)
            opened[kind.cell] = nil
        }
    }

    /// Says what every open window held back, and closes them (at shutdown).
    func flush(now: Int64) {
        for kind in kinds where opened[kind.cell] != nil {
            report(kind, now: now)
            opened[kind.cell] = nil
        }
    }

    /// Warnings of `kind` held back in the open window so far.
    func heldBack(_ kind: Kind) -> Int { suppressed[kind.cell] }

    private func report(_ kind: Kind, now: Int64) {
        let cell = kind.cell
        guard suppressed[cell] > 0, let start = opened[cell] else { return }
        let seconds = Double((now - start) / 1_000_000) / 1000
        logger.log(level: levels[cell], "\(prefix)\(suppressed[cell]) more like this in the last \(seconds) s: \(kind.summary)")
        suppressed[cell] = 0
    }
}
