#if canImport(Glibc)
import Glibc
#endif

/// `CLOCK_MONOTONIC`, read through the vDSO: no syscall, no allocation. Wall
/// time (libev's `ev_now`) can jump; deadlines must not.
public enum MonotonicClock {
    public static func nanoseconds() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }
}
