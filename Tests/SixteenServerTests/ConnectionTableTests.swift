@testable import SixteenServer
import XCTest

/// The connection table's chunks: grown on demand, given back after staying
/// empty, and repacked lowest slot first.
final class ConnectionTableTests: XCTestCase {
    private let size = ConnectionTable<Int>.chunkSize

    private func fill(_ table: ConnectionTable<Int>, _ count: Int) -> [Int] {
        (0..<count).map { _ in
            let slot = table.acquire()
            table[slot].pointee.fd = 100  // in use
            return slot
        }
    }

    func testEmptyChunksAreGivenBackAfterTheirBeatsAndTheFirstStays() {
        let table = ConnectionTable(blank: 0)
        let slots = fill(table, 4 * size)
        XCTAssertEqual(table.chunksHeld, 4)
        slots.forEach(table.release)
        for beat in 1..<5 {
            XCTAssertFalse(table.shrink(afterEmptyBeats: 5), "beat \(beat)")
        }
        XCTAssertTrue(table.shrink(afterEmptyBeats: 5))
        XCTAssertEqual(table.chunksHeld, 1)
        XCTAssertEqual(table.capacity, size)
        XCTAssertEqual(table.activeCount, 0)
        XCTAssertEqual(fill(table, 3), [0, 1, 2], "lowest slots first after a rebuild")
    }

    /// The chunk directory starts with room for four and doubles: nine
    /// chunks, all given back but the first, then nine again.
    func testTheDirectoryGrowsPastItsFirstRoomAndShrinksBack() {
        let table = ConnectionTable(blank: 0)
        let slots = fill(table, 9 * size)
        XCTAssertEqual(slots, Array(0..<(9 * size)))
        XCTAssertEqual(table.chunksHeld, 9)
        XCTAssertEqual(table.capacity, 9 * size)
        slots.forEach(table.release)
        for _ in 0..<4 { XCTAssertFalse(table.shrink(afterEmptyBeats: 5)) }
        XCTAssertTrue(table.shrink(afterEmptyBeats: 5))
        XCTAssertEqual(table.chunksHeld, 1)
        XCTAssertEqual(table.capacity, size)
        XCTAssertEqual(fill(table, 9 * size), Array(0..<(9 * size)))
        XCTAssertEqual(table.chunksHeld, 9)
        XCTAssertEqual(table.activeCount, 9 * size)
    }

    func testAChunkInUseIsKeptAndItsEmptyCountStartsOver() {
        let table = ConnectionTable(blank: 0)
        let slots = fill(table, 3 * size)
        let kept = slots[2 * size + 7]
        for slot in slots where slot != kept { table.release(slot) }
        for _ in 0..<5 { _ = table.shrink(afterEmptyBeats: 5) }
        XCTAssertEqual(table.chunksHeld, 2, "chunk 0 and the chunk in use")
        XCTAssertEqual(table.capacity, 3 * size, "a hole in the middle keeps the slot numbers")
        XCTAssertEqual(table[kept].pointee.fd, 100)
        // Free slots go first, lowest first; then the table grows into the hole.
        let again = fill(table, 2 * size)
        XCTAssertEqual(Array(again.prefix(size)), Array(0..<size))
        XCTAssertEqual(Array(again[size..<(2 * size - 1)]), (2 * size..<3 * size).filter { $0 != kept })
        XCTAssertEqual(again.last, size, "the middle chunk came back")
        XCTAssertEqual(table.chunksHeld, 3)
        var active: [Int] = []
        table.forEachActive { active.append($0) }
        XCTAssertEqual(active.count, 2 * size + 1)
    }

    func testABusyTableKeepsItsChunks() {
        let table = ConnectionTable(blank: 0)
        var slots = fill(table, 2 * size)
        for beat in 0..<20 {
            // The load comes and goes within every beat: never 5 empty beats in a row.
            slots.forEach(table.release)
            if beat % 3 != 2 { XCTAssertFalse(table.shrink(afterEmptyBeats: 5)) }
            slots = fill(table, 2 * size)
            _ = table.shrink(afterEmptyBeats: 5)
        }
        XCTAssertEqual(table.chunksHeld, 2)
        slots.forEach(table.release)
    }
}
