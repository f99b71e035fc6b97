import Reactor
import SixteenProtocol

/// One connection's state, kept in pooled memory at a stable address: its I/O
/// watcher lives here, so libev can point at it. (Its deadline lives in the
/// reactor's `DeadlineHeap`: one timer for all connections.) `Session` is the
/// protocol's own part, so each protocol's slot is only as large as it
/// needs: the slot size is most of a connection's memory.
struct ConnectionSlot<Session> {
    /// First, so the watcher is at the slot's own address.
    var io = PooledIOStorage()
    /// The socket; negative while the slot is free, and then it links the
    /// free list (`-2 - next`, so -1 ends it): one field, not two, since the
    /// slot size is most of a connection's memory.
    var fd: Int32 = -1
    /// Whether the peer may still send (no EOF read yet).
    var inputOpen = false
    /// Whether a write would have blocked and output waits for writability.
    var writeBlocked = false
    /// The slot's deadline in the reactor's heap; `.zero` when it has none.
    var armedDeadline = Instant.zero
    /// When the connection was accepted (for the session duration).
    var acceptedAt = Instant.zero
    var session: Session

    init(session: Session) {
        self.session = session
    }
}

/// The pooled slots of one reactor. Slots are allocated in chunks that never
/// move while in use, and recycled through a free list: once the table has
/// grown to the peak number of connections, accepting and closing allocate
/// nothing. After a flood, chunks left empty for a while are given back
/// (`shrink`), and the free list is rebuilt lowest slot first, so later
/// connections pack into the chunks that remain.
final class ConnectionTable<Session> {
    typealias Slot = ConnectionSlot<Session>
    private static var chunkShift: Int { 9 }
    static var chunkSize: Int { 1 << chunkShift }

    // `@exclusivity(unchecked)`: the table belongs to one reactor and only
    // its thread touches it, and no access to these properties is held
    // across a call that could reach them again (the methods below read and
    // write them directly, and hand out slot pointers, never `inout` access
    // to the arrays). The dynamic checks they would get otherwise were a
    // tenth of a session's instructions (benchmarks/instructions).

    /// nil where a chunk was given back (a hole, reused first by `grow`).
    @exclusivity(unchecked) private var chunks: [UnsafeMutablePointer<Slot>?] = []
    /// Slots in use, per chunk; and heartbeats each chunk has been empty.
    @exclusivity(unchecked) private var usedInChunk: [Int32] = []
    @exclusivity(unchecked) private var emptyBeats: [Int32] = []
    @exclusivity(unchecked) private var freeHead = -1
    private let blank: Session
    /// Slots in use.
    @exclusivity(unchecked) private(set) var activeCount = 0

    /// `blank` fills new slots; each connection sets its own session on open.
    init(blank: Session) {
        self.blank = blank
    }

    deinit {
        for chunk in chunks {
            guard let chunk else { continue }
            chunk.deinitialize(count: Self.chunkSize)
            chunk.deallocate()
        }
    }

    /// Every slot number in use or possible, up to the last chunk held.
    var capacity: Int { chunks.count << Self.chunkShift }

    /// Chunks held now.
    var chunksHeld: Int { chunks.reduce(0) { $0 + ($1 == nil ? 0 : 1) } }

    @inline(__always)
    subscript(slot: Int) -> UnsafeMutablePointer<Slot> {
        chunks[slot >> Self.chunkShift].unsafelyUnwrapped + (slot & (Self.chunkSize - 1))
    }

    /// The slot's I/O watcher, at its fixed address (the slot's own).
    @inline(__always)
    func io(_ entry: UnsafeMutablePointer<Slot>) -> PooledIO {
        PooledIO(UnsafeMutableRawPointer(entry).assumingMemoryBound(to: PooledIOStorage.self))
    }

    /// A free slot, growing the table by one chunk if none is left.
    func acquire() -> Int {
        if freeHead < 0 { grow() }
        let slot = freeHead
        freeHead = -2 - Int(self[slot].pointee.fd)
        activeCount += 1
        usedInChunk[slot >> Self.chunkShift] += 1
        return slot
    }

    /// Returns a slot whose watchers are stopped and socket closed.
    func release(_ slot: Int) {
        let entry = self[slot]
        entry.pointee.fd = Int32(-2 - freeHead)
        freeHead = slot
        activeCount -= 1
        usedInChunk[slot >> Self.chunkShift] -= 1
    }

    /// Calls `body` with every slot in use.
    func forEachActive(_ body: (Int) -> Void) {
        for slot in 0..<capacity where chunks[slot >> Self.chunkShift] != nil && self[slot].pointee.fd >= 0 {
            body(slot)
        }
    }

    /// Once a heartbeat: gives back every chunk but the first that has been
    /// empty for `beats` heartbeats in a row (so a table that breathes with
    /// the load keeps its chunks). True if it gave any back.
    func shrink(afterEmptyBeats beats: Int) -> Bool {
        var released = false
        for index in chunks.indices.dropFirst() where chunks[index] != nil {
            guard usedInChunk[index] == 0 else {
                emptyBeats[index] = 0
                continue
            }
            emptyBeats[index] += 1
            guard emptyBeats[index] >= beats else { continue }
            chunks[index]!.deinitialize(count: Self.chunkSize)
            chunks[index]!.deallocate()
            chunks[index] = nil
            released = true
        }
        guard released else { return false }
        while chunks.count > 1, chunks.last! == nil {
            chunks.removeLast()
            usedInChunk.removeLast()
            emptyBeats.removeLast()
        }
        rebuildFreeList()
        return true
    }

    /// The free list over the chunks held, lowest slot first.
    private func rebuildFreeList() {
        freeHead = -1
        for slot in stride(from: capacity - 1, through: 0, by: -1) where chunks[slot >> Self.chunkShift] != nil {
            let entry = self[slot]
            guard entry.pointee.fd < 0 else { continue }
            entry.pointee.fd = Int32(-2 - freeHead)
            freeHead = slot
        }
    }

    private func grow() {
        precondition(MemoryLayout<Slot>.offset(of: \Slot.io) == 0, "the watcher must start the slot")
        let index = chunks.firstIndex { $0 == nil } ?? chunks.count
        let base = index << Self.chunkShift
        precondition(base + Self.chunkSize <= Int(Int32.max), "connection table full")
        let chunk = UnsafeMutablePointer<Slot>.allocate(capacity: Self.chunkSize)
        chunk.initialize(repeating: Slot(session: blank), count: Self.chunkSize)
        if index == chunks.count {
            chunks.append(chunk)
            usedInChunk.append(0)
            emptyBeats.append(0)
        } else {
            chunks[index] = chunk
            usedInChunk[index] = 0
            emptyBeats[index] = 0
        }
        for offset in 0..<Self.chunkSize {
            let entry = chunk + offset
            let slot = base + offset
            io(entry).prepare(slot: slot)
            entry.pointee.fd = Int32(-2 - (offset + 1 < Self.chunkSize ? slot + 1 : freeHead))
        }
        freeHead = base
    }
}
