import CLibEv

/// `CLOCK_MONOTONIC`, read through the vDSO: no syscall, no allocation. Wall
/// time (libev's `ev_now`) can jump; deadlines must not.
public enum MonotonicClock {
    @inline(__always)
    public static func nanoseconds() -> Int64 {
        sixteen_monotonic_nanoseconds()
    }
}
