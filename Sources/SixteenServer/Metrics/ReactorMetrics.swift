import SixteenProtocol
import Synchronization

/// The counts every reactor keeps, whatever its protocol. Each case is one
/// cell per reactor; its series is declared beside it, once.
public enum ReactorCount: Int, CountSet {
    case accepted
    case active
    case octetsReceived
    case octetsSent
    case acceptShed
    case acceptErrors
    case accepting
    case acceptPauses
    case acceptPausedNanoseconds
    case rejectedPerAddress
    case rejectedProxyHeader

    public var declaration: SeriesDeclaration {
        switch self {
        case .accepted: .counter("sixteen_connections_accepted_total", "Client connections accepted.")
        case .active: .gauge("sixteen_connections_active", "Client connections open now.")
        case .octetsReceived: .counter("sixteen_octets_received_total", "Octets read from clients.")
        case .octetsSent: .counter("sixteen_octets_sent_total", "Octets written to clients.")
        case .acceptShed: .counter("sixteen_accept_shed_total", "Connections accepted and closed at once because the process ran out of descriptors.")
        case .acceptErrors: .counter("sixteen_accept_errors_total", "accept() calls that failed for another reason than running out of descriptors.")
        case .accepting: .gauge("sixteen_accepting", "1 while every reactor accepts new connections; 0 while draining or at --max-connections.", aggregation: .minimum)
        case .acceptPauses: .counter("sixteen_accept_pauses_total", "Times accepting paused at --max-connections (the reactor that paused most).", aggregation: .maximum)
        case .rejectedPerAddress: SeriesDeclaration(ReactorFamilies.rejected, labels: [MetricLabel("reason", "per_ip")])
        case .rejectedProxyHeader: SeriesDeclaration(ReactorFamilies.rejected, labels: [MetricLabel("reason", "proxy_header")])
        case .acceptPausedNanoseconds: .counter("sixteen_accept_paused_seconds_total", "Time accepting was paused at --max-connections (the reactor paused longest).", aggregation: .maximum, scale: 1e-9)
        }
    }
}

/// Families and histograms every reactor records, declared once.
public enum ReactorFamilies {
    public static let sessions = MetricFamily("sixteen_sessions_total", .counter, "Sessions ended, by protocol and outcome.")
    /// Connections closed before any session began, by reason.
    public static let rejected = MetricFamily(
        "sixteen_connections_rejected_total", .counter,
        "Connections closed before any session began: over --max-connections-per-ip (per_ip), or without a valid PROXY header (proxy_header).")

    public static let sessionDuration = HistogramDeclaration(
        "sixteen_session_duration_seconds", "Sessions from accept to close.",
        boundsInSeconds: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60])

    public static let loopIteration = HistogramDeclaration(
        "sixteen_loop_iteration_seconds", "Time one iteration of a reactor's event loop spent in callbacks: a stalled loop shows here.",
        boundsInSeconds: [0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])
}

/// One reactor's metrics: the common counts, sessions by outcome, its
/// protocol's own counts, and its histograms. Written by the reactor's thread
/// only; read by scrapes, the totals and the health check from any thread.
/// It describes itself (protocol, outcomes, own declarations), so whoever
/// reads it needs no knowledge of the protocol.
public final class ReactorMetrics: Sendable {
    public let index: Int
    public let protocolName: String
    /// The outcomes this protocol can end a session with (`aborted` included).
    public let outcomes: [SessionOutcome]
    public let ownDeclarations: [SeriesDeclaration]
    let common = Counts<ReactorCount>()
    let sessions = CounterCells(count: SessionOutcome.allCases.count)
    let own: CounterCells
    let sessionDuration = HistogramCells(ReactorFamilies.sessionDuration)
    let loopIteration = HistogramCells(ReactorFamilies.loopIteration)
    /// Monotonic nanoseconds when the loop last finished an iteration.
    let lastIterationEnd: Atomic<Int64>
    /// Set once the reactor has drained and its loop returned.
    let stopped = Atomic<Bool>(false)

    init<Own: CountSet>(index: Int, protocolName: String, outcomes: [SessionOutcome], own: Own.Type, now: Int64) {
        self.index = index
        self.protocolName = protocolName
        self.outcomes = outcomes + [.aborted]
        ownDeclarations = Own.allCases.map(\.declaration)
        self.own = CounterCells(count: Own.allCases.count)
        lastIterationEnd = Atomic(now)
    }

    deinit {
        common.deallocate()
        sessions.deallocate()
        own.deallocate()
        sessionDuration.deallocate()
        loopIteration.deallocate()
    }

    /// Sessions that ended with `outcome` so far.
    public func sessions(_ outcome: SessionOutcome) -> Int {
        sessions.load(Int(outcome.rawValue))
    }

    /// Whether the loop has gone `threshold` without finishing an iteration
    /// (every reactor's heartbeat timer makes it iterate at least each second).
    public func stalledFor(now: Int64) -> Int64? {
        if stopped.load(ordering: .relaxed) { return nil }
        let idle = now - lastIterationEnd.load(ordering: .relaxed)
        return idle > 0 ? idle : 0
    }
}
