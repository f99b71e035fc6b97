import Reactor
import SixteenProtocol
import Synchronization

/// Counts one worker keeps; only its thread writes them, anyone may read.
final class LoadCounters: Sendable {
    let started = Atomic<Int>(0)
    let inFlight = Atomic<Int>(0)
    let octetsSent = Atomic<Int>(0)
    let octetsReceived = Atomic<Int>(0)
    let connected = Atomic<Int>(0)
    /// Sessions the schedule called for that never started (the open loop's `-d`).
    let dropped = Atomic<Int>(0)
    private let outcomes = (0..<LoadOutcome.allCases.count).map { _ in AtomicBox() }

    final class AtomicBox: Sendable {
        let value = Atomic<Int>(0)
    }

    @inline(__always)
    func add(_ counter: borrowing Atomic<Int>, _ delta: Int = 1) {
        counter.addFromOwner(delta)
    }

    func count(_ outcome: LoadOutcome) {
        add(outcomes[Self.index(outcome)].value)
    }

    func outcomeCount(_ outcome: LoadOutcome) -> Int {
        outcomes[Self.index(outcome)].value.load(ordering: .relaxed)
    }

    private static func index(_ outcome: LoadOutcome) -> Int {
        LoadOutcome.allCases.firstIndex(of: outcome)!
    }
}
