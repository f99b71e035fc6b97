#if canImport(Glibc)
import Glibc
#endif
import SixteenProtocol
@testable import SixteenServer
import TestSupport
import XCTest

/// `upper`'s central law, with the daemon's own parts: an `UpperSession`
/// counting, `uppercaseASCII` (sixteen octets at a time) converting, and an
/// `OutputQueue` holding what the socket has not taken, in memory chunks
/// under a high-water mark and a pool budget, then in a spill file. For any
/// input, cut into any reads, and any sequence of partial writes, the
/// octets written are the uppercase of the octets read, in order, and the
/// session completes exactly when the client has finished and everything
/// is written. The uppercase rule is the plain one (`a`-`z` lose bit 5), so
/// the SIMD conversion is checked against it at every alignment the reads
/// give. Spill files go to a fresh directory under /tmp.
final class UpperOutputQueueProperties: XCTestCase {
    private var directory = ""
    private var spill: SpillStore!

    override func setUpWithError() throws {
        try super.setUpWithError()
        directory = try makeTemporaryDirectory(prefix: "sixteen-upper-properties")
        spill = SpillStore(directory: directory, maxBytes: 1 << 30, maxFiles: 64)
    }

    override func tearDownWithError() throws {
        if let spill {
            XCTAssertEqual(spill.openFiles, 0, "a spill file was left open")
            XCTAssertEqual(spill.allocatedBytes, 0, "spill space was left taken")
        }
        if !directory.isEmpty { XCTAssertEqual(rmdir(directory), 0, "rmdir \(directory): errno \(errno)") }
        try super.tearDownWithError()
    }

    /// Octets that sit on the edges of the uppercase rule (`` ` `` `a` `z`
    /// `{`, `@` `A` `Z` `[`, the same with bit 7 set), the simplest first.
    static let octets: [UInt8] = Array("ab`{z@AZ[m 0".utf8) + [0x00, 0xe1, 0xfa, 0xc1, 0xff, 0x7f]

    /// Input, the script (kind: 0 read, 1 the socket takes, 2 EOF; size),
    /// the high-water mark (0 spills everything), and the pool's chunks.
    typealias Case = ([UInt8], [(Int, Int)], Int, Int)

    static var upperCases: Arbitrary<Case> {
        zip(
            Arbitrary<UInt8>.element(of: octets).array(of: 0...300),
            zip(Arbitrary<Int>.element(of: [0, 0, 1, 1, 2]), Arbitrary<Int>.integer(in: 1...100)).array(of: 0...40),
            Arbitrary<Int>.element(of: [1 << 20, 0, 1, 7, 64, 100_000]),
            Arbitrary<Int>.integer(in: 0...2, shrinkingToward: 2))
    }

    static func describe(_ input: Case) -> String {
        let names = ["read", "take", "EOF"]
        return "\(pythonBytesLiteral(input.0)); high-water mark \(input.2), pool of \(input.3) chunks; "
            + input.1.map { "\(names[$0.0]) \($0.1)" }.joined(separator: ", ")
    }

    /// Rules 1-3, 5: written == uppercase(read), in order, after every
    /// event; pending output is what the queue holds; EOF with nothing
    /// pending, or the write that empties the queue after EOF, completes.
    func testOctetsWrittenAreTheUppercaseOfTheOctetsReadForAnySplitAndWrites() {
        checkProperty(count: 1_000, Self.upperCases, describe: Self.describe) { input in
            try runUpper(input)
        }
    }

    /// The cases reach the queue's paths: memory, spill files, and both in one session.
    func testCasesReachMemoryAndSpill() {
        var seen: Set<String> = []
        _ = findCounterexample(key: "upper coverage", count: 400, Self.upperCases) { input in
            try runUpper(input) { queue in
                if queue.memoryOctets > 0 { seen.insert("memory") }
                if queue.spilledOctets > 0 { seen.insert("spill") }
                if queue.memoryOctets > 0 && queue.spilledOctets > 0 { seen.insert("both") }
            }
        }
        XCTAssertEqual(seen, ["memory", "spill", "both"])
    }

    /// Plays a case as `UpperHandler` does (reads up to `readRoom`, uppercase
    /// in place, append; the socket takes the queue's front, `pread` for the
    /// spill file), checking the law after every event.
    private func runUpper(_ input: Case, inspect: (OutputQueue) -> Void = { _ in }) throws {
        let (stream, script, highWaterMark, chunks) = input
        let pool = ChunkPool(budgetBytes: chunks * ChunkPool.chunkSize)
        var queue = OutputQueue()
        defer { queue.release(pool: pool, spill: spill) }
        var session = UpperSession(limits: UpperLimits(idle: .seconds(3_600), maxPending: 1 << 40))
        var clock: Int64 = 0
        func tick() -> Instant {
            clock += 1
            return Instant(nanoseconds: clock * 1_000_000)
        }
        _ = session.accepted(now: tick())
        var read = 0
        var written: [UInt8] = []
        var ended = false
        var input = stream

        func check(_ event: String) throws {
            inspect(queue)
            let expected = input[..<read].map { $0 &- 0x61 < 26 ? $0 - 0x20 : $0 }
            try require(expected.starts(with: written), "after \(event): wrote \(pythonBytesLiteral(written)) for \(pythonBytesLiteral(input[..<read]))")
            try requireEqual(queue.pendingOctets, session.pending, "pending after \(event)")
            try requireEqual(written.count + queue.pendingOctets, read, "octets read after \(event)")
        }
        func take(_ limit: Int) throws -> Bool {
            let taken: [UInt8]
            switch queue.front {
            case .empty: return false
            case .memory(let region): taken = Array(region.prefix(limit))
            case .file(let fd, let offset, let count): taken = readFile(fd, offset: offset, count: min(limit, count))
            }
            guard !taken.isEmpty else { throw PropertyFailure("the queue's front gave nothing") }
            queue.consume(taken.count, pool: pool, spill: spill)
            written += taken
            let action = session.wrote(taken.count, now: tick())
            let expected: UpperAction = session.pending > 0 ? .send : ended ? .close(.completed(echoed: read)) : .wait
            try requireEqual(action, expected, "wrote \(taken.count)")
            try check("taking \(taken.count)")
            return true
        }

        for (kind, size) in script where session.outcome == nil {
            switch kind {
            case 0:
                let count = min(size, session.readRoom, input.count - read)
                guard !ended, count > 0 else { continue }
                try requireEqual(session.received(count, now: tick()), .queueAndSend, "a read of \(count)")
                var octets = Array(input[read..<(read + count)])
                octets.withUnsafeMutableBytes { uppercaseASCII($0) }
                let outcome = octets.withUnsafeBytes { queue.append($0, pool: pool, highWaterMark: highWaterMark, spill: spill) }
                try requireEqual(outcome, nil, "appending \(count)")
                read += count
                try check("a read of \(count)")
            case 1:
                _ = try take(size)
            default:
                guard !ended else { continue }
                // The client sent no more than was read.
                ended = true
                input.removeLast(input.count - read)
                let expected: UpperAction = session.pending > 0 ? .send : .close(.completed(echoed: read))
                try requireEqual(session.inputEnded(now: tick()), expected, "EOF")
            }
        }
        if !ended {
            ended = true
            input.removeLast(input.count - read)
            _ = session.inputEnded(now: tick())
        }
        var sizes = script.map(\.1).makeIterator()
        while try take(sizes.next() ?? .max) {}
        try requireEqual(written, input.map { $0 &- 0x61 < 26 ? $0 - 0x20 : $0 }, "everything written")
        try requireEqual(session.outcome, .completed(echoed: read), "the outcome")
        try require(queue.isEmpty, "octets left in the queue")
        try requireEqual(pool.inUse, 0, "chunks still out of the pool")
    }
}
