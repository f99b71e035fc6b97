#if canImport(Glibc)
import Glibc
#endif
import Logging
import Reactor
import SixteenProtocol

/// What the reactor does next for a connection, as a protocol's handler
/// answers an event. The reactor performs every step itself; handlers make
/// no socket calls.
enum ConnectionStep: Equatable {
    /// Nothing new: keep watching the socket as before.
    case wait
    /// Set the connection's deadline, then wait.
    case setDeadline(Instant)
    /// Write what `output` offers, once, and report it with `wrote` (or
    /// `sendBlocked` if the socket is full, then `writable` when it drains).
    /// Sets the deadline first, if one is given.
    case send(deadline: Instant?)
    /// Shut down our sending side (the client reads EOF after everything
    /// sent), keep reading and passing input to `received`, and set the deadline.
    case shutDownWrite(deadline: Instant)
    /// Close the connection: the session ended with `outcome`.
    case close(SessionOutcome)
    /// Close the connection before any session began (a refused PROXY
    /// header, a client over its address's quota): counted by whoever
    /// refused it, not as a session.
    case reject
}

/// Where the next octets a connection sends live.
enum OutputRegion {
    /// Nothing is pending.
    case empty
    /// Octets in memory, valid until the next event of this connection.
    case memory(UnsafeRawBufferPointer)
    /// `count` octets of file `fd` from `offset` (sent with `sendfile`).
    case file(fd: Int32, offset: Int64, count: Int)
}

/// The connection an event concerns, for what a handler may say about it
/// (its peer, in a debug line or a rate-limited warning).
struct ConnectionInfo {
    let fd: Int32
    /// The client as a PROXY header named it, when it came through a balancer.
    var proxiedPeer: SocketAddress? = nil

    /// The peer as the book prints it: `('127.0.0.1', 55402)`: the client a
    /// PROXY header named, or the socket's peer. Costs a `getpeername` and a
    /// String: for debug lines and warnings only.
    var peer: String { (proxiedPeer ?? SocketAddress.peer(of: fd))?.pythonDescription ?? "(unknown peer)" }
    var local: String { SocketAddress.local(of: fd)?.pythonDescription ?? "?" }
}

/// What a reactor gives the handler it creates.
struct HandlerContext<Count: CountSet> {
    /// This reactor's number, and how many serve the same protocol (budgets
    /// are split among them).
    let reactorIndex: Int
    let reactorCount: Int
    let logger: Logger
    /// Whether `logger` logs debug lines; checked before building one.
    let debugEnabled: Bool
    /// The handler's own counts, in this reactor's metrics.
    let counts: Counts<Count>
    /// The reactor's counts (for what a handler refuses before a session).
    let reactorCounts: Counts<ReactorCount>
    /// `--max-connections-per-ip`, for a handler that learns the client's
    /// address itself (from a PROXY header); nil otherwise.
    let addressLimit: AddressLimit?

    /// The same context, for a handler inside another (`ProxiedHandler`).
    func forInner<Inner: CountSet>(_ type: Inner.Type) -> HandlerContext<Inner> {
        HandlerContext<Inner>(
            reactorIndex: reactorIndex, reactorCount: reactorCount, logger: logger, debugEnabled: debugEnabled,
            counts: Counts<Inner>(cells: counts.cells), reactorCounts: reactorCounts, addressLimit: addressLimit)
    }
}

/// A protocol as one reactor serves it: an instance per reactor, owning the
/// protocol's resources (the `upper` chunk pool and spill files, the
/// `sixteen` reply), its configuration and its own counts. It turns each
/// event of a connection into the next `ConnectionStep`, through the
/// protocol's pure session machine; the reactor owns every socket call,
/// interest change, deadline and close.
///
/// Every event runs on the reactor's thread. `Session` is kept inline in the
/// connection's slot: events must not allocate.
protocol ProtocolHandler: AnyObject, SendableMetatype {
    associatedtype Session
    associatedtype Configuration: Sendable
    associatedtype Count: CountSet = NoCounts
    /// What the handlers of every reactor of one service share (the spill
    /// budget), made once by `prepare`.
    associatedtype Shared: Sendable = Void

    /// The `protocol` label of this protocol's series.
    static var name: String { get }
    /// The outcomes its sessions can end with (the reactor adds `aborted`).
    static var outcomes: [SessionOutcome] { get }

    /// Checks, before any reactor starts, what can be checked once (a spill
    /// directory is writable), and makes what the reactors share; throws
    /// the reason it cannot serve.
    static func prepare(_ configuration: Configuration, plan: DescriptorPlan) throws(ServerError) -> Shared

    /// Series of the service as a whole, from what its reactors share.
    static func serviceMetrics(_ shared: Shared) -> [(SeriesDeclaration, Double)]

    /// The configuration in a few words, for the start-up log line.
    static func describe(_ configuration: Configuration) -> String

    init(_ configuration: Configuration, shared: Shared, context: HandlerContext<Count>)

    /// A session for a new connection, accepted at `now`, and what to do first.
    func opened(_ session: inout Session, now: Instant) -> ConnectionStep
    /// The most octets the next read may take (the reactor's buffer bounds it too).
    func readLimit(_ session: inout Session) -> Int
    /// `octets` were read. The buffer is the reactor's and is reused after
    /// this event: the handler may change the octets in place, and may offer
    /// them from `output` until it returns, but must copy what it keeps.
    func received(_ session: inout Session, _ octets: UnsafeMutableRawBufferPointer, now: Instant) -> ConnectionStep
    /// The client finished sending (EOF).
    func inputEnded(_ session: inout Session, now: Instant) -> ConnectionStep
    /// What to write next.
    func output(_ session: inout Session) -> OutputRegion
    /// A write took `count` octets of what `output` offered (0 only when a
    /// file region turned out shorter than promised).
    func wrote(_ session: inout Session, _ count: Int, now: Instant) -> ConnectionStep
    /// The socket is full: whatever `output` offered from the read buffer
    /// must be kept now. The reactor waits for writability.
    func sendBlocked(_ session: inout Session, now: Instant) -> ConnectionStep
    /// The socket can take output again.
    func writable(_ session: inout Session, now: Instant) -> ConnectionStep
    /// The connection's deadline came (or went by).
    func deadlinePassed(_ session: inout Session, now: Instant) -> ConnectionStep
    /// A read, write or shutdown failed (reset, or any connection error).
    func failed(_ session: inout Session) -> ConnectionStep
    /// The connection is closing with `outcome` (nil: rejected before its
    /// session began): free what the session holds,
    /// and say what is worth saying.
    func closing(_ session: inout Session, _ outcome: SessionOutcome?, _ connection: ConnectionInfo, now: Instant)
    /// Once a second on the reactor's heartbeat (rate-limited warnings).
    func heartbeat(now: Int64)
    /// The reactor is stopping: say whatever is still held back.
    func stopping(now: Int64)
    /// A session for a slot not in use.
    var blankSession: Session { get }
}

extension ProtocolHandler where Shared == Void {
    static func prepare(_ configuration: Configuration, plan: DescriptorPlan) throws(ServerError) {}
}

extension ProtocolHandler {
    static func serviceMetrics(_ shared: Shared) -> [(SeriesDeclaration, Double)] { [] }
    static func describe(_ configuration: Configuration) -> String { "" }
    func sendBlocked(_ session: inout Session, now: Instant) -> ConnectionStep { .wait }
    @inline(__always)
    func readLimit(_ session: inout Session) -> Int { .max }
    func heartbeat(now: Int64) {}
    func stopping(now: Int64) {}
}

/// `10s`, `2.5s`, `250ms`: a duration as the start-up log shows it.
func shortDescription(of duration: Duration) -> String {
    let nanoseconds = duration.nanoseconds
    if nanoseconds % 1_000_000_000 == 0 { return "\(nanoseconds / 1_000_000_000)s" }
    if nanoseconds < 1_000_000_000, nanoseconds % 1_000_000 == 0 { return "\(nanoseconds / 1_000_000)ms" }
    return "\(Double(nanoseconds) / 1e9)s"
}

/// `2GiB`, `256KiB`, `1000B`: a size as the start-up log shows it.
func shortDescription(ofSize bytes: Int) -> String {
    for (unit, shift) in [("GiB", 30), ("MiB", 20), ("KiB", 10)] where bytes >= 1 << shift && bytes % (1 << shift) == 0 {
        return "\(bytes >> shift)\(unit)"
    }
    return "\(bytes)B"
}
