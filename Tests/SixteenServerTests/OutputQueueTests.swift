#if canImport(Glibc)
import Glibc
#endif
import Reactor
@testable import SixteenServer
import TestSupport
import XCTest

/// `ChunkPool`, `OutputQueue` and `SpillStore`: memory up to the
/// high-water mark (and the pool's budget), then an unnamed spill file, read
/// back in order. Spill files go to a fresh directory under /tmp per test.
final class OutputQueueTests: XCTestCase {
    private var directory = ""
    /// A spill store of the test's directory, made at setUp (1 GiB, 64 files).
    private var spill: SpillStore!
    private let capacity = ChunkPool.capacity

    override func setUpWithError() throws {
        try super.setUpWithError()
        directory = try makeTemporaryDirectory(prefix: "sixteen-output-queue")
        spill = SpillStore(directory: directory, maxBytes: 1 << 30, maxFiles: 64)
    }

    override func tearDownWithError() throws {
        if let spill {
            XCTAssertEqual(spill.openFiles, 0, "a spill file was left open")
            XCTAssertEqual(spill.allocatedBytes, 0, "spill space was left taken")
        }
        if !directory.isEmpty {
            for name in directoryEntries(directory) ?? [] { unlink(directory + "/" + name) }
            XCTAssertEqual(rmdir(directory), 0, "rmdir \(directory): errno \(errno)")
        }
        try super.tearDownWithError()
    }

    /// The one spill descriptor open in the test's directory.
    private func onlySpillDescriptor(file: StaticString = #filePath, line: UInt = #line) throws -> Int32 {
        let open = descriptors(in: directory)
        XCTAssertEqual(open.count, 1, "spill descriptors: \(open)", file: file, line: line)
        return try XCTUnwrap(open.first?.fd, file: file, line: line)
    }

    // MARK: ChunkPool

    func testChunkPoolConstantsAndBudget() {
        XCTAssertEqual(ChunkPool.chunkSize, 65_536)
        XCTAssertEqual(ChunkPool.headerSize, 16)
        XCTAssertEqual(ChunkPool.capacity, 65_520)
        XCTAssertEqual(ChunkPool(budgetBytes: 3 * ChunkPool.chunkSize + 65_535).limit, 3)
        XCTAssertEqual(ChunkPool(budgetBytes: ChunkPool.chunkSize - 1).limit, 0)
        XCTAssertEqual(ChunkPool(budgetBytes: -5).limit, 0)

        let pool = ChunkPool(budgetBytes: 3 * ChunkPool.chunkSize)
        let chunks = (0..<3).compactMap { _ in pool.take() }
        XCTAssertEqual(chunks.count, 3)
        XCTAssertEqual(Set(chunks).count, 3)
        XCTAssertEqual(pool.inUse, 3)
        XCTAssertEqual(pool.bytesInUse, 3 * 65_536)
        XCTAssertNil(pool.take(), "a fourth chunk past the budget")
        XCTAssertEqual(pool.inUse, 3)
        pool.give(chunks[1])
        XCTAssertEqual(pool.inUse, 2)
        let again = pool.take()
        XCTAssertNotNil(again)
        XCTAssertEqual(pool.inUse, 3)
        for chunk in [chunks[0], chunks[2]] + [again].compactMap({ $0 }) { pool.give(chunk) }
        XCTAssertEqual(pool.inUse, 0)
        XCTAssertEqual(pool.bytesInUse, 0)
    }

    func testChunkPoolReusesFreedChunksUpToItsReserveAndResetsThem() throws {
        let pool = ChunkPool(budgetBytes: 4 * ChunkPool.chunkSize, reserve: 1)
        let first = try XCTUnwrap(pool.take())
        let second = try XCTUnwrap(pool.take())
        Chunk.setStart(first, 5)
        Chunk.setEnd(first, 100)
        Chunk.setNext(first, second)
        pool.give(first)  // kept: the reserve has room for one
        pool.give(second)  // reserve full: back to malloc
        let reused = try XCTUnwrap(pool.take())
        XCTAssertEqual(reused, first)
        XCTAssertEqual(Chunk.start(reused), 0)
        XCTAssertEqual(Chunk.end(reused), 0)
        XCTAssertNil(Chunk.next(reused))
        XCTAssertEqual(Chunk.data(reused), reused + ChunkPool.headerSize)
        pool.give(reused)
        XCTAssertEqual(pool.inUse, 0)
    }

    // MARK: Memory below the high-water mark

    func testEmptyQueue() {
        let queue = OutputQueue()
        guard case .empty = queue.front else { return XCTFail("front of an empty queue: \(queue.front)") }
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(queue.pendingOctets, 0)
        XCTAssertFalse(queue.hasSpillFile)
    }

    func testAppendBelowTheHighWaterMarkStaysInMemory() {
        let pool = ChunkPool(budgetBytes: 8 * ChunkPool.chunkSize)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: spill) }
        let content = StreamContent.octets(at: 0, count: 1_000)
        appendOK(&queue, content, pool: pool, highWaterMark: 10_000, spill: spill)
        XCTAssertEqual(queue.memoryOctets, 1_000)
        XCTAssertEqual(queue.spilledOctets, 0)
        XCTAssertEqual(queue.pendingOctets, 1_000)
        XCTAssertFalse(queue.isEmpty)
        XCTAssertFalse(queue.hasSpillFile)
        XCTAssertEqual(pool.inUse, 1)
        guard case .memory(let region) = queue.front else { return XCTFail("front: \(queue.front)") }
        XCTAssertEqual(Array(region), Array(content))
        XCTAssertEqual(directoryEntries(directory), [])
        XCTAssertEqual(descriptors(in: directory).count, 0)
    }

    func testAppendExactlyUpToTheHighWaterMarkStaysInMemory() {
        let pool = ChunkPool(budgetBytes: 8 * ChunkPool.chunkSize)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: spill) }
        appendOK(&queue, StreamContent.octets(at: 0, count: 3_000), pool: pool, highWaterMark: 5_000, spill: spill)
        appendOK(&queue, StreamContent.octets(at: 3_000, count: 2_000), pool: pool, highWaterMark: 5_000, spill: spill)
        XCTAssertEqual(queue.memoryOctets, 5_000)
        XCTAssertEqual(queue.spilledOctets, 0)
        XCTAssertFalse(queue.hasSpillFile)
        XCTAssertTrue(drainAll(&queue, pool: pool, spill: spill).elementsEqual(StreamContent.octets(at: 0, count: 5_000)))
        XCTAssertEqual(pool.inUse, 0)
    }

    func testMemoryFrontIsOneChunkAtATime() {
        let pool = ChunkPool(budgetBytes: 8 * ChunkPool.chunkSize)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: spill) }
        appendOK(&queue, StreamContent.octets(at: 0, count: 150_000), pool: pool, highWaterMark: 200_000, spill: spill)
        XCTAssertEqual(pool.inUse, 3)
        XCTAssertEqual(queue.memoryOctets, 150_000)
        var regionSizes: [Int] = []
        var position = 0
        while case .memory(let region) = queue.front {
            regionSizes.append(region.count)
            XCTAssertTrue(region.elementsEqual(StreamContent.octets(at: position, count: region.count)))
            position += region.count
            queue.consume(region.count, pool: pool, spill: spill)
            XCTAssertEqual(pool.inUse, 3 - regionSizes.count)
        }
        XCTAssertEqual(regionSizes, [capacity, capacity, 150_000 - 2 * capacity])
        XCTAssertTrue(queue.isEmpty)
    }

    // MARK: Spilling

    func testCrossingTheHighWaterMarkSpillsTheRest() throws {
        let pool = ChunkPool(budgetBytes: 8 * ChunkPool.chunkSize)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: spill) }
        appendOK(&queue, StreamContent.octets(at: 0, count: 2_500), pool: pool, highWaterMark: 1_000, spill: spill)
        XCTAssertEqual(queue.memoryOctets, 1_000)
        XCTAssertEqual(queue.spilledOctets, 1_500)
        XCTAssertEqual(queue.pendingOctets, 2_500)
        XCTAssertTrue(queue.hasSpillFile)
        let fd = try onlySpillDescriptor()
        XCTAssertEqual(fileSize(fd), 1_500)

        guard case .memory(let region) = queue.front else { return XCTFail("front: \(queue.front)") }
        XCTAssertTrue(region.elementsEqual(StreamContent.octets(at: 0, count: 1_000)))
        queue.consume(1_000, pool: pool, spill: spill)
        guard case .file(let regionFD, let offset, let count) = queue.front else { return XCTFail("front: \(queue.front)") }
        XCTAssertEqual(regionFD, fd)
        XCTAssertEqual(offset, 0)
        XCTAssertEqual(count, 1_500)
        XCTAssertTrue(readFile(fd, offset: 0, count: 1_500).elementsEqual(StreamContent.octets(at: 1_000, count: 1_500)))
    }

    func testOnceSpilledLaterAppendsGoToTheFileEvenBelowTheMark() throws {
        let pool = ChunkPool(budgetBytes: 8 * ChunkPool.chunkSize)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: spill) }
        let mark = 1_000
        appendOK(&queue, StreamContent.octets(at: 0, count: 1_500), pool: pool, highWaterMark: mark, spill: spill)
        // Memory partly drained, below the mark: the next octets still follow the file's.
        XCTAssertEqual(takeFront(&queue, pool: pool, spill: spill, atMost: 400), Array(StreamContent.octets(at: 0, count: 400)))
        appendOK(&queue, StreamContent.octets(at: 1_500, count: 100), pool: pool, highWaterMark: mark, spill: spill)
        XCTAssertEqual(queue.memoryOctets, 600)
        XCTAssertEqual(queue.spilledOctets, 600)
        // Memory fully drained: still the file.
        XCTAssertEqual(takeFront(&queue, pool: pool, spill: spill, atMost: .max), Array(StreamContent.octets(at: 400, count: 600)))
        XCTAssertEqual(pool.inUse, 0)
        appendOK(&queue, StreamContent.octets(at: 1_600, count: 10), pool: pool, highWaterMark: mark, spill: spill)
        XCTAssertEqual(queue.memoryOctets, 0)
        XCTAssertEqual(queue.spilledOctets, 610)
        XCTAssertEqual(pool.inUse, 0)
        guard case .file(_, let offset, let count) = queue.front else { return XCTFail("front: \(queue.front)") }
        XCTAssertEqual(offset, 0)
        XCTAssertEqual(count, 610)
        XCTAssertTrue(drainAll(&queue, pool: pool, spill: spill, step: 250).elementsEqual(StreamContent.octets(at: 1_000, count: 610)))
    }

    func testFullyConsumedFileIsTruncatedAndMemoryIsUsedAgain() throws {
        let pool = ChunkPool(budgetBytes: 8 * ChunkPool.chunkSize)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: spill) }
        appendOK(&queue, StreamContent.octets(at: 0, count: 3_000), pool: pool, highWaterMark: 1_000, spill: spill)
        let fd = try onlySpillDescriptor()
        XCTAssertTrue(drainAll(&queue, pool: pool, spill: spill, step: 700).elementsEqual(StreamContent.octets(at: 0, count: 3_000)))
        XCTAssertEqual(queue.spilledOctets, 0)
        XCTAssertTrue(queue.hasSpillFile, "the file stays open for the next spill")
        XCTAssertGreaterThanOrEqual(fcntl(fd, F_GETFD), 0, "spill descriptor closed too early")
        XCTAssertEqual(fileSize(fd), 0, "the file was not truncated")
        guard case .empty = queue.front else { return XCTFail("front: \(queue.front)") }

        appendOK(&queue, StreamContent.octets(at: 3_000, count: 800), pool: pool, highWaterMark: 1_000, spill: spill)
        XCTAssertEqual(queue.memoryOctets, 800)
        XCTAssertEqual(queue.spilledOctets, 0)
        guard case .memory = queue.front else { return XCTFail("front: \(queue.front)") }
        // Past the mark again: the same file, from offset 0.
        appendOK(&queue, StreamContent.octets(at: 3_800, count: 500), pool: pool, highWaterMark: 1_000, spill: spill)
        XCTAssertEqual(queue.memoryOctets, 1_000)
        XCTAssertEqual(queue.spilledOctets, 300)
        XCTAssertEqual(try onlySpillDescriptor(), fd)
        XCTAssertEqual(fileSize(fd), 300)
        XCTAssertTrue(drainAll(&queue, pool: pool, spill: spill).elementsEqual(StreamContent.octets(at: 3_000, count: 1_300)))
    }

    func testFileRegionsFollowConsumption() throws {
        let pool = ChunkPool(budgetBytes: 8 * ChunkPool.chunkSize)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: spill) }
        appendOK(&queue, StreamContent.octets(at: 0, count: 1_000), pool: pool, highWaterMark: 0, spill: spill)
        XCTAssertEqual(queue.memoryOctets, 0)
        XCTAssertEqual(pool.inUse, 0)
        let fd = try onlySpillDescriptor()
        queue.consume(300, pool: pool, spill: spill)
        guard case .file(fd, let offset, let count) = queue.front else { return XCTFail("front: \(queue.front)") }
        XCTAssertEqual(offset, 300)
        XCTAssertEqual(count, 700)
        appendOK(&queue, StreamContent.octets(at: 1_000, count: 50), pool: pool, highWaterMark: 0, spill: spill)
        guard case .file(fd, 300, let grown) = queue.front else { return XCTFail("front: \(queue.front)") }
        XCTAssertEqual(grown, 750)
        XCTAssertTrue(readFile(fd, offset: 300, count: 750).elementsEqual(StreamContent.octets(at: 300, count: 750)))
        queue.consume(750, pool: pool, spill: spill)
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(fileSize(fd), 0)
        appendOK(&queue, StreamContent.octets(at: 1_050, count: 20), pool: pool, highWaterMark: 0, spill: spill)
        guard case .file(fd, 0, 20) = queue.front else { return XCTFail("front: \(queue.front)") }
        XCTAssertTrue(readFile(fd, offset: 0, count: 20).elementsEqual(StreamContent.octets(at: 1_050, count: 20)))
    }

    func testOneConsumeAcrossMemoryAndFile() throws {
        let pool = ChunkPool(budgetBytes: 8 * ChunkPool.chunkSize)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: spill) }
        appendOK(&queue, StreamContent.octets(at: 0, count: 1_500), pool: pool, highWaterMark: 1_000, spill: spill)
        let fd = try onlySpillDescriptor()
        queue.consume(1_200, pool: pool, spill: spill)
        XCTAssertEqual(queue.memoryOctets, 0)
        XCTAssertEqual(queue.spilledOctets, 300)
        XCTAssertEqual(pool.inUse, 0)
        guard case .file(fd, 200, 300) = queue.front else { return XCTFail("front: \(queue.front)") }
        queue.consume(300, pool: pool, spill: spill)
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(fileSize(fd), 0)
    }

    /// Many append/consume interleavings with random sizes: whatever went to
    /// memory or to the file, the octets come back exactly in order.
    func testRandomInterleavingsReadBackInOrder() {
        var random = OutputQueueRandom(seed: 0x0071_e0e0_5eed)
        var trialsThatSpilled = 0
        var returnsToMemory = 0
        for trial in 0..<24 {
            let unlimited = trial % 2 == 0
            let pool = ChunkPool(budgetBytes: (unlimited ? 64 : random.next(in: 0...4)) * ChunkPool.chunkSize)
            let mark = random.next(in: 0...3) == 0 ? random.next(in: 0...100) : random.next(in: 1_000...200_000)
            let label = "trial \(trial), mark \(mark), pool limit \(pool.limit)"
            var queue = OutputQueue()
            var appended = 0
            var consumed = 0
            var spilledInTrial = false
            var wasSpilled = false
            for _ in 0..<120 {
                if random.next(in: 0...1) == 0 {
                    let size = random.next(in: 0...3) == 0 ? random.next(in: 0...150_000) : random.next(in: 0...5_000)
                    let memoryBefore = queue.memoryOctets
                    let spilledBefore = queue.spilledOctets
                    appendOK(&queue, StreamContent.octets(at: appended, count: size), pool: pool, highWaterMark: mark, spill: spill)
                    appended += size
                    if spilledBefore > 0 {
                        XCTAssertEqual(queue.memoryOctets, memoryBefore, label)
                        XCTAssertEqual(queue.spilledOctets, spilledBefore + size, label)
                    } else if unlimited {
                        XCTAssertEqual(queue.memoryOctets, max(memoryBefore, min(mark, memoryBefore + size)), label)
                    }
                    if wasSpilled && spilledBefore == 0 && queue.memoryOctets > memoryBefore { returnsToMemory += 1 }
                } else {
                    let taken = takeFront(&queue, pool: pool, spill: spill, atMost: random.next(in: 1...100_000))
                    XCTAssertTrue(
                        taken.elementsEqual(StreamContent.octets(at: consumed, count: taken.count)),
                        "\(label): \(taken.count) octets at \(consumed) out of order")
                    consumed += taken.count
                }
                if queue.spilledOctets > 0 {
                    spilledInTrial = true
                    wasSpilled = true
                }
                XCTAssertEqual(queue.pendingOctets, appended - consumed, label)
                XCTAssertLessThanOrEqual(queue.memoryOctets, mark, label)
                XCTAssertLessThanOrEqual(pool.inUse, pool.limit, label)
                XCTAssertLessThanOrEqual(queue.memoryOctets, pool.inUse * capacity, label)
                if case .file(let fd, let offset, let count) = queue.front {
                    XCTAssertEqual(fileSize(fd), offset + Int64(count), "\(label): file holds more than is pending")
                }
            }
            while !queue.isEmpty {
                let taken = takeFront(&queue, pool: pool, spill: spill, atMost: random.next(in: 1...100_000))
                XCTAssertFalse(taken.isEmpty, label)
                if taken.isEmpty { break }
                XCTAssertTrue(
                    taken.elementsEqual(StreamContent.octets(at: consumed, count: taken.count)),
                    "\(label): \(taken.count) octets at \(consumed) out of order")
                consumed += taken.count
            }
            XCTAssertEqual(consumed, appended, label)
            XCTAssertEqual(queue.spilledOctets, 0, label)
            XCTAssertEqual(pool.inUse, 0, label)
            queue.release(pool: pool, spill: spill)
            XCTAssertFalse(queue.hasSpillFile, label)
            if spilledInTrial { trialsThatSpilled += 1 }
        }
        // The cases of interest were actually reached.
        XCTAssertGreaterThan(trialsThatSpilled, 12)
        XCTAssertGreaterThan(returnsToMemory, 5)
        XCTAssertEqual(descriptors(in: directory).count, 0)
    }

    // MARK: The pool's budget

    func testPoolBudgetSpillsBelowTheHighWaterMark() throws {
        let pool = ChunkPool(budgetBytes: 2 * ChunkPool.chunkSize + 1_000)
        XCTAssertEqual(pool.limit, 2)
        var queue = OutputQueue()
        var other = OutputQueue()
        defer {
            queue.release(pool: pool, spill: spill)
            other.release(pool: pool, spill: spill)
        }
        appendOK(&queue, StreamContent.octets(at: 0, count: 200_000), pool: pool, highWaterMark: 1_000_000, spill: spill)
        XCTAssertEqual(queue.memoryOctets, 2 * capacity)
        XCTAssertEqual(queue.spilledOctets, 200_000 - 2 * capacity)
        XCTAssertEqual(pool.inUse, 2)
        // The budget is shared: another queue goes straight to its own file.
        appendOK(&other, StreamContent.octets(at: 0, count: 10), pool: pool, highWaterMark: 1_000_000, spill: spill)
        XCTAssertEqual(other.memoryOctets, 0)
        XCTAssertEqual(other.spilledOctets, 10)
        XCTAssertEqual(descriptors(in: directory).count, 2)

        XCTAssertTrue(drainAll(&queue, pool: pool, spill: spill, step: 50_000).elementsEqual(StreamContent.octets(at: 0, count: 200_000)))
        XCTAssertEqual(pool.inUse, 0)
        // Budget back, but `other` has octets in its file: order first.
        appendOK(&other, StreamContent.octets(at: 10, count: 10), pool: pool, highWaterMark: 1_000_000, spill: spill)
        XCTAssertEqual(other.memoryOctets, 0)
        XCTAssertEqual(other.spilledOctets, 20)
        XCTAssertTrue(drainAll(&other, pool: pool, spill: spill).elementsEqual(StreamContent.octets(at: 0, count: 20)))
        appendOK(&other, StreamContent.octets(at: 20, count: 10), pool: pool, highWaterMark: 1_000_000, spill: spill)
        XCTAssertEqual(other.memoryOctets, 10)
        XCTAssertEqual(pool.inUse, 1)
    }

    func testZeroBudgetSpillsEverything() {
        let pool = ChunkPool(budgetBytes: 0)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: spill) }
        appendOK(&queue, StreamContent.octets(at: 0, count: 5), pool: pool, highWaterMark: 1_000, spill: spill)
        XCTAssertEqual(queue.memoryOctets, 0)
        XCTAssertEqual(queue.spilledOctets, 5)
        XCTAssertTrue(drainAll(&queue, pool: pool, spill: spill).elementsEqual(StreamContent.octets(at: 0, count: 5)))
    }

    // MARK: release

    func testReleaseReturnsChunksAndClosesTheSpillFile() throws {
        let pool = ChunkPool(budgetBytes: 8 * ChunkPool.chunkSize)
        var queue = OutputQueue()
        appendOK(&queue, StreamContent.octets(at: 0, count: 200_000), pool: pool, highWaterMark: 100_000, spill: spill)
        XCTAssertEqual(pool.inUse, 2)
        let fd = try onlySpillDescriptor()
        queue.release(pool: pool, spill: spill)
        XCTAssertEqual(pool.inUse, 0)
        XCTAssertTrue(queue.isEmpty)
        XCTAssertEqual(queue.memoryOctets, 0)
        XCTAssertEqual(queue.spilledOctets, 0)
        XCTAssertFalse(queue.hasSpillFile)
        guard case .empty = queue.front else { return XCTFail("front: \(queue.front)") }
        XCTAssertEqual(fcntl(fd, F_GETFD), -1, "spill descriptor \(fd) still open")
        XCTAssertEqual(errno, EBADF)
        XCTAssertEqual(descriptors(in: directory).count, 0)

        // A released queue is as good as new; releasing again is harmless.
        appendOK(&queue, StreamContent.octets(at: 0, count: 10), pool: pool, highWaterMark: 100_000, spill: spill)
        XCTAssertEqual(queue.memoryOctets, 10)
        XCTAssertTrue(drainAll(&queue, pool: pool, spill: spill).elementsEqual(StreamContent.octets(at: 0, count: 10)))
        queue.release(pool: pool, spill: spill)
        queue.release(pool: pool, spill: spill)
        XCTAssertEqual(pool.inUse, 0)
    }

    // MARK: SpillDirectory

    func testSpillFilesAreUnnamed() throws {
        let pool = ChunkPool(budgetBytes: 8 * ChunkPool.chunkSize)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: spill) }
        appendOK(&queue, StreamContent.octets(at: 0, count: 100), pool: pool, highWaterMark: 0, spill: spill)
        XCTAssertTrue(queue.hasSpillFile)
        XCTAssertEqual(directoryEntries(directory), [])
        let open = descriptors(in: directory)
        XCTAssertEqual(open.count, 1)
        XCTAssertTrue(open.allSatisfy { $0.target.hasSuffix(" (deleted)") }, "\(open)")

        switch spill.makeFile() {
        case .failure(let error):
            XCTFail("makeFile in \(directory): \(error)")
        case .success(let fd):
            defer { spill.closeFile(fd, allocated: 0) }
            XCTAssertEqual(directoryEntries(directory), [])
            var info = stat()
            XCTAssertEqual(fstat(fd, &info), 0)
            XCTAssertEqual(info.st_nlink, 0, "the file still has a name")
            XCTAssertEqual(info.st_mode & S_IFMT, S_IFREG)
            XCTAssertNotEqual(fcntl(fd, F_GETFD) & FD_CLOEXEC, 0, "spill file inherited across exec")
            let written = [UInt8](repeating: 0x41, count: 64)
            XCTAssertEqual(written.withUnsafeBytes { pwrite(fd, $0.baseAddress!, 64, 0) }, 64)
            XCTAssertEqual(readFile(fd, offset: 0, count: 64), written)
        }
    }

    func testMissingSpillDirectoryFails() {
        let missing = SpillStore(directory: "/nonexistent/dir", maxBytes: 1 << 20, maxFiles: 4)
        switch missing.makeFile() {
        case .success(let fd):
            close(fd)
            XCTFail("made a spill file in /nonexistent/dir")
        case .failure(let error):
            XCTAssertEqual(error, .system(Errno(ENOENT)))
        }
        XCTAssertEqual(missing.openFiles, 0, "a failed open gives its descriptor back")
    }

    func testSpillDirectoryThatIsAFileFails() {
        let path = directory + "/plain"
        let fd = open(path, O_CREAT | O_WRONLY, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        close(fd)
        switch SpillStore(directory: path, maxBytes: 1 << 20, maxFiles: 4).makeFile() {
        case .success(let made):
            close(made)
            XCTFail("made a spill file under a plain file")
        case .failure(let error):
            XCTAssertEqual(error, .system(Errno(ENOTDIR)))
        }
    }

    func testAppendReturnsTheErrorWhenItMustSpillToAMissingDirectory() {
        let missing = SpillStore(directory: "/nonexistent/dir", maxBytes: 1 << 20, maxFiles: 4)
        let pool = ChunkPool(budgetBytes: 8 * ChunkPool.chunkSize)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: missing) }
        // Below the mark no file is needed.
        let fits = StreamContent.octets(at: 0, count: 60).withUnsafeBytes {
            queue.append($0, pool: pool, highWaterMark: 100, spill: missing)
        }
        XCTAssertNil(fits)
        let spills = StreamContent.octets(at: 60, count: 240).withUnsafeBytes {
            queue.append($0, pool: pool, highWaterMark: 100, spill: missing)
        }
        XCTAssertEqual(spills, .failed(.system(Errno(ENOENT))), "a missing directory is not a passing condition")
        XCTAssertFalse(queue.hasSpillFile)
        XCTAssertEqual(queue.spilledOctets, 0)
        XCTAssertEqual(queue.memoryOctets, 100, "what fitted under the mark stays queued")

        let noBudget = ChunkPool(budgetBytes: 0)
        var starved = OutputQueue()
        defer { starved.release(pool: noBudget, spill: missing) }
        let failure = StreamContent.octets(at: 0, count: 1).withUnsafeBytes {
            starved.append($0, pool: noBudget, highWaterMark: 100, spill: missing)
        }
        XCTAssertEqual(failure, .failed(.system(Errno(ENOENT))))
        XCTAssertTrue(starved.isEmpty)
    }
}
