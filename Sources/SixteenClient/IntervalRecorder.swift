import Histogram
import SixteenProtocol
import Synchronization

/// The settings of every latency histogram the load generator keeps, in
/// nanoseconds: 1 µs to 1 hour at 3 significant digits. A run's totals, its
/// intervals and the logs they go to all share them, so they add exactly.
enum LatencyHistogram {
    static func make() -> Histogram<UInt64> {
        Histogram(lowestDiscernibleValue: 1_000, highestTrackableValue: 3_600_000_000_000, numberOfSignificantValueDigits: .three)
    }
}

/// One interval's figures from one worker.
struct IntervalSlot {
    var corrected = LatencyHistogram.make()
    var uncorrected = LatencyHistogram.make()
    /// Measured sessions that ended in the interval (latencies past an hour included).
    var sessions = 0
    /// Failed sessions that ended in the interval (warm-up included).
    var errors = 0
}

/// A worker's interval histograms, handed to the collector without a lock.
///
/// Interval k (from the run's start, `--interval` long) lives in slot
/// k % depth. The worker records into the slot of its current interval and
/// moves on when a session ends in a later one or its boundary timer fires;
/// moving on publishes the intervals before as complete. The collector adds
/// complete intervals up, empties their slots and publishes them as taken;
/// only then may the worker reuse a slot. Recording is a few additions into
/// memory allocated up front: no allocation and no lock per session. If the
/// collector ever fell `depth` intervals behind, the worker would stay in
/// its last free interval (its later sessions counted there) rather than
/// wait or overwrite: totals stay exact, only that attribution would shift.
final class IntervalRing: @unchecked Sendable {
    // @unchecked: `slots` is shared by two threads, but a slot belongs to
    // one of them at a time, handed over by the release/acquire pairs on
    // `completedThrough` (worker → collector) and `collectedThrough` (back).
    static let depth = 4
    private let slots: UnsafeMutablePointer<IntervalSlot>
    private let intervalNanos: Int64
    /// The run's start (monotonic), set by the worker before it records.
    private var anchor: Int64 = 0
    /// The interval the worker records into (the worker's alone).
    private var current = 0
    /// The last interval the worker will not touch again; `.max` once it has finished.
    let completedThrough = Atomic<Int>(-1)
    /// The interval the worker finished in (read once `completedThrough` is `.max`).
    private let lastInterval = Atomic<Int>(0)
    /// The last interval the collector has taken: its slot is the worker's again.
    let collectedThrough = Atomic<Int>(-1)

    init(interval: Duration) {
        intervalNanos = max(1, interval.nanoseconds)
        slots = .allocate(capacity: Self.depth)
        // Each slot its own arrays (initialize(repeating:) would share one
        // copy-on-write buffer, and the worker's first record would copy it).
        for index in 0..<Self.depth { (slots + index).initialize(to: IntervalSlot()) }
    }

    deinit {
        slots.deinitialize(count: Self.depth)
        slots.deallocate()
    }

    // MARK: The worker's side

    func begin(at start: Instant) { anchor = start.nanoseconds }

    /// The slot for something that happened at `time`.
    @inline(__always)
    func slot(at time: Instant) -> UnsafeMutablePointer<IntervalSlot> {
        let index = time.nanoseconds > anchor ? Int((time.nanoseconds - anchor) / intervalNanos) : 0
        if index > current { advance(to: index) }
        return slots + current % Self.depth
    }

    /// The boundary timer: the time is `time`, whether or not a session ended.
    func advance(at time: Instant) { _ = slot(at: time) }

    /// Seconds from `time` to the next boundary, a little past it.
    func secondsToNextBoundary(from time: Instant) -> Double {
        let elapsed = max(0, time.nanoseconds - anchor)
        return Double(intervalNanos - elapsed % intervalNanos) / 1e9 + 0.001
    }

    var intervalSeconds: Double { Double(intervalNanos) / 1e9 }

    private func advance(to index: Int) {
        let target = min(index, collectedThrough.load(ordering: .acquiring) + Self.depth)
        guard target > current else { return }
        current = target
        completedThrough.store(target - 1, ordering: .releasing)
    }

    /// The worker is done: every interval is complete.
    func finish() {
        lastInterval.store(current, ordering: .relaxed)
        completedThrough.store(.max, ordering: .releasing)
    }

    // MARK: The collector's side

    /// Whether interval `index` is complete, so `take` may read it.
    func isComplete(_ index: Int) -> Bool { completedThrough.load(ordering: .acquiring) >= index }

    /// Adds interval `index` (complete, and the next not yet taken) into
    /// `total`, empties its slot and hands it back to the worker.
    func take(_ index: Int, into total: inout IntervalSlot) {
        let finished = completedThrough.load(ordering: .acquiring) == .max
        if !finished || index <= lastInterval.load(ordering: .relaxed) {
            let slot = slots + index % Self.depth
            total.corrected.add(slot.pointee.corrected)
            total.uncorrected.add(slot.pointee.uncorrected)
            total.sessions += slot.pointee.sessions
            total.errors += slot.pointee.errors
            slot.pointee.corrected.reset()
            slot.pointee.uncorrected.reset()
            slot.pointee.sessions = 0
            slot.pointee.errors = 0
        }
        collectedThrough.store(index, ordering: .releasing)
    }
}

/// One interval of the run, all workers together: an entry of `--json`'s `series`.
public struct IntervalFigures: Equatable, Sendable {
    /// Seconds from the run's start to the interval's, and the interval's length (the last may be shorter).
    public let startSeconds: Double
    public let seconds: Double
    public let sessions: Int
    public let errors: Int
    /// Latency from the intended start, in microseconds (0 when no session was measured).
    public let p50: Double
    public let p99: Double

    var json: String {
        "{\"start_seconds\": \(startSeconds), \"seconds\": \(seconds), \"sessions\": \(sessions), \"errors\": \(errors), \"p50_us\": \(p50), \"p99_us\": \(p99)}"
    }
}

/// Gathers the workers' intervals on the thread that keeps time (never a
/// worker's): merges each complete interval, keeps its figures for the
/// series, and writes it to the `.hlog` log, both tags, if there is one.
/// Intervals that end inside the warm-up hold no measured session and are
/// not logged; the one the warm-up ends in is logged from the warm-up's end,
/// so a log covers exactly the measured window.
final class IntervalCollector {
    private let rings: [IntervalRing]
    private let start: Instant
    private let intervalNanos: Int64
    private let measureFrom: Instant
    private let log: IntervalLogWriter?
    /// Nanoseconds from BaseTime (the start on the wall clock, to the
    /// nearest millisecond, so the first interval is logged at 0.000) to `start`.
    private let baseOffset: Int64
    private var total = IntervalSlot()
    private var next = 0
    private(set) var series: [IntervalFigures] = []

    init(rings: [IntervalRing], start: Instant, wallStart: WallTime, interval: Duration, warmup: Duration,
         log: IntervalLogWriter?, comment: String) {
        self.rings = rings
        self.start = start
        intervalNanos = max(1, interval.nanoseconds)
        measureFrom = start + warmup
        self.log = log
        let base = WallTime(nanoseconds: wallStart.nanoseconds + 500_000).milliseconds * 1_000_000
        baseOffset = wallStart.nanoseconds - base
        log?.writeHeader(comment: comment, start: WallTime(nanoseconds: base))
    }

    /// Takes every interval that is over by `now` and complete in every worker.
    func collectReady(now: Instant) {
        let over = Int(max(0, now.nanoseconds - start.nanoseconds) / intervalNanos)
        while next < over && rings.allSatisfy({ $0.isComplete(next) }) {
            collect(until: start.nanoseconds + Int64(next + 1) * intervalNanos)
        }
    }

    /// The run is over at `end` and every worker has finished: takes the rest.
    func finish(end: Instant) {
        let last = Int(max(0, end.nanoseconds - start.nanoseconds - 1) / intervalNanos)
        while next <= last {
            collect(until: min(start.nanoseconds + Int64(next + 1) * intervalNanos, end.nanoseconds))
        }
    }

    /// Interval `next`, ending at `until` (monotonic nanoseconds).
    private func collect(until end: Int64) {
        let from = start.nanoseconds + Int64(next) * intervalNanos
        for ring in rings { ring.take(next, into: &total) }
        let figures = LatencyPercentiles.values(at: [50, 99], in: total.corrected)
        series.append(IntervalFigures(
            startSeconds: Double(from - start.nanoseconds) / 1e9, seconds: Double(end - from) / 1e9,
            sessions: total.sessions, errors: total.errors, p50: Double(figures[0]) / 1000, p99: Double(figures[1]) / 1000))
        if let log, end > measureFrom.nanoseconds {
            let logFrom = max(from, measureFrom.nanoseconds) - start.nanoseconds + baseOffset
            let logTo = end - start.nanoseconds + baseOffset
            log.writeInterval(tag: IntervalLogFormat.correctedTag, startNanos: logFrom, endNanos: logTo, histogram: total.corrected)
            log.writeInterval(tag: IntervalLogFormat.uncorrectedTag, startNanos: logFrom, endNanos: logTo, histogram: total.uncorrected)
        }
        total.corrected.reset()
        total.uncorrected.reset()
        total.sessions = 0
        total.errors = 0
        next += 1
    }
}
