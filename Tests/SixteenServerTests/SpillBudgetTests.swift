#if canImport(Glibc)
import Glibc
#endif
import Reactor
@testable import SixteenServer
import TestSupport
import XCTest

/// `SpillStore` and the queue's side of it: disk space taken ahead in
/// extents within `--max-spill`, spill descriptors within their reserve, and
/// what an append says when room ahead is refused.
final class SpillBudgetTests: XCTestCase {
    private var directory = ""
    private let extent = 1 << 20

    override func setUpWithError() throws {
        try super.setUpWithError()
        directory = try makeTemporaryDirectory(prefix: "sixteen-spill-budget")
    }

    override func tearDown() {
        rmdir(directory)
        super.tearDown()
    }

    private func append(_ queue: inout OutputQueue, _ count: Int, pool: ChunkPool, spill: SpillStore) -> AppendOutcome? {
        let octets = [UInt8](repeating: 0x41, count: count)
        return octets.withUnsafeBytes { queue.append($0, pool: pool, highWaterMark: 0, spill: spill) }
    }

    func testRoomIsTakenAheadAndGivenBackWhenTheFileDrains() {
        let spill = SpillStore(directory: directory, maxBytes: 4 * extent, maxFiles: 4)
        let pool = ChunkPool(budgetBytes: 0)
        var queue = OutputQueue()
        XCTAssertNil(append(&queue, 100, pool: pool, spill: spill))
        XCTAssertEqual(spill.allocatedBytes, 2 * extent, "the extent the octets need, and one ahead")
        XCTAssertEqual(spill.openFiles, 1)
        XCTAssertTrue(queue.hasRoom(spill))
        XCTAssertNil(append(&queue, extent, pool: pool, spill: spill))
        XCTAssertEqual(spill.allocatedBytes, 3 * extent)
        queue.consume(100 + extent, pool: pool, spill: spill)
        XCTAssertEqual(spill.allocatedBytes, 0, "a drained file is truncated and its room given back")
        XCTAssertEqual(spill.openFiles, 1, "the file stays open for the next spill")
        queue.release(pool: pool, spill: spill)
        XCTAssertEqual(spill.openFiles, 0)
        XCTAssertEqual(spill.allocatedBytes, 0)
    }

    func testRoomAheadRefusedByTheBudgetStillStoresWhatWasGiven() {
        let spill = SpillStore(directory: directory, maxBytes: extent, maxFiles: 4)
        let pool = ChunkPool(budgetBytes: 0)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: spill) }
        XCTAssertEqual(append(&queue, 100, pool: pool, spill: spill), .stored(without: .overBudget(extent)))
        XCTAssertEqual(queue.spilledOctets, 100)
        XCTAssertFalse(queue.hasRoom(spill), "no extent ahead: the caller stops reading")
        XCTAssertEqual(queue.makeRoom(spill), .overBudget(extent))
        XCTAssertEqual(spill.allocatedBytes, extent, "never past --max-spill")
        // What is already in the budget's extent still fits, still without room ahead.
        XCTAssertEqual(append(&queue, 1_000, pool: pool, spill: spill), .stored(without: .overBudget(extent)))
        XCTAssertEqual(queue.spilledOctets, 1_100)
    }

    func testAFirstSpillWithNoRoomWaitsInMemoryWhileTheFileIsEmpty() {
        let spill = SpillStore(directory: directory, maxBytes: 0, maxFiles: 4)
        let pool = ChunkPool(budgetBytes: 2 * ChunkPool.chunkSize)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: spill) }
        XCTAssertEqual(append(&queue, 5_000, pool: pool, spill: spill), .stored(without: .overBudget(0)))
        XCTAssertEqual(queue.memoryOctets, 5_000, "kept in memory past the high-water mark (0), within the pool")
        XCTAssertEqual(queue.spilledOctets, 0)
        // Beyond what the pool can hold, the octets cannot be stored.
        XCTAssertEqual(append(&queue, 3 * ChunkPool.chunkSize, pool: pool, spill: spill), .failed(.noMemory))
    }

    func testSpillDescriptorsStayWithinTheirReserve() {
        let spill = SpillStore(directory: directory, maxBytes: 8 * extent, maxFiles: 1)
        let pool = ChunkPool(budgetBytes: 4 * ChunkPool.chunkSize)
        var first = OutputQueue()
        var second = OutputQueue()
        XCTAssertNil(append(&first, 10, pool: pool, spill: spill))
        XCTAssertEqual(append(&second, 10, pool: pool, spill: spill), .stored(without: .noDescriptor(1)))
        XCTAssertEqual(second.memoryOctets, 10)
        XCTAssertEqual(second.makeRoom(spill), .noDescriptor(1))
        first.release(pool: pool, spill: spill)
        XCTAssertNil(second.makeRoom(spill), "the first file closed: its descriptor is free")
        XCTAssertTrue(second.hasRoom(spill))
        second.release(pool: pool, spill: spill)
        XCTAssertEqual(spill.openFiles, 0)
        XCTAssertEqual(spill.allocatedBytes, 0)
    }

    func testTransientFailuresAreTheOnesWorthRetrying() {
        XCTAssertTrue(StorageFailure.system(Errno(ENOSPC)).isTransient)
        XCTAssertTrue(StorageFailure.system(Errno(EDQUOT)).isTransient)
        XCTAssertTrue(StorageFailure.overBudget(1).isTransient)
        XCTAssertTrue(StorageFailure.noDescriptor(1).isTransient)
        XCTAssertFalse(StorageFailure.system(Errno(EFBIG)).isTransient)
        XCTAssertFalse(StorageFailure.system(Errno(EIO)).isTransient)
        XCTAssertEqual(StorageFailure.overBudget(1024).description, "the spill budget (--max-spill 1024) is spent")
    }

    func testTheDefaultBudgetIsHalfTheFreeSpaceAtMostEightGiB() {
        var stats = statvfs()
        XCTAssertEqual(statvfs(directory, &stats), 0)
        let free = Int(stats.f_bavail) * Int(stats.f_frsize)
        XCTAssertEqual(SpillStore.defaultBudget(for: directory), min(8 << 30, free / 2))
        XCTAssertEqual(SpillStore.defaultBudget(for: "/nonexistent"), 1 << 30)
    }
}
