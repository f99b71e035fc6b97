import FuzzSupport
@testable import SixteenServer

// The reactor's `DeadlineHeap` (internal to SixteenServer, hence the
// testable import: see Fuzz/README.md) against a sorted array of
// (deadline, slot). The heap starts small (1-8 entries, and as many slot
// positions) so that growth happens; events decoded from the input:
// schedule a slot (new, or one that has a deadline: earlier or later),
// cancel one, pop one expired slot, pop all of them as the reactor does,
// shrink after a flood, let time pass. After EVERY event:
//
//  - the heap holds as many deadlines as the model, the same earliest, and
//    the slot the event touched has its model deadline (none once
//    cancelled or popped); after every pop-all and shrink, and at the end
//    of the input, EVERY slot has its model deadline (a scan of them all
//    after each event made the target five times slower: see checkAll);
//  - a pop takes a slot whose deadline is the earliest and is due, and
//    none when nothing is due; popping everything due gives deadlines that
//    never move backwards, and leaves nothing due;
//  - storage: never less than the count; a shrink halves the heap while a
//    quarter of it would do, never below 512 entries, and keeps every
//    deadline.
struct DeadlineHeapTarget {
    private let heap: DeadlineHeap
    /// (deadline, slot), ordered by deadline, then slot.
    private var model: [(deadline: Int64, slot: Int)] = []
    private var now: Int64 = 1_000_000_000

    init(_ input: inout FuzzInput) {
        heap = DeadlineHeap(capacity: input.choice(8) + 1)
        trace("capacity \(heap.heapCapacity)")
    }

    mutating func run(_ input: inout FuzzInput) {
        while !input.isAtEnd {
            switch input.choice(7) {
            case 0: schedule(slot(&input), at: deadline(&input))
            case 1 where !model.isEmpty: schedule(model[input.choice(model.count)].slot, at: deadline(&input))
            case 2: cancel(slot(&input))
            case 3: popOne()
            case 4: popAll()
            case 5: shrink(Int(input.uint16() % 4096))
            default:
                now &+= Int64(input.uint16())
                trace("now \(now)")
            }
            checkContents()
        }
        checkAll()
    }

    /// A slot: mostly among the first 16 (so they recur), sometimes up to 4 095.
    private func slot(_ input: inout FuzzInput) -> Int {
        input.choice(4) == 0 ? Int(input.uint16() % 4096) : input.choice(16)
    }

    /// A deadline: mostly near now (within ±128 µs steps), sometimes any 64-bit value.
    private func deadline(_ input: inout FuzzInput) -> Int64 {
        input.choice(8) == 0 ? Int64(bitPattern: input.uint64()) : now &+ (Int64(input.byte()) - 64) * 1_000
    }

    private mutating func schedule(_ slot: Int, at deadline: Int64) {
        trace("schedule \(slot) at \(deadline)")
        heap.schedule(slot, at: deadline)
        removeFromModel(slot)
        let index = model.firstIndex { ($0.deadline, $0.slot) > (deadline, slot) } ?? model.count
        model.insert((deadline, slot), at: index)
        invariant(heap.deadline(of: slot) == deadline, "a scheduled slot has the deadline it was given, replacing any it had")
    }

    private mutating func cancel(_ slot: Int) {
        trace("cancel \(slot)")
        heap.cancel(slot)
        removeFromModel(slot)
        invariant(heap.deadline(of: slot) == nil, "a cancelled slot has no deadline")
    }

    /// One pop: the earliest deadline if it is due, else nothing.
    @discardableResult
    private mutating func popOne() -> Int64? {
        let popped = heap.popExpired(now: now)
        trace("pop at \(now): \(popped.map(String.init) ?? "none")")
        guard let earliest = model.first, earliest.deadline <= now else {
            invariant(popped == nil, "nothing is popped when nothing is due", "popped \(popped!)")
            return nil
        }
        guard let popped, let index = model.firstIndex(where: { $0.slot == popped }) else {
            invariantBroken("a due deadline is popped", "slot \(earliest.slot) due at \(earliest.deadline), now \(now)")
        }
        let deadline = model[index].deadline
        invariant(deadline == earliest.deadline, "the popped slot's deadline is the earliest",
                  "popped \(popped) at \(deadline), earliest \(earliest.deadline)")
        model.remove(at: index)
        invariant(heap.deadline(of: popped) == nil, "a popped slot has no deadline")
        return deadline
    }

    /// Pops everything due, as the reactor does when its timer fires.
    private mutating func popAll() {
        var last = Int64.min
        while let deadline = popOne() {
            invariant(deadline >= last, "expired deadlines come out in order: they never move backwards", "\(deadline) after \(last)")
            last = deadline
        }
        invariant(heap.earliest.map { $0 > now } ?? true, "nothing due is left after popping everything due")
        checkAll()
    }

    /// The reactor's shrink after a flood: `slots` is the connection
    /// table's capacity, beyond which no slot has a deadline (the target
    /// keeps to that contract: it passes at least one past the highest).
    private func shrink(_ slots: Int) {
        let capacity = max(slots, (model.map(\.slot).max() ?? -1) + 1)
        trace("shrink to \(capacity) slots")
        let before = heap.heapCapacity
        heap.shrink(slotCapacity: capacity)
        let after = heap.heapCapacity
        invariant(after <= before && after >= heap.count, "a shrink never grows the heap nor drops below its count")
        invariant(after == before || after >= 512, "a shrink never goes below 512 entries")
        invariant(after / 2 < 512 || heap.count >= after / 4,
                  "a shrink halves the heap while a quarter of it would do and the half is 512 entries or more",
                  "\(heap.count) entries in \(after)")
        checkAll()
    }

    private mutating func removeFromModel(_ slot: Int) {
        if let index = model.firstIndex(where: { $0.slot == slot }) { model.remove(at: index) }
    }

    private func checkContents() {
        invariant(heap.count == model.count, "the heap holds as many deadlines as the model", "\(heap.count) against \(model.count)")
        invariant(heap.earliest == model.first?.deadline, "the earliest deadline is the model's",
                  "\(String(describing: heap.earliest)) against \(String(describing: model.first?.deadline))")
        invariant(heap.heapCapacity >= heap.count, "the heap's storage holds its entries")
    }

    /// Every slot's deadline against the model. Not after every event: it is
    /// linear in the heap, so quadratic over an input, and most of what the
    /// fuzzer would spend; a slot an event misplaces stays wrong until this
    /// scan (a later event that heals it would be a bug this misses).
    private func checkAll() {
        for (deadline, slot) in model {
            invariant(heap.deadline(of: slot) == deadline, "every slot has its model deadline",
                      "slot \(slot): \(String(describing: heap.deadline(of: slot))) against \(deadline)")
        }
    }
}
