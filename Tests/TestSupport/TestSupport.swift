import Foundation
import Reactor

/// Polls `condition` every 5 ms until it holds or `timeout` passes.
public func eventually(within timeout: Duration = .seconds(10), _ condition: () -> Bool) -> Bool {
    let deadline = MonotonicClock.nanoseconds() + timeout.nanosecondsForTests
    while MonotonicClock.nanoseconds() < deadline {
        if condition() { return true }
        usleep(5_000)
    }
    return condition()
}

/// Runs `body(i)` for i in 0..<count, each on its own thread, and waits for all.
/// Real threads, so `count` blocking clients really are in flight at once.
public func onThreads(_ count: Int, _ body: @escaping @Sendable (Int) -> Void) throws {
    let threads = try (0..<count).map { index in
        try ReactorThread(name: "client-\(index)") { body(index) }
    }
    threads.forEach { $0.join() }
}

/// SplitMix64 (Steele, Lea, Flood 2014): tiny and deterministic, so every
/// run of a randomised test sees the same cases. No Foundation randomness.
public struct SplitMix64 {
    private var state: UInt64

    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9e37_79b9_7f4a_7c15
        var z = state
        z = (z ^ (z >> 30)) &* 0xbf58_476d_1ce4_e5b9
        z = (z ^ (z >> 27)) &* 0x94d0_49bb_1331_11eb
        return z ^ (z >> 31)
    }

    /// A value in `range` (modulo bias is irrelevant here).
    public mutating func next(in range: ClosedRange<Int>) -> Int {
        let width = UInt64(range.upperBound - range.lowerBound) + 1
        return range.lowerBound + Int(next() % width)
    }

    public mutating func nextBool() -> Bool { next() & 1 == 1 }
}

/// A thread-safe tally of outcomes by name, for concurrent clients.
public final class Tally: Sendable {
    private let counts = Lock<[String: Int]>([:])
    public init() {}
    public func add(_ key: String) { counts.withLock { $0[key, default: 0] += 1 } }
    public subscript(key: String) -> Int { counts.withLock { $0[key, default: 0] } }
    public var all: [String: Int] { counts.withLock { $0 } }
}

extension Duration {
    public var nanosecondsForTests: Int64 {
        let (seconds, attoseconds) = components
        return seconds * 1_000_000_000 + attoseconds / 1_000_000_000
    }
}

/// The `sixteen` executable built next to this test bundle.
public var sixteenExecutable: URL {
    let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
    var directory = exe.deletingLastPathComponent()
    // The bundle may be `…/debug/SixteenPackageTests.xctest` itself or a directory.
    if directory.pathExtension == "xctest" { directory = directory.deletingLastPathComponent() }
    return directory.appendingPathComponent("sixteen")
}

/// The repository root (for the book's scripts under benchmarks/peers/book).
public var repositoryRoot: URL {
    URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
}

/// A child process with captured output, killed if still running when dropped.
/// Its output is drained as it comes, so a chatty child never blocks on a full pipe.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    private let stdoutPipe = Pipe()
    private let stderrPipe = Pipe()
    private let stdoutData = Lock(Data())
    private let stderrData = Lock(Data())
    private let stdoutClosed = Lock(false)
    private let stderrClosed = Lock(false)
    private var consumed = 0
    private var readers: [ReactorThread] = []

    public init(_ executable: URL, _ arguments: [String]) throws {
        process.executableURL = executable
        process.arguments = arguments
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        process.standardInput = FileHandle.nullDevice
        try process.run()
        // Foundation has closed its copies of the write ends; drain the read
        // ends on threads of our own until EOF.
        readers = try [(stdoutPipe, stdoutData, stdoutClosed), (stderrPipe, stderrData, stderrClosed)].map { pipe, data, closed in
            let fd = pipe.fileHandleForReading.fileDescriptor
            return try ReactorThread(name: "child-output") {
                var chunk = [UInt8](repeating: 0, count: 65536)
                while true {
                    let n = read(fd, &chunk, chunk.count)
                    if n > 0 {
                        data.withLock { $0.append(contentsOf: chunk[..<n]) }
                    } else if n < 0 && errno == EINTR {
                        continue
                    } else {
                        break
                    }
                }
                closed.withLock { $0 = true }
            }
        }
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        readers.forEach { $0.join() }
    }

    public var pid: Int32 { process.processIdentifier }

    /// The next line of standard output, or nil at EOF or after `timeout`.
    public func readLine(timeout: Duration = .seconds(10)) -> String? {
        var line: String?
        _ = eventually(within: timeout) {
            line = stdoutData.withLock { data -> String? in
                let unread = data.dropFirst(consumed)
                guard let newline = unread.firstIndex(of: UInt8(ascii: "\n")) else { return nil }
                consumed = newline + 1
                return String(decoding: unread[..<newline], as: UTF8.self)
            }
            return line != nil || stdoutClosed.withLock { $0 }
        }
        return line
    }

    /// Waits for exit up to `timeout`; returns the exit status, or nil if still running.
    public func waitForExit(timeout: Duration = .seconds(15)) -> Int32? {
        let finished = eventually(within: timeout) { !process.isRunning }
        guard finished else { return nil }
        process.waitUntilExit()
        // Let the readers take what is left in the pipes.
        _ = eventually(within: .seconds(5)) { stdoutClosed.withLock { $0 } && stderrClosed.withLock { $0 } }
        return process.terminationStatus
    }

    /// Everything on standard error so far.
    public func standardError() -> String {
        stderrData.withLock { String(decoding: $0, as: UTF8.self) }
    }

    /// Standard output not yet returned by `readLine`.
    public func remainingOutput() -> String {
        stdoutData.withLock { String(decoding: $0.dropFirst(consumed), as: UTF8.self) }
    }

    public func signal(_ signal: Int32) {
        kill(process.processIdentifier, signal)
    }

    /// User plus system CPU seconds used so far, from /proc.
    public func cpuSeconds() -> Double? {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        guard fields.count > 13, let user = Double(fields[11]), let system = Double(fields[12]) else { return nil }
        return (user + system) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}

/// Runs a command to completion and returns (status, stdout, stderr).
public func runToCompletion(_ executable: URL, _ arguments: [String], timeout: Duration = .seconds(20)) throws -> (status: Int32?, stdout: String, stderr: String) {
    let child = try ChildProcess(executable, arguments)
    let status = child.waitForExit(timeout: timeout)
    if status == nil { child.signal(SIGKILL); _ = child.waitForExit(timeout: .seconds(5)) }
    return (status, child.remainingOutput(), child.standardError())
}

/// Parses the port out of `Listening at ('127.0.0.1', 1060)`.
public func port(fromListeningLine line: String) -> Int? {
    guard line.hasPrefix("Listening at ("), let comma = line.firstIndex(of: ",") else { return nil }
    let rest = line[line.index(after: comma)...].drop { $0 == " " }
    return Int(rest.prefix { $0.isNumber })
}

/// The counts on the daemon's last `Stopped. Totals:` line (text format:
/// `… Stopped. Totals: key=value key=value`), or nil if there is none.
public func exitTotals(in stderr: String) -> [String: Int]? {
    guard let line = stderr.split(separator: "\n").last(where: { $0.contains("Stopped. Totals:") }),
          let start = line.range(of: "Stopped. Totals:") else { return nil }
    var totals: [String: Int] = [:]
    for pair in line[start.upperBound...].split(separator: " ") {
        let parts = pair.split(separator: "=", maxSplits: 1)
        guard parts.count == 2, let value = Int(parts[1]) else { return nil }
        totals[String(parts[0])] = value
    }
    return totals
}
