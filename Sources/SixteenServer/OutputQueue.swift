#if canImport(Glibc)
import Glibc
#endif
import Reactor

/// Fixed-size memory chunks for output queues, recycled through a free list.
/// One pool per reactor, so no lock: its share of the global memory budget
/// caps what all its connections hold in memory together.
final class ChunkPool {
    /// Bytes per chunk, header included.
    static let chunkSize = 64 * 1024
    static let headerSize = 16
    static let capacity = chunkSize - headerSize

    /// Chunks that may be out at once (the budget).
    let limit: Int
    /// Free chunks kept for reuse; beyond this, freed chunks go back to malloc.
    let reserve: Int
    private(set) var inUse = 0
    private var free: UnsafeMutableRawPointer?
    private var freeCount = 0

    init(budgetBytes: Int, reserve: Int = 16) {
        limit = max(0, budgetBytes / Self.chunkSize)
        self.reserve = reserve
    }

    deinit {
        while let chunk = free {
            free = Chunk.next(chunk)
            chunk.deallocate()
        }
    }

    /// A chunk with no data, or nil when the budget is spent.
    func take() -> UnsafeMutableRawPointer? {
        guard inUse < limit else { return nil }
        let chunk: UnsafeMutableRawPointer
        if let reused = free {
            free = Chunk.next(reused)
            freeCount -= 1
            chunk = reused
        } else {
            chunk = .allocate(byteCount: Self.chunkSize, alignment: 16)
        }
        Chunk.reset(chunk)
        inUse += 1
        return chunk
    }

    func give(_ chunk: UnsafeMutableRawPointer) {
        inUse -= 1
        if freeCount < reserve {
            Chunk.setNext(chunk, free)
            free = chunk
            freeCount += 1
        } else {
            chunk.deallocate()
        }
    }

    /// Bytes the pool has handed out.
    var bytesInUse: Int { inUse * Self.chunkSize }
}

/// A chunk's header: the next chunk, then the start and end of its data.
enum Chunk {
    static func next(_ chunk: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer? {
        chunk.load(as: UnsafeMutableRawPointer?.self)
    }
    static func setNext(_ chunk: UnsafeMutableRawPointer, _ next: UnsafeMutableRawPointer?) {
        chunk.storeBytes(of: next, as: UnsafeMutableRawPointer?.self)
    }
    static func start(_ chunk: UnsafeMutableRawPointer) -> Int { Int(chunk.load(fromByteOffset: 8, as: Int32.self)) }
    static func end(_ chunk: UnsafeMutableRawPointer) -> Int { Int(chunk.load(fromByteOffset: 12, as: Int32.self)) }
    static func setStart(_ chunk: UnsafeMutableRawPointer, _ value: Int) { chunk.storeBytes(of: Int32(value), toByteOffset: 8, as: Int32.self) }
    static func setEnd(_ chunk: UnsafeMutableRawPointer, _ value: Int) { chunk.storeBytes(of: Int32(value), toByteOffset: 12, as: Int32.self) }
    static func data(_ chunk: UnsafeMutableRawPointer) -> UnsafeMutableRawPointer { chunk + ChunkPool.headerSize }
    static func reset(_ chunk: UnsafeMutableRawPointer) {
        setNext(chunk, nil)
        setStart(chunk, 0)
        setEnd(chunk, 0)
    }
}

/// What an output queue holds.
struct OutputAccounting {
    var memoryOctets: Int
    var spilledOctets: Int
    var hasSpillFile: Bool
}

/// One connection's pending output, in order: memory chunks first, then a
/// spill file. New octets go to memory while this connection is under its
/// high-water mark and the pool has budget; otherwise, and whenever the file
/// already holds octets (order!), they are appended to the file. When the
/// file has been sent in full it is truncated and memory is used again.
///
/// The file's disk space is taken ahead of need (`SpillStore`): once octets
/// spill, one extent more than is written stays allocated, so the next read
/// always has its place. When the file system or the budget refuses that
/// extent, `append` still stores what it was given (in the space it has, or
/// in memory while the file is empty) and says so: the caller stops reading
/// until `makeRoom` succeeds.
///
/// A plain value (pointers and counts) kept inline in a connection slot; the
/// pool and the spill store belong to the reactor.
struct OutputQueue {
    private var head: UnsafeMutableRawPointer?
    private var tail: UnsafeMutableRawPointer?
    /// Octets pending in memory chunks.
    private(set) var memoryOctets = 0
    private var spillFD: Int32 = -1
    private var spillRead: Int64 = 0
    private var spillWrite: Int64 = 0
    /// Disk space taken for the file (≥ `spillWrite`).
    private var spillAllocated: Int64 = 0

    init() {}

    /// Octets pending in the spill file.
    var spilledOctets: Int { Int(spillWrite - spillRead) }
    var pendingOctets: Int { memoryOctets + spilledOctets }
    var isEmpty: Bool { pendingOctets == 0 }
    /// Whether a spill file is open.
    var hasSpillFile: Bool { spillFD >= 0 }

    /// What the queue holds, for the gauges: compare before and after a change.
    var accounting: OutputAccounting {
        OutputAccounting(memoryOctets: memoryOctets, spilledOctets: spilledOctets, hasSpillFile: hasSpillFile)
    }

    /// Whether the next read may come: not spilling, or an extent of space
    /// taken ahead of what is written.
    func hasRoom(_ spill: SpillStore) -> Bool {
        spillFD < 0 || spillAllocated - spillWrite >= Int64(spill.extent)
    }

    /// Appends `octets` after everything pending: nil when stored with room
    /// to spare; `.stored(without:)` when stored but the room ahead was
    /// refused (stop reading); `.failed` when they could not be stored.
    mutating func append(
        _ octets: UnsafeRawBufferPointer, pool: ChunkPool, highWaterMark: Int, spill: SpillStore
    ) -> AppendOutcome? {
        var rest = octets
        if spilledOctets == 0 {
            while !rest.isEmpty && memoryOctets < highWaterMark {
                guard let chunk = writableTail(pool) else { break }
                let end = Chunk.end(chunk)
                let room = min(ChunkPool.capacity - end, highWaterMark - memoryOctets)
                guard room > 0 else { break }
                let count = min(room, rest.count)
                (Chunk.data(chunk) + end).copyMemory(from: rest.baseAddress!, byteCount: count)
                Chunk.setEnd(chunk, end + count)
                memoryOctets += count
                rest = UnsafeRawBufferPointer(rebasing: rest[count...])
            }
        }
        guard !rest.isEmpty else { return nil }
        let outcome = appendToFile(rest, spill: spill)
        guard case .failed(let failure) = outcome, spilledOctets == 0, failure.isTransient else { return outcome }
        // Nothing is in the file yet, so memory may hold these past the
        // high-water mark (within the budget) while room is sought.
        while !rest.isEmpty, let chunk = writableTail(pool) {
            let end = Chunk.end(chunk)
            let count = min(ChunkPool.capacity - end, rest.count)
            (Chunk.data(chunk) + end).copyMemory(from: rest.baseAddress!, byteCount: count)
            Chunk.setEnd(chunk, end + count)
            memoryOctets += count
            rest = UnsafeRawBufferPointer(rebasing: rest[count...])
        }
        return rest.isEmpty ? .stored(without: failure) : .failed(failure == .noMemory ? failure : .noMemory)
    }

    /// Takes an extent of room ahead of what is written (after `append`
    /// said it could not): nil when there is room now.
    mutating func makeRoom(_ spill: SpillStore) -> StorageFailure? {
        if spillFD < 0 {
            switch spill.makeFile() {
            case .success(let fd): spillFD = fd
            case .failure(let failure): return failure
            }
        }
        switch spill.allocate(spillFD, from: spillAllocated, to: spill.rounded(spillWrite) + Int64(spill.extent)) {
        case .success(let allocated):
            spillAllocated = allocated
            return nil
        case .failure(let failure):
            return failure
        }
    }

    /// The next contiguous octets to send.
    var front: OutputRegion {
        if let chunk = head, memoryOctets > 0 {
            let start = Chunk.start(chunk)
            return .memory(UnsafeRawBufferPointer(start: Chunk.data(chunk) + start, count: Chunk.end(chunk) - start))
        }
        if spilledOctets > 0 {
            return .file(fd: spillFD, offset: spillRead, count: spilledOctets)
        }
        return .empty
    }

    /// Drops the first `count` octets, which the socket has taken.
    mutating func consume(_ count: Int, pool: ChunkPool, spill: SpillStore) {
        var left = count
        while left > 0, let chunk = head, memoryOctets > 0 {
            let start = Chunk.start(chunk)
            let available = Chunk.end(chunk) - start
            let taken = min(available, left)
            Chunk.setStart(chunk, start + taken)
            memoryOctets -= taken
            left -= taken
            if taken == available {
                head = Chunk.next(chunk)
                if head == nil { tail = nil }
                pool.give(chunk)
            }
        }
        if left > 0 {
            precondition(left <= spilledOctets, "consumed more than was pending")
            spillRead += Int64(left)
            if spillRead == spillWrite {
                // Sent in full: give the disk space back and start again at 0.
                _ = ftruncate(spillFD, 0)
                spill.release(spillAllocated)
                spillRead = 0
                spillWrite = 0
                spillAllocated = 0
            }
        }
    }

    /// Frees everything: chunks back to the pool, the spill file closed (and
    /// so gone). Call when the connection closes.
    mutating func release(pool: ChunkPool, spill: SpillStore) {
        while let chunk = head {
            head = Chunk.next(chunk)
            pool.give(chunk)
        }
        tail = nil
        memoryOctets = 0
        if spillFD >= 0 { spill.closeFile(spillFD, allocated: spillAllocated) }
        spillFD = -1
        spillRead = 0
        spillWrite = 0
        spillAllocated = 0
    }

    private mutating func writableTail(_ pool: ChunkPool) -> UnsafeMutableRawPointer? {
        if let chunk = tail, Chunk.end(chunk) < ChunkPool.capacity { return chunk }
        guard let chunk = pool.take() else { return nil }
        if let last = tail { Chunk.setNext(last, chunk) } else { head = chunk }
        tail = chunk
        return chunk
    }

    /// Writes to the file, taking room first: the extents the octets need
    /// and one more ahead; when the one ahead is refused, only what they need.
    private mutating func appendToFile(_ octets: UnsafeRawBufferPointer, spill: SpillStore) -> AppendOutcome? {
        if spillFD < 0 {
            switch spill.makeFile() {
            case .success(let fd): spillFD = fd
            case .failure(let failure): return .failed(failure)
            }
        }
        let needed = spillWrite + Int64(octets.count)
        var refused: StorageFailure?
        // Keep an extent of room ahead of what is written, so the next read
        // has its place: take it now if this append leaves less.
        if needed + Int64(spill.extent) > spillAllocated {
            switch spill.allocate(spillFD, from: spillAllocated, to: spill.rounded(needed) + Int64(spill.extent)) {
            case .success(let allocated):
                spillAllocated = allocated
            case .failure(let ahead):
                refused = ahead
                if needed > spillAllocated {
                    switch spill.allocate(spillFD, from: spillAllocated, to: spill.rounded(needed)) {
                    case .success(let allocated): spillAllocated = allocated
                    case .failure(let failure): return .failed(failure)
                    }
                }
            }
        }
        var offset = 0
        while offset < octets.count {
            let n = pwrite(spillFD, octets.baseAddress! + offset, octets.count - offset, off_t(spillWrite))
            if n < 0 {
                if errno == EINTR { continue }
                return .failed(.system(.current))
            }
            offset += n
            spillWrite += Int64(n)
        }
        return refused.map { .stored(without: $0) }
    }
}

/// What an append that did not simply succeed did.
enum AppendOutcome: Equatable {
    /// Stored, but the room ahead was refused for this reason: stop reading
    /// until `makeRoom` succeeds.
    case stored(without: StorageFailure)
    /// Not stored: the session must end.
    case failed(StorageFailure)
}
