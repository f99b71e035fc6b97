/// Every connection's deadline of one reactor, in one binary min-heap driven
/// by a single libev timer (libev's manual, "be smart about timeouts"): a
/// connection needs no `ev_timer` of its own (48 bytes, plus libev's 16-byte
/// heap entry), only a 12-byte entry here and a 4-byte position.
///
/// Storage grows by doubling and never shrinks, so once the reactor has seen
/// its peak number of connections, scheduling allocates nothing.
final class DeadlineHeap {
    private var deadlines: UnsafeMutablePointer<Int64>
    private var slots: UnsafeMutablePointer<Int32>
    private var capacity: Int
    /// Each slot's index in the heap, or -1.
    private var positions: UnsafeMutablePointer<Int32>
    private var positionCapacity: Int
    private(set) var count = 0

    init(capacity: Int = 512) {
        self.capacity = max(capacity, 1)
        deadlines = .allocate(capacity: self.capacity)
        slots = .allocate(capacity: self.capacity)
        positionCapacity = max(capacity, 1)
        positions = .allocate(capacity: positionCapacity)
        positions.initialize(repeating: -1, count: positionCapacity)
    }

    deinit {
        deadlines.deallocate()
        slots.deallocate()
        positions.deallocate()
    }

    /// The earliest deadline, if any.
    var earliest: Int64? { count > 0 ? deadlines[0] : nil }

    /// `slot`'s deadline, if it has one.
    func deadline(of slot: Int) -> Int64? {
        guard slot < positionCapacity, positions[slot] >= 0 else { return nil }
        return deadlines[Int(positions[slot])]
    }

    /// Sets `slot`'s deadline, replacing any it had.
    func schedule(_ slot: Int, at deadline: Int64) {
        ensurePosition(for: slot)
        if positions[slot] >= 0 {
            let index = Int(positions[slot])
            let earlier = deadline < deadlines[index]
            deadlines[index] = deadline
            if earlier { siftUp(index) } else { siftDown(index) }
            return
        }
        if count == capacity { grow() }
        deadlines[count] = deadline
        slots[count] = Int32(slot)
        positions[slot] = Int32(count)
        count += 1
        siftUp(count - 1)
    }

    /// Removes `slot`'s deadline, if it has one.
    func cancel(_ slot: Int) {
        guard slot < positionCapacity, positions[slot] >= 0 else { return }
        remove(at: Int(positions[slot]))
    }

    /// Removes and returns a slot whose deadline is at or before `now`.
    func popExpired(now: Int64) -> Int? {
        guard count > 0, deadlines[0] <= now else { return nil }
        let slot = Int(slots[0])
        remove(at: 0)
        return slot
    }

    private func remove(at index: Int) {
        positions[Int(slots[index])] = -1
        count -= 1
        guard index != count else { return }
        move(from: count, to: index)
        if index > 0 && deadlines[index] < deadlines[(index - 1) / 2] { siftUp(index) } else { siftDown(index) }
    }

    private func move(from source: Int, to target: Int) {
        deadlines[target] = deadlines[source]
        slots[target] = slots[source]
        positions[Int(slots[target])] = Int32(target)
    }

    private func swapAt(_ a: Int, _ b: Int) {
        let deadline = deadlines[a], slot = slots[a]
        deadlines[a] = deadlines[b]
        slots[a] = slots[b]
        deadlines[b] = deadline
        slots[b] = slot
        positions[Int(slots[a])] = Int32(a)
        positions[Int(slots[b])] = Int32(b)
    }

    private func siftUp(_ start: Int) {
        var index = start
        while index > 0 {
            let parent = (index - 1) / 2
            guard deadlines[index] < deadlines[parent] else { return }
            swapAt(index, parent)
            index = parent
        }
    }

    private func siftDown(_ start: Int) {
        var index = start
        while true {
            let left = 2 * index + 1
            guard left < count else { return }
            let right = left + 1
            let child = right < count && deadlines[right] < deadlines[left] ? right : left
            guard deadlines[child] < deadlines[index] else { return }
            swapAt(index, child)
            index = child
        }
    }

    private func grow() {
        resize(to: capacity * 2)
    }

    /// After a flood: gives back what the heap and the position table hold
    /// beyond need. The heap halves while a quarter of it would do (never
    /// below 512 entries); positions shrink to `slots`, the connection
    /// table's capacity now (every slot beyond it is gone, so has no deadline).
    func shrink(slotCapacity slots: Int) {
        var target = capacity
        // Halving stops where the half would pass the floor, whatever the
        // capacity started at: a heap grown from 3 entries reaches 768, and
        // 768 / 2 is below 512 (found by Fuzz/DeadlineHeap).
        while target / 2 >= 512 && count < target / 4 { target /= 2 }
        if target < capacity { resize(to: target) }
        let positionTarget = max(512, slots)
        guard positionTarget < positionCapacity else { return }
        let newPositions = UnsafeMutablePointer<Int32>.allocate(capacity: positionTarget)
        newPositions.moveInitialize(from: positions, count: positionTarget)
        (positions + positionTarget).deinitialize(count: positionCapacity - positionTarget)
        positions.deallocate()
        positions = newPositions
        positionCapacity = positionTarget
    }

    /// Entries the heap can hold without growing.
    var heapCapacity: Int { capacity }

    private func resize(to size: Int) {
        let newDeadlines = UnsafeMutablePointer<Int64>.allocate(capacity: size)
        let newSlots = UnsafeMutablePointer<Int32>.allocate(capacity: size)
        newDeadlines.moveInitialize(from: deadlines, count: count)
        newSlots.moveInitialize(from: slots, count: count)
        deadlines.deallocate()
        slots.deallocate()
        deadlines = newDeadlines
        slots = newSlots
        capacity = size
    }

    /// The check inlines into `schedule` (twice per session); the growth,
    /// once per doubling of the connection table, stays out of line.
    @inline(__always)
    private func ensurePosition(for slot: Int) {
        if slot >= positionCapacity { growPositions(toHold: slot) }
    }

    @inline(never)
    private func growPositions(toHold slot: Int) {
        var larger = positionCapacity * 2
        while larger <= slot { larger *= 2 }
        let newPositions = UnsafeMutablePointer<Int32>.allocate(capacity: larger)
        newPositions.moveInitialize(from: positions, count: positionCapacity)
        (newPositions + positionCapacity).initialize(repeating: -1, count: larger - positionCapacity)
        positions.deallocate()
        positions = newPositions
        positionCapacity = larger
    }
}
