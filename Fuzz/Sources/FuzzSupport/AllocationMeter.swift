import CFuzzSupport

/// What a stretch of code allocates, from AddressSanitizer's allocator: the
/// parsers' targets use it for "bounded memory" (live bytes held between
/// events) and "no allocation" claims, and to catch work that grows faster
/// than the input (bytes allocated over a whole parse).
public enum AllocationMeter {
    private static let installed: Bool = fuzz_allocation_meter_install() != 0

    /// Bytes allocated since the process started (never decreases).
    public static var totalBytes: Int {
        ensureInstalled()
        return Int(fuzz_allocation_meter_total_bytes())
    }

    /// Bytes allocated and not freed, now.
    public static var liveBytes: Int {
        Int(fuzz_allocation_meter_live_bytes())
    }

    private static func ensureInstalled() {
        invariant(installed, "the allocation meter has AddressSanitizer's malloc hook (build with --sanitize address)")
    }
}
