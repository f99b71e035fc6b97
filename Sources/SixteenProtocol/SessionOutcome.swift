/// How a session ended, in the words dashboards and alerts use: the `outcome`
/// label of `sixteen_sessions_total`. Each protocol maps its own, richer
/// outcome onto one of these (see `sessionOutcome` on each), and says which
/// of them it can produce; the reactor adds `aborted` at shutdown.
public enum SessionOutcome: UInt8, CaseIterable, Sendable, CustomStringConvertible {
    /// The session did what it was for: the reply was written (`sixteen`), or
    /// every octet came back (`upper`), or the response was sent (admin).
    case replied
    /// The client finished before its request was complete.
    case short
    /// The connection failed (reset, or any other socket error).
    case reset
    /// The request did not arrive in time.
    case requestTimeout
    /// The client did not take the reply in time.
    case replyTimeout
    /// Nothing moved in either direction for too long.
    case idleTimeout
    /// The client left more output unread than one session may hold.
    case overflow
    /// Output could not be stored (no memory budget, spill file failed).
    case storage
    /// Still open when the shutdown timeout ran out, or at an immediate stop.
    case aborted
    /// A balancer's own connection (PROXY v2 LOCAL): its health check, kept
    /// apart so that checks do not count as traffic.
    case healthCheck

    /// The label value, exactly as `/metrics` writes it.
    public var label: String {
        switch self {
        case .replied: "replied"
        case .short: "short"
        case .reset: "reset"
        case .requestTimeout: "request_timeout"
        case .replyTimeout: "reply_timeout"
        case .idleTimeout: "idle_timeout"
        case .overflow: "overflow"
        case .storage: "storage"
        case .aborted: "aborted"
        case .healthCheck: "health_check"
        }
    }

    public var description: String { label }
}

extension SixteenOutcome {
    /// The outcome label this ending counts under.
    public var sessionOutcome: SessionOutcome {
        switch self {
        case .replied: .replied
        case .shortRequest: .short
        case .reset: .reset
        case .requestTimedOut: .requestTimeout
        case .replyTimedOut: .replyTimeout
        }
    }

    /// Every label a `sixteen` session can end under (besides `aborted`).
    public static let sessionOutcomes: [SessionOutcome] = [.replied, .short, .reset, .requestTimeout, .replyTimeout]
}

extension UpperOutcome {
    /// The outcome label this ending counts under: a completed stream counts
    /// as `replied` (every octet was answered).
    public var sessionOutcome: SessionOutcome {
        switch self {
        case .completed: .replied
        case .overflowed: .overflow
        case .idleTimedOut: .idleTimeout
        case .reset: .reset
        case .storageFailed: .storage
        }
    }

    /// Every label an `upper` session can end under (besides `aborted`).
    public static let sessionOutcomes: [SessionOutcome] = [.replied, .reset, .idleTimeout, .overflow, .storage]
}
