import Synchronization

/// A block of counter cells that one thread writes and any thread reads.
///
/// The writer is the reactor that owns them: a relaxed load and a relaxed
/// store, with no lock and no read-modify-write, so recording costs what an
/// increment of a plain integer costs. Readers (a scrape, the totals) load
/// each cell relaxed: every value is one the writer stored, and a sum over
/// cells is a snapshot, not a transaction.
public struct CounterCells: @unchecked Sendable {
    private let base: UnsafeMutablePointer<Atomic<Int>>
    public let count: Int

    /// New cells, all 0. A plain value over memory that an owner object
    /// (`ReactorMetrics`) frees when it goes: copies may be kept for speed
    /// only by those who keep the owner alive.
    public init(count: Int) {
        self.count = count
        base = .allocate(capacity: max(count, 1))
        for index in 0..<max(count, 1) {
            (base + index).initialize(to: Atomic(0))
        }
    }

    /// Adds `delta` to cell `index`. Only the owning thread may call it.
    @inline(__always)
    public func add(_ index: Int, _ delta: Int = 1) {
        let cell = base + index
        cell.pointee.store(cell.pointee.load(ordering: .relaxed) &+ delta, ordering: .relaxed)
    }

    /// Sets cell `index` (a gauge). Only the owning thread may call it.
    @inline(__always)
    public func set(_ index: Int, _ value: Int) {
        (base + index).pointee.store(value, ordering: .relaxed)
    }

    /// The current value of cell `index`; any thread.
    public func load(_ index: Int) -> Int {
        (base + index).pointee.load(ordering: .relaxed)
    }

    /// For the owner object's `deinit` only.
    func deallocate() {
        base.deinitialize(count: max(count, 1))
        base.deallocate()
    }
}

/// Typed access to an owner's cells: `counts.add(.spillFiles)`.
public struct Counts<Set: CountSet>: @unchecked Sendable {
    public let cells: CounterCells

    public init() {
        cells = CounterCells(count: Set.allCases.count)
    }

    /// A typed view of cells made for `Set` elsewhere.
    public init(cells: CounterCells) {
        precondition(cells.count == Set.allCases.count, "cells made for another set of counts")
        self.cells = cells
    }

    func deallocate() { cells.deallocate() }

    @inline(__always)
    public func add(_ count: Set, _ delta: Int = 1) { cells.add(count.cell, delta) }

    @inline(__always)
    public func set(_ count: Set, _ value: Int) { cells.set(count.cell, value) }

    public func load(_ count: Set) -> Int { cells.load(count.cell) }
}

/// One histogram's cells: a count per bucket (not cumulative), +Inf last,
/// then the sum of the observations in nanoseconds, then their number.
public struct HistogramCells: @unchecked Sendable {
    public let declaration: HistogramDeclaration
    private let cells: CounterCells
    /// A copy of the bounds in memory of our own: no array access (bounds
    /// checks, reference counting) when recording.
    private let bounds: UnsafeMutablePointer<Int64>
    private let boundCount: Int

    public init(_ declaration: HistogramDeclaration) {
        self.declaration = declaration
        boundCount = declaration.bounds.count
        bounds = .allocate(capacity: max(boundCount, 1))
        for (index, bound) in declaration.bounds.enumerated() { bounds[index] = bound }
        cells = CounterCells(count: boundCount + 3)
    }

    /// Counts one observation of `nanoseconds`. Only the owning thread.
    @inline(__always)
    public func record(_ nanoseconds: Int64) {
        var bucket = 0
        while bucket < boundCount && nanoseconds > bounds[bucket] { bucket += 1 }
        cells.add(bucket)
        cells.add(boundCount + 1, Int(max(nanoseconds, 0)))
        cells.add(boundCount + 2)
    }

    func deallocate() {
        cells.deallocate()
        bounds.deallocate()
    }

    /// The per-bucket counts (+Inf last), the sum in nanoseconds, and the count.
    public func load() -> (buckets: [Int], sumNanoseconds: Int, count: Int) {
        let buckets = (0...boundCount).map { cells.load($0) }
        return (buckets, cells.load(boundCount + 1), cells.load(boundCount + 2))
    }
}
