import Reactor
import Synchronization

/// A server's totals: the counts an operator reads at shutdown (and, later,
/// from the metrics endpoint). Each reactor keeps its own; the server adds them.
public struct ServerStats: Equatable, Sendable, CustomStringConvertible {
    /// Connections accepted.
    public var accepted = 0
    /// Sessions that wrote the whole reply.
    public var replied = 0
    /// Sessions whose client finished before 16 octets.
    public var shortRequests = 0
    /// Sessions whose connection failed before the reply was written.
    public var resets = 0
    /// Sessions that missed the request deadline.
    public var requestTimeouts = 0
    /// Sessions whose client did not take the reply before the reply deadline.
    public var replyTimeouts = 0
    /// Sessions still open when the shutdown timeout ran out.
    public var abortedAtShutdown = 0
    /// Connections accepted and closed at once because descriptors ran out.
    public var shedForDescriptors = 0
    /// Accept calls that failed for a reason other than running out of descriptors.
    public var acceptFailures = 0
    /// Sessions open now.
    public var active = 0
    /// `upper` sessions that got every octet back.
    public var streamsCompleted = 0
    /// `upper` sessions closed for exceeding the pending-output ceiling.
    public var overflows = 0
    /// `upper` sessions closed for idleness.
    public var idleTimeouts = 0
    /// `upper` sessions closed because pending output could not be stored.
    public var storageFailures = 0
    /// Octets `upper` sessions have echoed.
    public var octetsEchoed = 0
    /// Memory held for pending output now, in bytes.
    public var bufferedBytes = 0
    /// Pending output in spill files now, in octets.
    public var spilledOctets = 0
    /// Spill files open now.
    public var spillFiles = 0

    public init() {}

    /// Sessions that ended one way or another.
    public var ended: Int {
        replied + shortRequests + resets + requestTimeouts + replyTimeouts + abortedAtShutdown
            + streamsCompleted + overflows + idleTimeouts + storageFailures
    }

    public var timedOut: Int { requestTimeouts + replyTimeouts }

    public static func + (lhs: ServerStats, rhs: ServerStats) -> ServerStats {
        var sum = ServerStats()
        sum.accepted = lhs.accepted + rhs.accepted
        sum.replied = lhs.replied + rhs.replied
        sum.shortRequests = lhs.shortRequests + rhs.shortRequests
        sum.resets = lhs.resets + rhs.resets
        sum.requestTimeouts = lhs.requestTimeouts + rhs.requestTimeouts
        sum.replyTimeouts = lhs.replyTimeouts + rhs.replyTimeouts
        sum.abortedAtShutdown = lhs.abortedAtShutdown + rhs.abortedAtShutdown
        sum.shedForDescriptors = lhs.shedForDescriptors + rhs.shedForDescriptors
        sum.acceptFailures = lhs.acceptFailures + rhs.acceptFailures
        sum.active = lhs.active + rhs.active
        sum.streamsCompleted = lhs.streamsCompleted + rhs.streamsCompleted
        sum.overflows = lhs.overflows + rhs.overflows
        sum.idleTimeouts = lhs.idleTimeouts + rhs.idleTimeouts
        sum.storageFailures = lhs.storageFailures + rhs.storageFailures
        sum.octetsEchoed = lhs.octetsEchoed + rhs.octetsEchoed
        sum.bufferedBytes = lhs.bufferedBytes + rhs.bufferedBytes
        sum.spilledOctets = lhs.spilledOctets + rhs.spilledOctets
        sum.spillFiles = lhs.spillFiles + rhs.spillFiles
        return sum
    }

    /// The totals line for a server speaking `serverProtocol`.
    public func summary(for serverProtocol: ServerProtocol) -> String {
        switch serverProtocol {
        case .sixteen:
            return description
        case .upper:
            return "accepted \(accepted), completed \(streamsCompleted), reset \(resets), "
                + "idle timed out \(idleTimeouts), over max-pending \(overflows), storage failures \(storageFailures), "
                + "octets echoed \(octetsEchoed), aborted at shutdown \(abortedAtShutdown), "
                + "shed for descriptors \(shedForDescriptors), accept failures \(acceptFailures)"
        }
    }

    public var description: String {
        "accepted \(accepted), replied \(replied), short \(shortRequests), reset \(resets), "
            + "timed out \(timedOut) (request \(requestTimeouts), reply \(replyTimeouts)), "
            + "aborted at shutdown \(abortedAtShutdown), shed for descriptors \(shedForDescriptors), "
            + "accept failures \(acceptFailures)"
    }
}

/// One reactor's counters. Only the reactor's own thread writes them (a
/// relaxed load and store: no lock, no read-modify-write); any thread may
/// read a snapshot at any time.
final class ReactorCounters: Sendable {
    let accepted = Atomic<Int>(0)
    let replied = Atomic<Int>(0)
    let shortRequests = Atomic<Int>(0)
    let resets = Atomic<Int>(0)
    let requestTimeouts = Atomic<Int>(0)
    let replyTimeouts = Atomic<Int>(0)
    let abortedAtShutdown = Atomic<Int>(0)
    let shedForDescriptors = Atomic<Int>(0)
    let acceptFailures = Atomic<Int>(0)
    let active = Atomic<Int>(0)
    let streamsCompleted = Atomic<Int>(0)
    let overflows = Atomic<Int>(0)
    let idleTimeouts = Atomic<Int>(0)
    let storageFailures = Atomic<Int>(0)
    let octetsEchoed = Atomic<Int>(0)
    let bufferedBytes = Atomic<Int>(0)
    let spilledOctets = Atomic<Int>(0)
    let spillFiles = Atomic<Int>(0)

    /// Sets a gauge this thread owns.
    @inline(__always)
    func set(_ gauge: borrowing Atomic<Int>, _ value: Int) {
        gauge.store(value, ordering: .relaxed)
    }

    /// Adds `delta` to a counter this thread owns.
    @inline(__always)
    func add(_ counter: borrowing Atomic<Int>, _ delta: Int = 1) {
        counter.addFromOwner(delta)
    }

    func snapshot() -> ServerStats {
        var stats = ServerStats()
        stats.accepted = accepted.load(ordering: .relaxed)
        stats.replied = replied.load(ordering: .relaxed)
        stats.shortRequests = shortRequests.load(ordering: .relaxed)
        stats.resets = resets.load(ordering: .relaxed)
        stats.requestTimeouts = requestTimeouts.load(ordering: .relaxed)
        stats.replyTimeouts = replyTimeouts.load(ordering: .relaxed)
        stats.abortedAtShutdown = abortedAtShutdown.load(ordering: .relaxed)
        stats.shedForDescriptors = shedForDescriptors.load(ordering: .relaxed)
        stats.acceptFailures = acceptFailures.load(ordering: .relaxed)
        stats.active = active.load(ordering: .relaxed)
        stats.streamsCompleted = streamsCompleted.load(ordering: .relaxed)
        stats.overflows = overflows.load(ordering: .relaxed)
        stats.idleTimeouts = idleTimeouts.load(ordering: .relaxed)
        stats.storageFailures = storageFailures.load(ordering: .relaxed)
        stats.octetsEchoed = octetsEchoed.load(ordering: .relaxed)
        stats.bufferedBytes = bufferedBytes.load(ordering: .relaxed)
        stats.spilledOctets = spilledOctets.load(ordering: .relaxed)
        stats.spillFiles = spillFiles.load(ordering: .relaxed)
        return stats
    }
}
