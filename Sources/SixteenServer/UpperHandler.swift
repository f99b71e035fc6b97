#if canImport(Glibc)
import Glibc
#endif
import Logging
import Reactor
import SixteenProtocol

/// An `upper` connection's own state: the session, its pending output, and,
/// during one event only, octets offered straight from the read buffer.
struct UpperConnection {
    var session: UpperSession
    var output = OutputQueue()
    /// Uppercased octets still in the reactor's read buffer, offered to the
    /// socket before any copy; valid only within the event that read them.
    var borrowed = UnsafeRawBufferPointer(start: nil, count: 0)
    /// Since when reading has stopped because the spill file could not take
    /// room ahead; `.zero` while reading.
    var stalledSince = Instant.zero
}

/// The `upper` protocol's own counts.
enum UpperCount: Int, CountSet {
    case pendingInMemory
    case pendingInSpill
    case spillFiles
    case bufferMemory
    case storageStalls

    var declaration: SeriesDeclaration {
        switch self {
        case .pendingInMemory: SeriesDeclaration(Self.pendingOutput, labels: [MetricLabel("store", "memory")])
        case .pendingInSpill: SeriesDeclaration(Self.pendingOutput, labels: [MetricLabel("store", "spill")])
        case .spillFiles: .gauge("sixteen_spill_files", "Spill files open now.")
        case .bufferMemory: .gauge("sixteen_output_buffer_bytes", "Memory held in 64 KiB chunks for pending output (within --memory-budget).")
        case .storageStalls: .counter("sixteen_spill_stalls_total", "Times a session stopped reading because its spill file could not take room (file system full, or --max-spill spent), to go on or be closed within --spill-retry.")
        }
    }

    static let pendingOutput = MetricFamily(
        "sixteen_pending_output_bytes", .gauge, "Output clients have not read yet, by where it waits: memory chunks or spill files.")
}

/// What the `upper` protocol warns about, each kind rate-limited on its own.
enum UpperWarning: Int, WarningKind {
    case overMaxPending
    case storageFailed
    case heldOutput

    var summary: String {
        switch self {
        case .overMaxPending: "clients closed past --max-pending"
        case .storageFailed: "sessions closed because output could not be stored"
        case .heldOutput: "clients closed for holding output unread without progress"
        }
    }
}

/// The `upper` protocol on one reactor. Reads are never held back by
/// pending output (the reactor reads until EOF); what the socket does not
/// take at once goes to the connection's output queue (memory, then an
/// unnamed spill file) and leaves it through `send` or `sendfile` as the
/// socket drains. Owns this reactor's chunk pool (its share of the memory
/// budget) and the spill accounting.
final class UpperHandler: ProtocolHandler {
    typealias Session = UpperConnection
    typealias Configuration = UpperConfiguration
    typealias Count = UpperCount
    typealias Shared = SpillStore

    static let name = "upper"
    static var outcomes: [SessionOutcome] { UpperOutcome.sessionOutcomes }

    let configuration: UpperConfiguration
    private let pool: ChunkPool
    private let spill: SpillStore
    private let counts: Counts<UpperCount>
    private let logger: Logger
    private let debugEnabled: Bool
    private let warnings: RateLimitedWarnings<UpperWarning>
    /// This reactor's pending octets, by store, and its open spill files.
    private var pendingInMemory = 0
    private var pendingInSpill = 0
    private var spillFiles = 0
    /// Why the last append failed, for the warning when its session closes.
    private var storageError: StorageFailure?
    /// How often a stalled session asks for room again.
    private static var retryInterval: Duration { .milliseconds(100) }

    /// Finds out now, not at the first slow client, whether spilling works,
    /// and makes the spill store every reactor of the service shares.
    static func prepare(_ configuration: UpperConfiguration, plan: DescriptorPlan) throws(ServerError) -> SpillStore {
        let directory = configuration.output.spillDirectory
        switch UnnamedFile.create(in: directory) {
        case .success(let fd): Socket.close(fd)
        case .failure(let error): throw .unusableSpillDirectory(path: directory, error)
        }
        return SpillStore(
            directory: directory, maxBytes: configuration.output.maxSpill ?? SpillStore.defaultBudget(for: directory),
            maxFiles: max(1, plan.spillFiles))
    }

    static func serviceMetrics(_ spill: SpillStore) -> [(SeriesDeclaration, Double)] {
        [(SpillStore.allocatedSeries, Double(spill.allocatedBytes)), (SpillStore.budgetSeries, Double(spill.maxBytes))]
    }

    static func describe(_ configuration: UpperConfiguration) -> String {
        let output = configuration.output
        return "idle timeout \(shortDescription(of: configuration.limits.idle)) (progress while holding output: \(shortDescription(ofSize: configuration.limits.holdProgress))), "
            + "max pending \(shortDescription(ofSize: configuration.limits.maxPending)), "
            + "memory \(shortDescription(ofSize: output.highWaterMark)) per connection and \(shortDescription(ofSize: output.memoryBudget)) in all, "
            + "spilling to \(output.spillDirectory), at most \(shortDescription(ofSize: output.maxSpill ?? SpillStore.defaultBudget(for: output.spillDirectory)))"
            + (output.maxSpill == nil ? " (half the free space, at most 8GiB)" : "")
    }

    init(_ configuration: UpperConfiguration, shared: SpillStore, context: HandlerContext<UpperCount>) {
        self.configuration = configuration
        pool = ChunkPool(budgetBytes: configuration.output.memoryBudget / max(1, context.reactorCount))
        spill = shared
        counts = context.counts
        logger = context.logger
        debugEnabled = context.debugEnabled
        warnings = RateLimitedWarnings(logger: logger)
    }

    var blankSession: UpperConnection { UpperConnection(session: UpperSession(limits: configuration.limits)) }

    func opened(_ connection: inout UpperConnection, now: Instant) -> ConnectionStep {
        connection = blankSession
        return step(connection.session.accepted(now: now))
    }

    /// No more than fits under `--max-pending` (rule 4): a client that reads
    /// everything is never closed, however small the ceiling.
    func readLimit(_ connection: inout UpperConnection) -> Int {
        connection.stalledSince == .zero ? connection.session.readRoom : 0
    }

    /// Uppercases in place and offers the octets straight from the read
    /// buffer when nothing older is queued; otherwise queues them behind it.
    func received(_ connection: inout UpperConnection, _ octets: UnsafeMutableRawBufferPointer, now: Instant) -> ConnectionStep {
        let action = connection.session.received(octets.count, now: now)
        guard action == .queueAndSend else { return step(action) }
        uppercaseASCII(octets)
        if connection.output.isEmpty {
            connection.borrowed = UnsafeRawBufferPointer(octets)
            return .send(deadline: nil)
        }
        return enqueue(UnsafeRawBufferPointer(octets), &connection, now: now) ?? .send(deadline: nil)
    }

    func inputEnded(_ connection: inout UpperConnection, now: Instant) -> ConnectionStep {
        step(connection.session.inputEnded(now: now))
    }

    func output(_ connection: inout UpperConnection) -> OutputRegion {
        switch connection.output.front {
        case .empty:
            return connection.borrowed.isEmpty ? .empty : .memory(connection.borrowed)
        case let region:
            return region
        }
    }

    func wrote(_ connection: inout UpperConnection, _ count: Int, now: Instant) -> ConnectionStep {
        guard count > 0 else {
            // sendfile found the spill file shorter than what we wrote to it.
            storageError = .system(Errno(EIO))
            return step(connection.session.storageFailed())
        }
        if connection.output.isEmpty {
            connection.borrowed = UnsafeRawBufferPointer(rebasing: connection.borrowed[count...])
        } else {
            let before = connection.output.accounting
            connection.output.consume(count, pool: pool, spill: spill)
            noteOutputChange(from: before, to: connection.output.accounting)
        }
        return step(connection.session.wrote(count, now: now))
    }

    /// The socket is full: octets still borrowed from the read buffer are queued now.
    func sendBlocked(_ connection: inout UpperConnection, now: Instant) -> ConnectionStep {
        guard !connection.borrowed.isEmpty else { return .wait }
        let octets = connection.borrowed
        connection.borrowed = UnsafeRawBufferPointer(start: nil, count: 0)
        return enqueue(octets, &connection, now: now) ?? .wait
    }

    func writable(_ connection: inout UpperConnection, now: Instant) -> ConnectionStep {
        step(connection.session.becameWritable(now: now))
    }

    /// The session's deadline, or, while stalled, the next try for room:
    /// room found, reading goes on; the retry window over, the session ends.
    func deadlinePassed(_ connection: inout UpperConnection, now: Instant) -> ConnectionStep {
        guard connection.stalledSince != .zero else { return step(connection.session.timerFired(now: now)) }
        let before = connection.output.accounting
        let failure = connection.output.makeRoom(spill)
        noteOutputChange(from: before, to: connection.output.accounting)
        guard let failure else {
            connection.stalledSince = .zero
            return step(connection.session.timerFired(now: now))
        }
        if failure.isTransient, now < connection.stalledSince + configuration.output.spillRetry {
            return .setDeadline(now + Self.retryInterval)
        }
        storageError = failure
        return step(connection.session.storageFailed())
    }

    func failed(_ connection: inout UpperConnection) -> ConnectionStep {
        step(connection.session.connectionFailed())
    }

    /// Returns the connection's chunks to the pool, closes its spill file,
    /// and says why the session ended when that is news.
    func closing(_ connection: inout UpperConnection, _ outcome: SessionOutcome?, _ info: ConnectionInfo, now: Instant) {
        connection.borrowed = UnsafeRawBufferPointer(start: nil, count: 0)
        if !connection.output.isEmpty || connection.output.hasSpillFile {
            let before = connection.output.accounting
            connection.output.release(pool: pool, spill: spill)
            noteOutputChange(from: before, to: connection.output.accounting)
        }
        switch connection.session.outcome {
        case .overflowed(let pending):
            warnings.warn(.overMaxPending, now: now.nanoseconds, "Closing \(info.peer): \(pending) octets pending would exceed --max-pending \(configuration.limits.maxPending) (the client sends without reading)")
        case .storageFailed(let received, let sent):
            let reason = storageError.map { "\($0)" } ?? "no memory budget and no spill file"
            warnings.warn(.storageFailed, level: .error, now: now.nanoseconds, "Closing \(info.peer): cannot store pending output in \(spill.directory): \(reason) (after \(received) octets in, \(sent) out)")
        case .completed(let echoed) where debugEnabled:
            logger.debug("Stream from \(info.peer) complete: \(echoed) octets echoed")
        case .idleTimedOut(let received, let sent) where received > sent:
            warnings.warn(.heldOutput, now: now.nanoseconds, "Closing \(info.peer): it held \(received - sent) octets of output unread and sent under \(shortDescription(ofSize: configuration.limits.holdProgress)) in \(shortDescription(of: configuration.limits.idle)) (after \(received) octets in, \(sent) out)")
        case .idleTimedOut(let received, let sent) where debugEnabled:
            logger.debug("Stream from \(info.peer) idle: closed after \(received) octets in, \(sent) out")
        case .reset(let received, let sent) where debugEnabled:
            logger.debug("Stream from \(info.peer) reset after \(received) octets in, \(sent) out")
        default:
            break
        }
    }

    func heartbeat(now: Int64) { warnings.tick(now: now) }
    func stopping(now: Int64) { warnings.flush(now: now) }

    /// Appends to the queue. On a storage failure, the step that ends the
    /// session; when stored without room ahead, the step that stops reading
    /// and sets the first retry.
    private func enqueue(_ octets: UnsafeRawBufferPointer, _ connection: inout UpperConnection, now: Instant) -> ConnectionStep? {
        let before = connection.output.accounting
        let outcome = connection.output.append(
            octets, pool: pool, highWaterMark: configuration.output.highWaterMark, spill: spill)
        noteOutputChange(from: before, to: connection.output.accounting)
        guard let outcome else { return nil }
        switch outcome {
        case .stored(let refused) where refused.isTransient:
            if connection.stalledSince == .zero {
                connection.stalledSince = now
                counts.add(.storageStalls)
            }
            return .setDeadline(now + Self.retryInterval)
        case .stored:
            // Room ahead refused for good (a file-size limit): go on; the
            // next append that needs room ends the session.
            return nil
        case .failed(let failure):
            storageError = failure
            return step(connection.session.storageFailed())
        }
    }

    /// Keeps this reactor's pending-output gauges in step with a queue change.
    private func noteOutputChange(from before: OutputAccounting, to after: OutputAccounting) {
        pendingInMemory += after.memoryOctets - before.memoryOctets
        pendingInSpill += after.spilledOctets - before.spilledOctets
        if after.hasSpillFile != before.hasSpillFile { spillFiles += after.hasSpillFile ? 1 : -1 }
        counts.set(.pendingInMemory, pendingInMemory)
        counts.set(.pendingInSpill, pendingInSpill)
        counts.set(.spillFiles, spillFiles)
        counts.set(.bufferMemory, pool.bytesInUse)
    }

    @inline(__always)
    private func step(_ action: UpperAction) -> ConnectionStep {
        switch action {
        case .wait: .wait
        case .armTimer(let deadline): .setDeadline(deadline)
        case .queueAndSend, .send: .send(deadline: nil)
        case .close(let outcome): .close(outcome.sessionOutcome)
        }
    }
}
