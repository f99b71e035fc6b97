// The fuzzer's bytes, read front to back as a little program: each target
// reads its configuration first, then one event at a time. Reading past the
// end yields zeros (and `isAtEnd`), so every input, however short, decodes
// to some program and a mutation anywhere changes only what follows it.

/// A cursor over the bytes libFuzzer passes to `LLVMFuzzerTestOneInput`.
public struct FuzzInput {
    private let bytes: UnsafeRawBufferPointer
    private var index = 0

    public init(_ data: UnsafeRawPointer?, _ count: Int) {
        bytes = UnsafeRawBufferPointer(start: count > 0 ? data : nil, count: count)
    }

    /// Whether every byte has been read.
    public var isAtEnd: Bool { index >= bytes.count }

    /// Bytes left.
    public var remainingCount: Int { bytes.count - index }

    /// The next byte, or 0 past the end.
    public mutating func byte() -> UInt8 {
        guard index < bytes.count else { return 0 }
        defer { index += 1 }
        return bytes[index]
    }

    /// The next two bytes, big-endian.
    public mutating func uint16() -> UInt16 {
        UInt16(byte()) << 8 | UInt16(byte())
    }

    /// The next eight bytes, big-endian.
    public mutating func uint64() -> UInt64 {
        (0..<8).reduce(UInt64(0)) { value, _ in value << 8 | UInt64(byte()) }
    }

    /// The next byte, reduced to `0..<cases` (`cases` > 0).
    public mutating func choice(_ cases: Int) -> Int {
        Int(byte()) % cases
    }

    /// The next byte's low bit.
    public mutating func flag() -> Bool {
        byte() & 1 == 1
    }

    /// Up to `count` bytes, fewer at the end (they stay valid as long as the
    /// input does: the whole call of `LLVMFuzzerTestOneInput`).
    public mutating func bytes(upTo count: Int) -> UnsafeRawBufferPointer {
        let taken = max(0, min(count, bytes.count - index))
        defer { index += taken }
        return UnsafeRawBufferPointer(rebasing: bytes[index..<(index + taken)])
    }

    /// Every byte not yet read.
    public mutating func rest() -> UnsafeRawBufferPointer {
        bytes(upTo: remainingCount)
    }
}
