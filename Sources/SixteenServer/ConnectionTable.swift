import CLibEv
import Reactor
import SixteenProtocol

/// One connection's state, kept in pooled memory at a stable address: its
/// watchers live here, so libev can point at them.
struct ConnectionSlot {
    var io = ev_io()
    var timer = ev_timer()
    /// The socket, or -1 while the slot is free.
    var fd: Int32 = -1
    /// Whether the peer may still send (no EOF read yet).
    var inputOpen = false
    /// When the slot's timer is set to fire; `.zero` when it is not armed.
    var armedDeadline = Instant.zero
    /// The next free slot while this one is free.
    var nextFree = -1
    /// The protocol session of this connection.
    var session: SessionState
    /// Output not yet written (`upper` only; empty otherwise).
    var output = OutputQueue()

    init(session: SessionState) {
        self.session = session
    }
}

/// A connection's protocol state machine.
enum SessionState {
    case sixteen(SixteenSession)
    case upper(UpperSession)
}

extension UnsafeMutablePointer where Pointee == ConnectionSlot {
    /// The slot's I/O watcher, at its fixed address inside the slot.
    @inline(__always)
    var io: PooledIO {
        PooledIO((UnsafeMutableRawPointer(self) + Self.ioOffset).assumingMemoryBound(to: ev_io.self))
    }

    /// The slot's timer, at its fixed address inside the slot.
    @inline(__always)
    var timer: PooledTimer {
        PooledTimer((UnsafeMutableRawPointer(self) + Self.timerOffset).assumingMemoryBound(to: ev_timer.self))
    }

    /// Runs `body` on the slot's `sixteen` session, in place.
    @inline(__always)
    func sixteen<Result>(_ body: (inout SixteenSession) -> Result) -> Result {
        guard case .sixteen(var session) = pointee.session else { preconditionFailure("not a sixteen session") }
        defer { pointee.session = .sixteen(session) }
        return body(&session)
    }

    /// Runs `body` on the slot's `upper` session, in place.
    @inline(__always)
    func upper<Result>(_ body: (inout UpperSession) -> Result) -> Result {
        guard case .upper(var session) = pointee.session else { preconditionFailure("not an upper session") }
        defer { pointee.session = .upper(session) }
        return body(&session)
    }

    private static var ioOffset: Int { MemoryLayout<ConnectionSlot>.offset(of: \.io)! }
    private static var timerOffset: Int { MemoryLayout<ConnectionSlot>.offset(of: \.timer)! }
}

/// The pooled slots of one reactor. Slots are allocated in chunks that never
/// move, and recycled through a free list: once the table has grown to the
/// peak number of connections, accepting and closing allocate nothing.
final class ConnectionTable {
    private static let chunkShift = 9
    private static let chunkSize = 1 << chunkShift

    private var chunks: [UnsafeMutablePointer<ConnectionSlot>] = []
    private var freeHead = -1
    private let blank: SessionState
    /// Slots in use.
    private(set) var activeCount = 0

    /// `blank` fills new slots; each connection sets its own session on open.
    init(blank: SessionState) {
        self.blank = blank
    }

    deinit {
        for chunk in chunks {
            chunk.deinitialize(count: Self.chunkSize)
            chunk.deallocate()
        }
    }

    /// Every slot ever made, free or not.
    var capacity: Int { chunks.count << Self.chunkShift }

    @inline(__always)
    subscript(slot: Int) -> UnsafeMutablePointer<ConnectionSlot> {
        chunks[slot >> Self.chunkShift] + (slot & (Self.chunkSize - 1))
    }

    /// A free slot, growing the table by one chunk if none is left.
    func acquire() -> Int {
        if freeHead < 0 { grow() }
        let slot = freeHead
        freeHead = self[slot].pointee.nextFree
        activeCount += 1
        return slot
    }

    /// Returns a slot whose watchers are stopped and socket closed.
    func release(_ slot: Int) {
        let entry = self[slot]
        entry.pointee.fd = -1
        entry.pointee.nextFree = freeHead
        freeHead = slot
        activeCount -= 1
    }

    /// Calls `body` with every slot in use.
    func forEachActive(_ body: (Int) -> Void) {
        for slot in 0..<capacity where self[slot].pointee.fd >= 0 {
            body(slot)
        }
    }

    private func grow() {
        let base = capacity
        let chunk = UnsafeMutablePointer<ConnectionSlot>.allocate(capacity: Self.chunkSize)
        chunk.initialize(repeating: ConnectionSlot(session: blank), count: Self.chunkSize)
        chunks.append(chunk)
        for offset in 0..<Self.chunkSize {
            let entry = chunk + offset
            let slot = base + offset
            entry.io.prepare(slot: slot)
            entry.timer.prepare(slot: slot)
            entry.pointee.nextFree = offset + 1 < Self.chunkSize ? slot + 1 : freeHead
        }
        freeHead = base
    }
}
