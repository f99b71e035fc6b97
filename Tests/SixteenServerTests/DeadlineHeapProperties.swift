@testable import SixteenServer
import TestSupport
import XCTest

/// The reactor's deadline heap against its model, a dictionary of slot to
/// deadline, as a property with shrinking: for any sequence of schedules
/// (new, earlier and later), cancels, expiries and shrinks, the heap holds
/// exactly the model's deadlines, its earliest is the model's minimum, and
/// expiry at `now` pops every due slot, no other, earliest first. Slots
/// past the position table's initial 512 make it grow, and shrink back.
/// (`DeadlineHeapTests` runs one long random sequence; this one shrinks a
/// failure to the few operations that matter.)
final class DeadlineHeapProperties: XCTestCase {

    /// Sixteen slots, for heaps of four levels, and two past 512.
    static let slots = Array(0..<16) + [600, 1_300]

    /// (kind: 0 schedule, 1 cancel, 2 advance the clock and expire, 3 shrink
    /// to the slots in use; slot; amount: deadline ahead or time advanced).
    static var operations: Arbitrary<[(Int, Int, Int)]> {
        zip(
            Arbitrary<Int>.element(of: [0, 0, 0, 0, 1, 1, 2, 3]), Arbitrary<Int>.element(of: slots),
            Arbitrary<Int>.integer(in: 0...100)
        ).array(of: 0...100)
    }

    func testHeapHoldsExactlyTheModelsDeadlinesAndExpiresInOrder() {
        let names = ["schedule", "cancel", "expire", "shrink"]
        checkProperty(count: 1_000, Self.operations, describe: { $0.map { "\(names[$0.0]) \($0.1) \($0.2)" }.joined(separator: ", ") }) { operations in
            let heap = DeadlineHeap(capacity: 2)
            var model: [Int: Int64] = [:]
            var now: Int64 = 0
            for (step, (kind, slot, amount)) in operations.enumerated() {
                let what = "after operation \(step) (\(names[kind]) \(slot) \(amount))"
                switch kind {
                case 0:
                    heap.schedule(slot, at: now + Int64(amount))
                    model[slot] = now + Int64(amount)
                case 1:
                    heap.cancel(slot)
                    model[slot] = nil
                case 2:
                    now += Int64(amount)
                    var last = Int64.min
                    while let popped = heap.popExpired(now: now) {
                        guard let deadline = model.removeValue(forKey: popped) else {
                            throw PropertyFailure("\(what): popped \(popped), which had no deadline")
                        }
                        try require(deadline <= now, "\(what): popped \(popped) due at \(deadline), now \(now)")
                        try require(deadline >= last, "\(what): popped \(deadline) after \(last)")
                        last = deadline
                    }
                    try require(!model.values.contains { $0 <= now }, "\(what): due deadlines left: \(model.filter { $0.value <= now })")
                default:
                    // The connection table's capacity now: past every slot in use.
                    heap.shrink(slotCapacity: (model.keys.max() ?? 0) + 1)
                }
                try requireEqual(heap.count, model.count, "count \(what)")
                try requireEqual(heap.earliest, model.values.min(), "earliest \(what)")
                for slot in Self.slots {
                    try requireEqual(heap.deadline(of: slot), model[slot], "slot \(slot)'s deadline \(what)")
                }
            }
        }
    }
}
