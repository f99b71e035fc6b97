#if canImport(Glibc)
import Glibc
#endif

/// Whether two runs of octets are the same, compared by `memcmp`: a loop of
/// Swift comparisons is instrumented for the fuzzer octet by octet (one
/// `__sanitizer_cov_trace_cmp` call each), and the targets compare up to
/// 150 000 octets per event, which made that loop most of their time.
public func octetsEqual(_ octets: UnsafeRawBufferPointer, _ expected: ArraySlice<UInt8>) -> Bool {
    guard octets.count == expected.count else { return false }
    guard octets.count > 0 else { return true }
    return expected.withUnsafeBytes { memcmp(octets.baseAddress!, $0.baseAddress!, octets.count) == 0 }
}

/// `octetsEqual` for an array's octets.
public func octetsEqual(_ octets: [UInt8], _ expected: ArraySlice<UInt8>) -> Bool {
    octets.withUnsafeBytes { octetsEqual($0, expected) }
}
