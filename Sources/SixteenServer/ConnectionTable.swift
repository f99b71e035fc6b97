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

    /// One chunk's place in the table's directory.
    private struct Chunk {
        /// nil where the chunk was given back (a hole, reused first by `grow`).
        var slots: UnsafeMutablePointer<Slot>?
        /// Slots in use; and heartbeats the chunk has been empty.
        var used: Int32 = 0
        var emptyBeats: Int32 = 0
    }

    // The directory is raw memory, not an array: accepting and closing
    // count their slot in it, and an array would check its uniqueness and
    // bounds on each of those writes. `@exclusivity(unchecked)`: the table
    // belongs to one reactor and only its thread touches it, and no access
    // to these properties is held across a call that could reach them
    // again (the methods below read and write them directly, and hand out
    // slot pointers only). The dynamic checks they would get otherwise were
    // a tenth of a session's instructions (benchmarks/instructions).
    @exclusivity(unchecked) private var directory: UnsafeMutablePointer<Chunk>
    @exclusivity(unchecked) private var directoryCapacity = 4
    /// Chunks in the directory, holes included.
    @exclusivity(unchecked) private var chunkCount = 0
    @exclusivity(unchecked) private var freeHead = -1
    private let blank: Session
    /// Slots in use.
    @exclusivity(unchecked) private(set) var activeCount = 0

    /// `blank` fills new slots; each connection sets its own session on open.
    init(blank: Session) {
        self.blank = blank
        directory = .allocate(capacity: directoryCapacity)
    }

    deinit {
        for index in 0..<chunkCount {
            guard let chunk = directory[index].slots else { continue }
            chunk.deinitialize(count: Self.chunkSize)
            chunk.deallocate()
        }
        directory.deinitialize(count: chunkCount)
        directory.deallocate()
    }

    /// Every slot number in use or possible, up to the last chunk held.
    var capacity: Int { chunkCount << Self.chunkShift }

    /// Chunks held now.
    var chunksHeld: Int { (0..<chunkCount).reduce(0) { $0 + (directory[$1].slots == nil ? 0 : 1) } }

    @inline(__always)
    subscript(slot: Int) -> UnsafeMutablePointer<Slot> {
        directory[slot >> Self.chunkShift].slots.unsafelyUnwrapped + (slot & (Self.chunkSize - 1))
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
        directory[slot >> Self.chunkShift].used += 1
        return slot
    }

    /// Returns a slot whose watchers are stopped and socket closed.
    func release(_ slot: Int) {
        let entry = self[slot]
        entry.pointee.fd = Int32(-2 - freeHead)
        freeHead = slot
        activeCount -= 1
        directory[slot >> Self.chunkShift].used -= 1
    }

    /// Calls `body` with every slot in use.
    func forEachActive(_ body: (Int) -> Void) {
        for slot in 0..<capacity where directory[slot >> Self.chunkShift].slots != nil && self[slot].pointee.fd >= 0 {
            body(slot)
        }
    }

    /// Once a heartbeat: gives back every chunk but the first that has been
    /// empty for `beats` heartbeats in a row (so a table that breathes with
    /// the load keeps its chunks). True if it gave any back.
    func shrink(afterEmptyBeats beats: Int) -> Bool {
        var released = false
        for index in 1..<max(chunkCount, 1) where directory[index].slots != nil {
            guard directory[index].used == 0 else {
                directory[index].emptyBeats = 0
                continue
            }
            directory[index].emptyBeats += 1
            guard directory[index].emptyBeats >= beats else { continue }
            directory[index].slots!.deinitialize(count: Self.chunkSize)
            directory[index].slots!.deallocate()
            directory[index].slots = nil
            released = true
        }
        guard released else { return false }
        while chunkCount > 1, directory[chunkCount - 1].slots == nil {
            chunkCount -= 1
            (directory + chunkCount).deinitialize(count: 1)
        }
        rebuildFreeList()
        return true
    }

    /// The free list over the chunks held, lowest slot first.
    private func rebuildFreeList() {
        freeHead = -1
        for slot in stride(from: capacity - 1, through: 0, by: -1) where directory[slot >> Self.chunkShift].slots != nil {
            let entry = self[slot]
            guard entry.pointee.fd < 0 else { continue }
            entry.pointee.fd = Int32(-2 - freeHead)
            freeHead = slot
        }
    }

    private func grow() {
        precondition(MemoryLayout<Slot>.offset(of: \Slot.io) == 0, "the watcher must start the slot")
        let index = (0..<chunkCount).first { directory[$0].slots == nil } ?? chunkCount
        let base = index << Self.chunkShift
        precondition(base + Self.chunkSize <= Int(Int32.max), "connection table full")
        let chunk = UnsafeMutablePointer<Slot>.allocate(capacity: Self.chunkSize)
        chunk.initialize(repeating: Slot(session: blank), count: Self.chunkSize)
        if index == chunkCount {
            if chunkCount == directoryCapacity {
                let larger = UnsafeMutablePointer<Chunk>.allocate(capacity: directoryCapacity * 2)
                larger.moveInitialize(from: directory, count: chunkCount)
                directory.deallocate()
                directory = larger
                directoryCapacity *= 2
            }
            (directory + index).initialize(to: Chunk(slots: chunk))
            chunkCount += 1
        } else {
            directory[index] = Chunk(slots: chunk)
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
