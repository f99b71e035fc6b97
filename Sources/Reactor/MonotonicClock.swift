import CLibEv

/// `CLOCK_MONOTONIC`, read through the vDSO: no syscall, no allocation. Wall
/// time (libev's `ev_now`) can jump; deadlines must not.
public enum MonotonicClock {
    /// Inlinable, so the C function inlines into callers in other modules
    /// (the reactors read the clock twice per loop iteration).
    @inlinable
    public static func nanoseconds() -> Int64 {
        sixteen_monotonic_nanoseconds()
    }
}
