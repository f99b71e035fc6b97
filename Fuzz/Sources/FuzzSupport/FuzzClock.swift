import SixteenProtocol

// Time for the state machines' targets. The glue passes `now` with every
// event from a monotonic clock, so the targets' clock only moves forward,
// by steps from a tenth of a millisecond (deadlines are kept in whole
// milliseconds) to an hour; it may start near the top of `Instant`'s range,
// where deadlines saturate instead of wrapping.

/// A monotonic clock driven by the input.
public struct FuzzClock {
    public private(set) var now: Instant

    /// Starts at one of: zero, a second, a typical uptime, or ten seconds
    /// below the largest instant.
    public init(_ input: inout FuzzInput) {
        switch input.choice(4) {
        case 0: now = .zero
        case 1: now = Instant(nanoseconds: 1_000_000_000)
        case 2: now = Instant(nanoseconds: 123_456_789_012)
        default: now = Instant(nanoseconds: .max - 10_000_000_000)
        }
    }

    /// Moves forward by a step the next byte chooses (saturating).
    public mutating func advance(_ input: inout FuzzInput) {
        let step = Int(input.byte())
        let nanoseconds: Int64 =
            switch step {
            case 0..<64: Int64(step) * 100_000
            case 64..<128: Int64(step - 64) * 1_000_000
            case 128..<192: Int64(step - 128) * 100_000_000
            case 192..<255: Int64(step - 192) * 1_000_000_000
            default: 3_600_000_000_000
            }
        now = now + .nanoseconds(nanoseconds)
    }
}

/// A timeout from the next three bytes: zero, or up to 65 535 nanosecond
/// multiples of 997 (odd, so that milliseconds round), microseconds or
/// milliseconds.
public func fuzzDuration(_ input: inout FuzzInput) -> Duration {
    let scale = input.choice(4)
    let value = Int64(input.uint16())
    switch scale {
    case 0: return .zero
    case 1: return .nanoseconds(value * 997)
    case 2: return .microseconds(value)
    default: return .milliseconds(value)
    }
}
