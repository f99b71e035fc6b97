#if canImport(Glibc)
import Glibc
#endif

// Where the OutputQueue target's spill files go, and the octets it queues.

/// A directory of its own for spill files, made once per process under
/// `$TMPDIR` (or /tmp) and removed at exit. Spill files are unnamed, so
/// nothing else is ever left in it, even after a crash.
enum SpillDirectory {
    static let path: String = {
        let base = getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"
        var template = Array((base + "/sixteen-fuzz-spill-XXXXXX").utf8CString)
        let made = template.withUnsafeMutableBufferPointer { buffer in mkdtemp(buffer.baseAddress!).map { String(cString: $0) } }
        guard let made else { fatalError("mkdtemp in \(base) failed, errno \(errno)") }
        atexit { _ = rmdir(SpillDirectory.path) }
        return made
    }()

    /// A directory that does not exist: every spill file fails, for good.
    static let missing = "/nonexistent/sixteen-fuzz-spill"
}

/// The octets each connection queues: a fixed pseudo-random stream, read
/// from a position, so that a lost, repeated or misplaced range shows up
/// when the queue hands them back.
enum StreamContent {
    static let period = 262_139  // a prime: a slice never lines up with a chunk
    static let longest = 150_000
    static let table: [UInt8] = {
        var state: UInt64 = 0x5eed_0f_0c7e_75
        let cycle = (0..<period).map { _ in
            state &+= 0x9E37_79B9_7F4A_7C15
            var mixed = (state ^ (state >> 30)) &* 0xBF58_476D_1CE4_E5B9
            mixed = (mixed ^ (mixed >> 27)) &* 0x94D0_49BB_1331_11EB
            return UInt8(truncatingIfNeeded: mixed ^ (mixed >> 31))
        }
        return cycle + cycle[0..<longest]
    }()

    /// `count` (at most `longest`) octets of the stream from `position`.
    static func octets(at position: Int, count: Int) -> ArraySlice<UInt8> {
        let start = position % period
        return table[start..<(start + count)]
    }
}
