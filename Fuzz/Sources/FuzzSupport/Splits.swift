// The parsers' targets feed one payload twice: whole, and split where the
// fuzzer says. Layout of an input: one byte `n` (taken modulo 16), then `n`
// bytes of chunk lengths (each byte `b` is a chunk of `b + 1` octets, the
// lengths repeating as long as the payload lasts), then the payload. With
// `n` = 0 the split is the whole payload in one piece.

/// A payload and the chunks the fuzzer cut it into.
public struct SplitInput {
    public let payload: UnsafeRawBufferPointer
    private let lengths: UnsafeRawBufferPointer

    public init(_ input: inout FuzzInput) {
        let count = Int(input.byte() % 16)
        lengths = input.bytes(upTo: count)
        payload = input.rest()
    }

    /// The chunks in order, with the offset of each in the payload.
    public var chunks: Chunks { Chunks(payload: payload, lengths: lengths) }

    /// Iterates the chunks without allocating.
    public struct Chunks: Sequence, IteratorProtocol {
        let payload: UnsafeRawBufferPointer
        let lengths: UnsafeRawBufferPointer
        var offset = 0
        var lengthIndex = 0

        public mutating func next() -> (offset: Int, octets: UnsafeRawBufferPointer)? {
            guard offset < payload.count else { return nil }
            var count = payload.count - offset
            if !lengths.isEmpty {
                count = Swift.min(count, Int(lengths[lengthIndex % lengths.count]) + 1)
                lengthIndex += 1
            }
            defer { offset += count }
            return (offset, UnsafeRawBufferPointer(rebasing: payload[offset..<(offset + count)]))
        }
    }
}

/// The shortest prefix of `count` octets for which `decided` holds, found by
/// bisection, or nil if even the whole does not decide. `decided` must be
/// monotone (once a prefix decides, every longer one does): the targets
/// check that at the answer (the prefix one shorter must not decide).
public func shortestDecidingPrefix(count: Int, _ decided: (Int) -> Bool) -> Int? {
    guard decided(count) else { return nil }
    var low = 0, high = count  // decided(high); low may or may not be
    if decided(low) { return 0 }
    while high - low > 1 {
        let middle = low + (high - low) / 2
        if decided(middle) { high = middle } else { low = middle }
    }
    return high
}
