#if canImport(Glibc)
import Glibc
#endif
import FuzzSupport
@testable import SixteenServer

// The server's `OutputQueue` (internal to SixteenServer, hence the testable
// import: see Fuzz/README.md) for two connections sharing one chunk pool
// and one spill store, each against a plain array of the octets it should
// hold. The input chooses the pool's budget (0-4 chunks), the high-water
// mark (0 to past two chunks), the spill budget, descriptors and directory
// (one that does not exist makes every spill fail), then events: append n
// octets, let the socket take k octets of the front (memory copied, file
// regions read with pread, as sendfile would), make room, close. At the end
// each queue is drained, checking every octet, and released. After EVERY
// event:
//
//  - each queue holds its model's octets, in order: every front region is
//    the model's next octets; pending, memory and spilled octets add up;
//  - memory first, then the file: a file region comes only with no memory
//    pending, and while the file holds octets new ones go to it (order);
//    under the high-water mark with pool budget to spare, octets go to
//    memory; past it only after a refused spill, while the file is empty;
//  - an append that returns nil stored everything, and while spilling left
//    an extent of room ahead (the next read has its place); one that
//    stored without room stored everything; one that failed ends the
//    connection;
//  - a file sent in full is truncated and its space given back;
//  - the pool never lends past its budget, and holds exactly the chunks
//    the memory octets need (none for none); the spill store counts one
//    file per queue with one, never allocates past its budget, in whole
//    extents, at least what is spilled;
//  - release gives everything back: no chunk, no file, no space.
struct OutputQueueTarget {
    /// One connection: its queue and what it should hold.
    struct Connection {
        var queue = OutputQueue()
        /// The model: what the queue should hold is the connection's stream
        /// (`StreamContent`, from `origin`) from `taken` to `appended`. Kept
        /// as two positions, not as a copy of the octets: a copy of
        /// megabytes, grown and freed with every input, was most of the
        /// target's time (page faults in ASan's allocator).
        let origin: Int
        /// Stream position of the next octet appended.
        var appended = 0
        /// Stream position of the next octet the socket takes.
        var taken = 0
        /// Memory may exceed the high-water mark: a refused spill put
        /// octets there since the queue was last empty.
        var pastHighWater = false
        var pending: Int { appended - taken }

        init(_ which: Int) {
            origin = which * 7_919
        }

        /// The next `count` octets the queue should hand out.
        func expected(_ count: Int) -> ArraySlice<UInt8> {
            StreamContent.octets(at: origin + taken, count: count)
        }
    }

    static let highWaterMarks = [0, 1, 100, 4_096, ChunkPool.capacity - 1, ChunkPool.capacity, ChunkPool.capacity + 1, 140_000]
    static let extent = 4_096

    private let pool: ChunkPool
    private let spill: SpillStore
    private let highWaterMark: Int
    private var connections = [Connection(0), Connection(1)]

    init(_ input: inout FuzzInput) {
        pool = ChunkPool(budgetBytes: input.choice(5) * ChunkPool.chunkSize, reserve: input.choice(3))
        highWaterMark = Self.highWaterMarks[input.choice(Self.highWaterMarks.count)]
        let directory = input.choice(8) == 0 ? SpillDirectory.missing : SpillDirectory.path
        let maxBytes = input.choice(4) == 0 ? 1 << 30 : Self.extent * input.choice(48)
        spill = SpillStore(directory: directory, maxBytes: maxBytes, maxFiles: input.choice(3), extent: Self.extent)
        trace("pool \(pool.limit) chunks, high-water mark \(highWaterMark), spill \(directory) \(maxBytes) bytes \(spill.maxFiles) files")
    }

    mutating func run(_ input: inout FuzzInput) {
        while !input.isAtEnd {
            let which = input.choice(2)
            switch input.choice(4) {
            case 0: append(which, count: Self.appendLength(input.byte()))
            case 1: take(which, atMost: Int(input.uint16()))
            case 2: makeRoom(which)
            default: close(which)
            }
            checkAccounting()
        }
    }

    /// Drains each queue, checking every octet, then releases both.
    mutating func finish() {
        for which in connections.indices {
            while connections[which].pending > 0 {
                take(which, atMost: ChunkPool.chunkSize)
                checkAccounting()
            }
            close(which)
        }
        checkAccounting()
        invariant(pool.inUse == 0 && spill.openFiles == 0 && spill.allocatedBytes == 0,
                  "release gives everything back: no chunk, no file, no space")
    }

    /// 1-128 octets mostly, then up to about 49 KiB, then up to 144 KiB.
    static func appendLength(_ byte: UInt8) -> Int {
        switch byte {
        case 0..<128: Int(byte) + 1
        case 128..<224: Int(byte - 127) * 512
        default: Int(byte - 223) * 4_500
        }
    }

    private mutating func append(_ which: Int, count: Int) {
        var connection = connections[which]
        let octets = StreamContent.octets(at: connection.origin + connection.appended, count: count)
        let memoryBefore = connection.queue.memoryOctets, spilledBefore = connection.queue.spilledOctets
        let freeChunks = pool.limit - pool.inUse
        let outcome = octets.withUnsafeBytes { connection.queue.append($0, pool: pool, highWaterMark: highWaterMark, spill: spill) }
        trace("connection \(which): append \(count): \(String(describing: outcome))")
        if spilledBefore > 0 {
            invariant(connection.queue.memoryOctets == memoryBefore, "while the file holds octets, new ones go to it (order)")
        }
        if spilledBefore == 0 && memoryBefore + count <= highWaterMark && freeChunks >= count / ChunkPool.capacity + 2 {
            invariant(outcome == nil && connection.queue.memoryOctets == memoryBefore + count,
                      "under the high-water mark with pool budget to spare, octets go to memory", "\(String(describing: outcome))")
        }
        switch outcome {
        case nil where connection.queue.spilledOctets > 0:
            // (With nothing spilled, `hasRoom` cannot tell a drained file
            // from a refused first spill, and the glue never asks it: the
            // append's outcome is what stops reading.)
            invariant(connection.queue.hasRoom(spill), "an append that returns nil while spilling leaves an extent of room ahead")
        case nil:
            break
        case .stored:
            connection.pastHighWater = true
        case .failed:
            connections[which] = connection
            return close(which)
        }
        connection.appended += count
        if !connection.pastHighWater {
            invariant(connection.queue.memoryOctets <= highWaterMark, "memory stays under the high-water mark unless a spill was refused",
                      "\(connection.queue.memoryOctets) in memory")
        }
        connections[which] = connection
        checkQueue(which)
    }

    /// The socket takes up to `limit` octets of the front region.
    private mutating func take(_ which: Int, atMost limit: Int) {
        let region = connections[which].queue.front
        var connection = connections[which]
        var taken = 0
        var spillFile: Int32?
        switch region {
        case .empty:
            invariant(connection.pending == 0, "the front is empty only when nothing is pending")
        case .memory(let octets):
            invariant(octets.count > 0 && octets.count <= connection.queue.memoryOctets && octets.count <= ChunkPool.capacity,
                      "a memory region is part of one chunk of what memory holds")
            invariant(octetsEqual(octets, connection.expected(octets.count)), "the front region is the next octets, in order")
            taken = min(limit, octets.count)
        case .file(let fd, let offset, let count):
            invariant(connection.queue.memoryOctets == 0, "a file region comes only when no memory is pending (memory first)")
            invariant(count == connection.queue.spilledOctets && count > 0, "a file region is all that is spilled")
            taken = min(limit, count)
            invariant(octetsEqual(Self.read(fd, offset: offset, count: taken), connection.expected(taken)),
                      "the file region is the next octets, in order")
            spillFile = fd
        }
        trace("connection \(which): took \(taken) of \(region)")
        guard taken > 0 else {
            connections[which] = connection
            return
        }
        connection.queue.consume(taken, pool: pool, spill: spill)
        connection.taken += taken
        if connection.pending == 0 { connection.pastHighWater = false }
        if let spillFile, connection.queue.spilledOctets == 0 {
            var status = stat()
            invariant(fstat(spillFile, &status) == 0 && status.st_size == 0, "a file sent in full is truncated")
        }
        connections[which] = connection
        checkQueue(which)
    }

    private mutating func makeRoom(_ which: Int) {
        let failure = connections[which].queue.makeRoom(spill)
        trace("connection \(which): make room: \(String(describing: failure))")
        if failure == nil {
            invariant(connections[which].queue.hasRoom(spill), "room made is room for the next read")
        }
        checkQueue(which)
    }

    /// The connection closes: everything it held goes back.
    private mutating func close(_ which: Int) {
        trace("connection \(which): closed")
        connections[which].queue.release(pool: pool, spill: spill)
        let queue = connections[which].queue
        invariant(queue.isEmpty && queue.memoryOctets == 0 && !queue.hasSpillFile, "a released queue holds nothing")
        connections[which] = Connection(which)
    }

    private func checkQueue(_ which: Int) {
        let connection = connections[which]
        let queue = connection.queue
        invariant(queue.pendingOctets == connection.pending, "the queue holds what was appended and not taken",
                  "\(queue.pendingOctets) pending against \(connection.pending)")
        invariant(queue.memoryOctets + queue.spilledOctets == queue.pendingOctets && queue.memoryOctets >= 0 && queue.spilledOctets >= 0,
                  "memory and spilled octets add up to what is pending")
        invariant(queue.isEmpty == (connection.pending == 0), "a queue is empty exactly when nothing is pending")
    }

    /// The pool and the spill store against what the queues hold.
    private func checkAccounting() {
        let capacity = ChunkPool.capacity
        let least = connections.reduce(0) { $0 + ($1.queue.memoryOctets + capacity - 1) / capacity }
        let most = connections.reduce(0) { $0 + ($1.queue.memoryOctets == 0 ? 0 : ($1.queue.memoryOctets + capacity - 1) / capacity + 1) }
        invariant(pool.inUse <= pool.limit, "the pool never lends past its budget")
        invariant(pool.inUse >= least && pool.inUse <= most, "the pool lends exactly the chunks the memory octets need, none for none",
                  "\(pool.inUse) chunks out for \(connections.map(\.queue.memoryOctets)) octets")
        let files = connections.filter(\.queue.hasSpillFile).count
        invariant(spill.openFiles == files, "the spill store counts one file per queue that has one")
        let allocated = spill.allocatedBytes
        invariant(allocated <= spill.maxBytes && allocated % Self.extent == 0, "spill space is taken in whole extents, within the budget")
        invariant(allocated >= connections.reduce(0) { $0 + $1.queue.spilledOctets }, "spill space covers what is spilled")
        invariant(files > 0 || allocated == 0, "no spill space is held without a file")
    }

    /// `count` octets of `fd` from `offset`, as sendfile would send them.
    static func read(_ fd: Int32, offset: Int64, count: Int) -> [UInt8] {
        var octets = [UInt8](repeating: 0, count: count)
        var done = 0
        while done < count {
            let n = octets.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + done, count - done, off_t(offset) + off_t(done)) }
            guard n > 0 else { invariantBroken("a file region can be read", "pread returned \(n), errno \(errno)") }
            done += n
        }
        return octets
    }
}
