@testable import SixteenServer
import TestSupport
import XCTest

/// The reactor's deadline heap against a plain dictionary model.
final class DeadlineHeapTests: XCTestCase {
    func testExpiresInDeadlineOrderAndOnlyWhenDue() {
        let heap = DeadlineHeap(capacity: 2)
        heap.schedule(7, at: 300)
        heap.schedule(3, at: 100)
        heap.schedule(9, at: 200)
        XCTAssertEqual(heap.earliest, 100)
        XCTAssertNil(heap.popExpired(now: 99))
        XCTAssertEqual(heap.popExpired(now: 250), 3)
        XCTAssertEqual(heap.popExpired(now: 250), 9)
        XCTAssertNil(heap.popExpired(now: 250))
        XCTAssertEqual(heap.count, 1)
        XCTAssertEqual(heap.deadline(of: 7), 300)
        XCTAssertNil(heap.deadline(of: 3))
    }

    func testRescheduleMovesASlotEitherWayAndCancelRemovesIt() {
        let heap = DeadlineHeap()
        for slot in 0..<10 { heap.schedule(slot, at: Int64(100 + slot)) }
        heap.schedule(0, at: 1_000)   // later
        heap.schedule(9, at: 1)       // earlier
        heap.cancel(5)
        heap.cancel(5)                // twice: no effect
        heap.cancel(12_345)           // never scheduled: no effect
        var order: [Int] = []
        while let slot = heap.popExpired(now: .max) { order.append(slot) }
        XCTAssertEqual(order, [9, 1, 2, 3, 4, 6, 7, 8, 0])
    }

    /// Fuzz/DeadlineHeap, "a shrink never goes below 512 entries": a heap
    /// grown from 3 entries doubles to 768, and halving it while a quarter
    /// would do took it to 384. It now stops at 768, keeping every deadline.
    func testShrinkNeverGoesBelow512EntriesWhateverTheStartingCapacity() {
        let heap = DeadlineHeap(capacity: 3)
        for slot in 0..<600 { heap.schedule(slot, at: Int64(slot)) }
        XCTAssertEqual(heap.heapCapacity, 768)  // 3 doubled eight times
        while heap.count > 100, heap.popExpired(now: .max) != nil {}
        XCTAssertEqual(heap.count, 100)
        heap.shrink(slotCapacity: 4096)
        XCTAssertEqual(heap.heapCapacity, 768, "768 / 2 is below the 512-entry floor")
        for slot in 500..<600 { XCTAssertEqual(heap.deadline(of: slot), Int64(slot)) }

        // From 512 it halves as before: 4096 with 100 entries comes down to 512.
        let fromDefault = DeadlineHeap()
        for slot in 0..<3_000 { fromDefault.schedule(slot, at: Int64(slot)) }
        XCTAssertEqual(fromDefault.heapCapacity, 4096)
        while fromDefault.count > 100, fromDefault.popExpired(now: .max) != nil {}
        fromDefault.shrink(slotCapacity: 4096)
        XCTAssertEqual(fromDefault.heapCapacity, 512)
    }

    func testRandomOperationsMatchAModel() {
        var random = SplitMix64(seed: 42)
        let heap = DeadlineHeap(capacity: 4)
        var model: [Int: Int64] = [:]
        var now: Int64 = 0
        for _ in 0..<20_000 {
            let slot = random.next(in: 0...3_000)   // beyond the initial position capacity
            switch random.next(in: 0...9) {
            case 0...4:
                let deadline = now + Int64(random.next(in: 0...1_000))
                heap.schedule(slot, at: deadline)
                model[slot] = deadline
            case 5...6:
                heap.cancel(slot)
                model[slot] = nil
            default:
                now += Int64(random.next(in: 0...300))
                var expired: [Int] = []
                var last = Int64.min
                while let popped = heap.popExpired(now: now) {
                    let deadline = model.removeValue(forKey: popped)
                    XCTAssertNotNil(deadline, "popped \(popped), which had no deadline")
                    XCTAssertLessThanOrEqual(deadline ?? .max, now)
                    XCTAssertGreaterThanOrEqual(deadline ?? .min, last, "out of order")
                    last = deadline ?? last
                    expired.append(popped)
                }
                XCTAssertFalse(model.values.contains { $0 <= now }, "a due deadline was not popped")
            }
            XCTAssertEqual(heap.count, model.count)
            XCTAssertEqual(heap.earliest, model.values.min())
        }
        for (slot, deadline) in model { XCTAssertEqual(heap.deadline(of: slot), deadline) }
    }
}
