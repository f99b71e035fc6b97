#if canImport(Glibc)
import Glibc
#endif
import Synchronization

/// A mutex for the cold paths (start-up, shutdown, test tallies), built on
/// `pthread_mutex_t` so ThreadSanitizer understands it. The hot path takes no
/// locks at all.
public final class Lock<Value>: @unchecked Sendable {
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private var value: Value

    public init(_ value: Value) {
        self.value = value
        pthread_mutex_init(mutex, nil)
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    public func withLock<Result, Failure: Error>(_ body: (inout Value) throws(Failure) -> Result) throws(Failure) -> Result {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&value)
    }
}

extension Atomic where Value == Int {
    /// Adds `delta` to a counter that only the calling thread writes: a
    /// relaxed load and store, no read-modify-write, no lock. Other threads may
    /// read it at any time (relaxed loads) for live figures.
    @inline(__always)
    public func addFromOwner(_ delta: Int = 1) {
        store(load(ordering: .relaxed) &+ delta, ordering: .relaxed)
    }
}
