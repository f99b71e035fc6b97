#if canImport(Glibc)
import Glibc
#endif
import Logging
import Reactor
import SixteenProtocol

// `--proxy-protocol`: any protocol, behind a balancer that announces each
// client with a PROXY header (HAProxy's `send-proxy` / `send-proxy-v2`).
// Rules first:
//
//  1. The header comes first on every connection, and is required. Until it
//     is complete nothing reaches the protocol; the protocol's session is
//     opened at accept all the same, so its own first deadline (the request
//     or idle timeout) bounds the wait for the header too.
//  2. A header the parser refuses, or none (the client ends, fails or runs
//     out of time first): the connection closes with no session, counted
//     as `sixteen_connections_rejected_total{reason="proxy_header"}` and,
//     but for a reset, warned about, rate-limited.
//  3. A PROXY header names the client: the address logs, warnings and
//     `--max-connections-per-ip` use from then on (a client over its quota
//     is closed then, counted as `per_ip`).
//  4. A v2 LOCAL header is the balancer's own connection (its health
//     check): served as any other, and ended as `health_check`, whatever
//     the protocol's outcome, so that checks do not count as traffic.
//  5. An UNKNOWN header (the balancer does not know the client): served as
//     the connection's own, outside `--max-connections-per-ip` (the socket's
//     peer is the balancer, not a client).
//  6. Octets after the header in the same read belong to the protocol, and
//     reach it in that event.

/// A connection behind a balancer: the header's progress, who the client is,
/// and the protocol's own session.
struct ProxiedSession<Inner> {
    enum Stage: UInt8 {
        case awaitingHeader
        case serving
        case healthCheck
    }

    var stage = Stage.awaitingHeader
    var header = ProxyHeaderParser()
    /// The client the header named (rule 3); nil for LOCAL and UNKNOWN.
    var client: ProxyAddress?
    /// Its `--max-connections-per-ip` key, while it counts there (0: none).
    var addressKey: UInt64 = 0
    var inner: Inner
}

/// The kinds of warning a proxied service rate-limits.
enum ProxyWarning: Int, WarningKind {
    case badHeader
    case rejectedPerAddress

    var summary: String {
        switch self {
        case .badHeader: "connections closed for want of a valid PROXY header"
        case .rejectedPerAddress: "connections rejected by --max-connections-per-ip"
        }
    }
}

/// `Inner`'s protocol, each connection preceded by a PROXY header: the
/// header is parsed by `ProxyHeaderParser`, then every event goes to `Inner`.
final class ProxiedHandler<Inner: ProtocolHandler>: ProtocolHandler {
    typealias Session = ProxiedSession<Inner.Session>
    typealias Configuration = Inner.Configuration
    typealias Count = Inner.Count
    typealias Shared = Inner.Shared

    static var name: String { Inner.name }
    static var outcomes: [SessionOutcome] { Inner.outcomes + [.healthCheck] }

    static func prepare(_ configuration: Configuration, plan: DescriptorPlan) throws(ServerError) -> Shared {
        try Inner.prepare(configuration, plan: plan)
    }

    static func serviceMetrics(_ shared: Shared) -> [(SeriesDeclaration, Double)] { Inner.serviceMetrics(shared) }

    static func describe(_ configuration: Configuration) -> String {
        [Inner.describe(configuration), "PROXY protocol header required"].filter { !$0.isEmpty }.joined(separator: ", ")
    }

    private let inner: Inner
    private let reactorCounts: Counts<ReactorCount>
    private let addressLimit: AddressLimit?
    private let logger: Logger
    private let debugEnabled: Bool
    private let warnings: RateLimitedWarnings<ProxyWarning>

    init(_ configuration: Configuration, shared: Shared, context: HandlerContext<Count>) {
        inner = Inner(configuration, shared: shared, context: context)
        reactorCounts = context.reactorCounts
        addressLimit = context.addressLimit
        logger = context.logger
        debugEnabled = context.debugEnabled
        warnings = RateLimitedWarnings(logger: context.logger)
    }

    var blankSession: Session { ProxiedSession(inner: inner.blankSession) }

    func opened(_ session: inout Session, now: Instant) -> ConnectionStep {
        session.stage = .awaitingHeader
        session.header = ProxyHeaderParser()
        session.client = nil
        session.addressKey = 0
        return inner.opened(&session.inner, now: now)
    }

    func readLimit(_ session: inout Session) -> Int { inner.readLimit(&session.inner) }

    func received(_ session: inout Session, _ octets: UnsafeMutableRawBufferPointer, now: Instant) -> ConnectionStep {
        guard session.stage == .awaitingHeader else {
            return ended(inner.received(&session.inner, octets, now: now), session)
        }
        switch session.header.consume(UnsafeRawBufferPointer(octets)) {
        case .incomplete:
            return .wait
        case .rejected(let reason):
            return refuse(reason, now: now)
        case .complete(let header, let consumed):
            if let refusal = begin(&session, header, now: now) { return refusal }
            guard consumed < octets.count else { return .wait }
            let rest = UnsafeMutableRawBufferPointer(rebasing: octets[consumed...])
            return ended(inner.received(&session.inner, rest, now: now), session)
        }
    }

    func inputEnded(_ session: inout Session, now: Instant) -> ConnectionStep {
        guard session.stage == .awaitingHeader else { return ended(inner.inputEnded(&session.inner, now: now), session) }
        return refuse("the client ended before its PROXY header was complete", now: now)
    }

    func output(_ session: inout Session) -> OutputRegion { inner.output(&session.inner) }

    func wrote(_ session: inout Session, _ count: Int, now: Instant) -> ConnectionStep {
        ended(inner.wrote(&session.inner, count, now: now), session)
    }

    func sendBlocked(_ session: inout Session, now: Instant) -> ConnectionStep {
        ended(inner.sendBlocked(&session.inner, now: now), session)
    }

    func writable(_ session: inout Session, now: Instant) -> ConnectionStep {
        ended(inner.writable(&session.inner, now: now), session)
    }

    func deadlinePassed(_ session: inout Session, now: Instant) -> ConnectionStep {
        guard session.stage == .awaitingHeader else { return ended(inner.deadlinePassed(&session.inner, now: now), session) }
        return refuse("no complete PROXY header in time", now: now)
    }

    func failed(_ session: inout Session) -> ConnectionStep {
        guard session.stage == .awaitingHeader else { return ended(inner.failed(&session.inner), session) }
        reactorCounts.add(.rejectedProxyHeader)
        return .reject
    }

    func closing(_ session: inout Session, _ outcome: SessionOutcome?, _ connection: ConnectionInfo, now: Instant) {
        if session.addressKey != 0 {
            addressLimit?.release(session.addressKey)
            session.addressKey = 0
        }
        var connection = connection
        connection.proxiedPeer = session.client.map(SocketAddress.init(proxied:))
        inner.closing(&session.inner, outcome, connection, now: now)
    }

    func heartbeat(now: Int64) {
        inner.heartbeat(now: now)
        warnings.tick(now: now)
    }

    func stopping(now: Int64) {
        inner.stopping(now: now)
        warnings.flush(now: now)
    }

    /// The header is complete: who the client is (rules 3 to 5); a step
    /// when the connection must close instead.
    private func begin(_ session: inout Session, _ header: ProxyHeader, now: Instant) -> ConnectionStep? {
        switch header {
        case .proxied(let source, let destination):
            if let addressLimit {
                let key = addressLimit.key(source)
                guard addressLimit.admit(key) else {
                    reactorCounts.add(.rejectedPerAddress)
                    warnings.warn(.rejectedPerAddress, now: now.nanoseconds,
                                  "Rejected a connection from \(SocketAddress(proxied: source).host): it holds \(addressLimit.cap) already (--max-connections-per-ip)")
                    return .reject
                }
                session.addressKey = key
            }
            session.client = source
            session.stage = .serving
            if debugEnabled {
                logger.debug("PROXY header: client \(SocketAddress(proxied: source).pythonDescription), destination \(SocketAddress(proxied: destination).pythonDescription)")
            }
        case .local:
            session.stage = .healthCheck
            if debugEnabled { logger.debug("PROXY header: LOCAL (the balancer's own connection: a health check)") }
        case .unknown:
            session.stage = .serving
            if debugEnabled { logger.debug("PROXY header: UNKNOWN (served as the connection's own)") }
        }
        return nil
    }

    /// Rule 2: the connection closes with no session.
    private func refuse(_ reason: String, now: Instant) -> ConnectionStep {
        reactorCounts.add(.rejectedProxyHeader)
        warnings.warn(.badHeader, now: now.nanoseconds, "Closed a connection without a valid PROXY header: \(reason) (--proxy-protocol)")
        return .reject
    }

    /// Rule 4: a health check's session ends as `health_check`.
    @inline(__always)
    private func ended(_ step: ConnectionStep, _ session: Session) -> ConnectionStep {
        if case .close = step, session.stage == .healthCheck { return .close(.healthCheck) }
        return step
    }
}

extension SocketAddress {
    /// The address a PROXY header named.
    init(proxied address: ProxyAddress) {
        if address.isIPv6 {
            var v6 = sockaddr_in6()
            v6.sin6_family = sa_family_t(AF_INET6)
            v6.sin6_port = address.port.bigEndian
            var words = (address.high.bigEndian, address.low.bigEndian)
            withUnsafeBytes(of: &words) { source in
                withUnsafeMutableBytes(of: &v6.sin6_addr) { $0.copyMemory(from: source) }
            }
            self = .v6(v6)
        } else {
            var v4 = sockaddr_in()
            v4.sin_family = sa_family_t(AF_INET)
            v4.sin_port = address.port.bigEndian
            v4.sin_addr.s_addr = UInt32(truncatingIfNeeded: address.low).bigEndian
            self = .v4(v4)
        }
    }
}
