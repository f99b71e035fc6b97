#if canImport(Glibc)
import Glibc
#endif
@testable import SixteenServer
import TestSupport
import XCTest

// Helpers for the output queue tests: a deterministic PRNG, content that
// encodes its position in the stream, a reader that drains a queue through
// `front`/`consume` (with `pread` for file regions), and file system probes.

typealias OutputQueueRandom = SplitMix64

/// The stream's content: octet `p` is a hash of `p`, repeating only every
/// 1 000 003 octets (a prime), so a lost, repeated or misplaced range shows up.
enum StreamContent {
    static let period = 1_000_003
    static let table: [UInt8] = {
        var random = OutputQueueRandom(seed: 0x0c7e_75_0f_5ee0)
        let cycle = (0..<period).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        // One period plus the start of the next, so any slice is contiguous.
        return cycle + cycle[0..<300_000]
    }()

    /// Octets `position..<position + count` of the stream (`count` at most 300 000).
    static func octets(at position: Int, count: Int) -> ArraySlice<UInt8> {
        precondition(count <= 300_000)
        let start = position % period
        return table[start..<(start + count)]
    }
}

/// A "socket" that takes at most `limit` octets of the queue's front, as the
/// glue does: memory regions copied, file regions read with `pread`, then
/// `consume`. Returns what it took (empty when the queue is empty).
func takeFront(
    _ queue: inout OutputQueue, pool: ChunkPool, spill: SpillStore, atMost limit: Int,
    file: StaticString = #filePath, line: UInt = #line
) -> [UInt8] {
    switch queue.front {
    case .empty:
        XCTAssertEqual(queue.pendingOctets, 0, "front is empty with octets pending", file: file, line: line)
        return []
    case .memory(let region):
        XCTAssertGreaterThan(region.count, 0, "empty memory region", file: file, line: line)
        XCTAssertLessThanOrEqual(region.count, queue.memoryOctets, file: file, line: line)
        XCTAssertLessThanOrEqual(region.count, ChunkPool.capacity, file: file, line: line)
        let taken = Array(region.prefix(limit))
        queue.consume(taken.count, pool: pool, spill: spill)
        return taken
    case .file(let fd, let offset, let count):
        XCTAssertEqual(queue.memoryOctets, 0, "file region while memory is pending", file: file, line: line)
        XCTAssertEqual(count, queue.spilledOctets, "file region is not all that is spilled", file: file, line: line)
        let wanted = min(limit, count)
        guard wanted > 0 else { return [] }
        let taken = readFile(fd, offset: offset, count: wanted, file: file, line: line)
        queue.consume(taken.count, pool: pool, spill: spill)
        return taken
    }
}

/// Everything pending, taken `step` octets at a time.
func drainAll(
    _ queue: inout OutputQueue, pool: ChunkPool, spill: SpillStore, step: Int = .max,
    file: StaticString = #filePath, line: UInt = #line
) -> [UInt8] {
    var all: [UInt8] = []
    while true {
        let taken = takeFront(&queue, pool: pool, spill: spill, atMost: step, file: file, line: line)
        if taken.isEmpty { break }
        all += taken
    }
    XCTAssertTrue(queue.isEmpty, file: file, line: line)
    return all
}

/// `count` octets of `fd` at `offset`, read with `pread`.
func readFile(_ fd: Int32, offset: Int64, count: Int, file: StaticString = #filePath, line: UInt = #line) -> [UInt8] {
    var bytes = [UInt8](repeating: 0, count: count)
    var got = 0
    while got < count {
        let n = bytes.withUnsafeMutableBytes { pread(fd, $0.baseAddress! + got, count - got, off_t(offset) + off_t(got)) }
        guard n > 0 else {
            XCTFail("pread(\(fd), offset \(offset + Int64(got))) returned \(n), errno \(errno)", file: file, line: line)
            return Array(bytes[0..<got])
        }
        got += n
    }
    return bytes
}

/// Appends `octets`, expecting success.
func appendOK(
    _ queue: inout OutputQueue, _ octets: ArraySlice<UInt8>, pool: ChunkPool, highWaterMark: Int, spill: SpillStore,
    file: StaticString = #filePath, line: UInt = #line
) {
    let outcome = octets.withUnsafeBytes { queue.append($0, pool: pool, highWaterMark: highWaterMark, spill: spill) }
    XCTAssertNil(outcome, "append of \(octets.count) octets: \(String(describing: outcome))", file: file, line: line)
}

/// The size of the file behind `fd`, or -1.
func fileSize(_ fd: Int32) -> Int64 {
    var info = stat()
    guard fstat(fd, &info) == 0 else { return -1 }
    return Int64(info.st_size)
}

/// The names in directory `path`, without `.` and `..`.
func directoryEntries(_ path: String) -> [String]? {
    guard let directory = opendir(path) else { return nil }
    defer { closedir(directory) }
    var names: [String] = []
    while let entry = readdir(directory) {
        let name = withUnsafePointer(to: entry.pointee.d_name) {
            String(cString: UnsafeRawPointer($0).assumingMemoryBound(to: CChar.self))
        }
        if name != "." && name != ".." { names.append(name) }
    }
    return names
}

/// The open descriptors of this process whose file lives in `directory`
/// (from `/proc/self/fd`), with what the kernel calls the file.
func descriptors(in directory: String) -> [(fd: Int32, target: String)] {
    var found: [(fd: Int32, target: String)] = []
    for name in directoryEntries("/proc/self/fd") ?? [] {
        guard let fd = Int32(name) else { continue }
        var buffer = [CChar](repeating: 0, count: 4_096)
        let length = readlink("/proc/self/fd/\(name)", &buffer, buffer.count - 1)
        guard length > 0 else { continue }
        let target = String(decoding: buffer[0..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if target.hasPrefix(directory + "/") { found.append((fd, target)) }
    }
    return found
}
