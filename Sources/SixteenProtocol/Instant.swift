/// A point on a monotonic clock, in nanoseconds from an arbitrary origin.
///
/// State machines never read a clock: the glue passes `now` with every event,
/// so tests drive time by hand and deadlines are plain comparisons.
public struct Instant: Comparable, Hashable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64

    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }

    /// Computed and inlinable, not a stored `static let`: other modules read
    /// a stored one through its lazy initializer's once-check, on the hot path.
    @inlinable public static var zero: Instant { Instant(nanoseconds: 0) }

    public static func < (lhs: Instant, rhs: Instant) -> Bool { lhs.nanoseconds < rhs.nanoseconds }

    /// Saturates at the ends of the range: a deadline never wraps into the past.
    public static func + (lhs: Instant, rhs: Duration) -> Instant {
        let (sum, overflow) = lhs.nanoseconds.addingReportingOverflow(rhs.nanoseconds)
        if overflow { return Instant(nanoseconds: rhs.nanoseconds > 0 ? .max : .min) }
        return Instant(nanoseconds: sum)
    }

    /// `self` plus `nanoseconds`, saturating like `+`: the machines' hot
    /// path, which keeps its timeouts as integers (a `Duration` is 128-bit
    /// attoseconds, and converting one costs a 128-bit division per event).
    @inline(__always)
    public func advanced(byNanoseconds nanoseconds: Int64) -> Instant {
        let (sum, overflow) = self.nanoseconds.addingReportingOverflow(nanoseconds)
        if overflow { return Instant(nanoseconds: nanoseconds > 0 ? .max : .min) }
        return Instant(nanoseconds: sum)
    }

    /// How long from `self` until `later`, in seconds (negative if `later` has passed).
    public func seconds(until later: Instant) -> Double {
        Double(later.nanoseconds &- nanoseconds) / 1e9
    }

    public var description: String { "\(Double(nanoseconds) / 1e9)s" }
}

extension Duration {
    /// Whole nanoseconds, saturating far beyond any timeout we configure.
    public var nanoseconds: Int64 {
        let (seconds, attoseconds) = components
        let (whole, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? .min : .max }
        let (total, carry) = whole.addingReportingOverflow(attoseconds / 1_000_000_000)
        if carry { return attoseconds < 0 ? .min : .max }
        return total
    }
}
