import Foundation
import Reactor
import SixteenClient

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

    /// Runs `executable`; `environment` is added to this process's own.
    public init(_ executable: URL, _ arguments: [String], environment: [String: String] = [:]) throws {
        process.executableURL = executable
        process.arguments = arguments
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
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

    /// Waits until standard error contains `text`; whether it did in time.
    public func waitForStandardError(containing text: String, timeout: Duration = .seconds(10)) -> Bool {
        eventually(within: timeout) { standardError().contains(text) }
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

/// A new empty directory `/tmp/<prefix>-XXXXXX` (mkdtemp), for spill files
/// and mount points; the caller removes it.
public func makeTemporaryDirectory(prefix: String) throws -> String {
    var template = Array("/tmp/\(prefix)-XXXXXX".utf8CString)
    let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!).map { String(cString: $0) } }
    struct Failed: Error, CustomStringConvertible { let description: String }
    guard let made else { throw Failed(description: "mkdtemp for \(prefix) failed, errno \(errno)") }
    return made
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

/// The admin port from the daemon's `Admin listener at HOST:PORT` log line.
public func adminPort(fromStandardError stderr: String) -> Int? {
    // `… Admin listener at 127.0.0.1:33281: /metrics, /healthz, /ready`
    guard let range = stderr.range(of: "Admin listener at ") else { return nil }
    let address = stderr[range.upperBound...].prefix { $0 != " " }.dropLast()
    guard let colon = address.lastIndex(of: ":") else { return nil }
    return Int(address[address.index(after: colon)...])
}

/// An HTTP response as a test reads it.
public struct HTTPResponse: Sendable {
    public let status: Int
    /// Header names lowercased.
    public let headers: [String: String]
    public let body: String
    /// Everything received, head and body.
    public let raw: [UInt8]
}

/// Sends `request` (raw octets) to 127.0.0.1:`port`, reads to EOF, and
/// parses the answer as HTTP/1.1; nil if the answer is not HTTP.
public func httpExchange(port: Int, _ request: [UInt8], timeout: Duration = .seconds(10)) throws -> HTTPResponse? {
    let connection = try DeadlineConnection(host: "127.0.0.1", port: port, timeout: timeout)
    try connection.sendAll(request)
    let raw = try connection.receiveUntilEnd(limit: 16 << 20)
    guard let headEnd = raw.firstRange(of: Array("\r\n\r\n".utf8)) else { return nil }
    let lines = String(decoding: raw[..<headEnd.lowerBound], as: UTF8.self).components(separatedBy: "\r\n")
    let statusParts = lines[0].split(separator: " ")
    guard statusParts.count >= 2, statusParts[0] == "HTTP/1.1", let status = Int(statusParts[1]) else { return nil }
    var headers: [String: String] = [:]
    for line in lines.dropFirst() {
        guard let colon = line.firstIndex(of: ":") else { return nil }
        headers[line[..<colon].lowercased()] = line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
    }
    return HTTPResponse(status: status, headers: headers, body: String(decoding: raw[headEnd.upperBound...], as: UTF8.self), raw: raw)
}

/// `GET path` over HTTP/1.1, as curl would send it.
public func httpGet(port: Int, _ path: String, method: String = "GET", timeout: Duration = .seconds(10)) throws -> HTTPResponse? {
    try httpExchange(port: port, Array("\(method) \(path) HTTP/1.1\r\nHost: 127.0.0.1:\(port)\r\nUser-Agent: test\r\nAccept: */*\r\nConnection: close\r\n\r\n".utf8), timeout: timeout)
}

/// Runs `promtool check metrics` on `text`: (exit status, its output).
/// promtool comes with Debian's `prometheus` package (scripts/ensure-test-tools).
public func promtoolCheckMetrics(_ text: String) throws -> (status: Int32, output: String) {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("metrics-\(getpid())-\(MonotonicClock.nanoseconds()).txt")
    try Data(text.utf8).write(to: path)
    defer { try? FileManager.default.removeItem(at: path) }
    let result = try runToCompletion(URL(fileURLWithPath: "/bin/sh"), ["-c", "promtool check metrics < \"$0\"", path.path])
    return (result.status ?? -1, result.stdout + result.stderr)
}

/// A client that never reads, with a tiny receive window (`SO_RCVBUF` set
/// before connecting): what it leaves unread backs up in the server at once,
/// instead of in megabytes of kernel buffers.
public final class NonReadingClient {
    public let fd: Int32

    public init(port: Int, sendTimeout: Duration = .seconds(5)) throws {
        fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var small: Int32 = 4096
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &small, socklen_t(MemoryLayout<Int32>.size))
        let seconds = Int(sendTimeout.nanosecondsForTests / 1_000_000_000)
        var timeout = timeval(tv_sec: seconds, tv_usec: Int(sendTimeout.nanosecondsForTests / 1000 % 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, socklen_t(MemoryLayout<timeval>.size))
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard rc == 0 else {
            let code = errno
            close(fd)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .ECONNREFUSED)
        }
    }

    deinit { close(fd) }

    /// Sends up to `count` octets of `octet`; returns how many went before
    /// the server closed the connection or the send timed out.
    @discardableResult
    public func send(_ count: Int, octet: UInt8 = 0x61) -> Int {
        let chunk = [UInt8](repeating: octet, count: 64 << 10)
        var sent = 0
        while sent < count {
            let n = chunk.withUnsafeBytes { Glibc.send(fd, $0.baseAddress!, min($0.count, count - sent), Int32(MSG_NOSIGNAL)) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            sent += n
        }
        return sent
    }
}

/// A systemd notify socket for tests: a Unix datagram socket the daemon
/// sends `READY=1`, `STATUS=…`, `WATCHDOG=1` to, read as systemd reads it.
public final class NotifyListener: @unchecked Sendable {
    public let path: String
    private let fd: Int32

    public init() throws {
        path = "/tmp/sixteen-notify-\(getpid())-\(MonotonicClock.nanoseconds()).sock"
        fd = socket(AF_UNIX, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.EMFILE) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { $0.copyBytes(from: Array(path.utf8) + [0]) }
        let rc = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard rc == 0 else { throw POSIXError(POSIXErrorCode(rawValue: errno) ?? .EINVAL) }
        chmod(path, 0o777)  // the daemon may have dropped to nobody
    }

    deinit {
        close(fd)
        unlink(path)
    }

    /// The next datagram, or nil after `timeout`.
    public func next(timeout: Duration = .seconds(10)) -> String? {
        var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
        guard poll(&entry, 1, Int32(timeout.nanosecondsForTests / 1_000_000)) == 1 else { return nil }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return count >= 0 ? String(decoding: buffer[..<count], as: UTF8.self) : nil
    }

    /// Datagrams until one contains `text` (returned), or nil after `timeout`.
    public func wait(for text: String, timeout: Duration = .seconds(10)) -> (match: String, seen: [String])? {
        let deadline = MonotonicClock.nanoseconds() + timeout.nanosecondsForTests
        var seen: [String] = []
        while MonotonicClock.nanoseconds() < deadline {
            guard let message = next(timeout: .nanoseconds(max(1, deadline - MonotonicClock.nanoseconds()))) else { break }
            seen.append(message)
            if message.contains(text) { return (message, seen) }
        }
        return nil
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on now (for tools that
/// cannot be given port 0 and say which they took).
public func freeLoopbackPort() throws -> Int {
    try freePort(on: "127.0.0.1")
}

/// A free port on `host` (a loopback address), for a process to bind later.
/// On 127.0.0.2 and above no outgoing connection takes it meanwhile: their
/// source address is 127.0.0.1.
public func freePort(on host: String) throws -> Int {
    let fd = try Socket.listen(on: SocketAddress.resolve(host: host, port: 0, passive: true)[0], reusePort: false, backlog: 1)
    defer { Socket.close(fd) }
    guard let port = SocketAddress.local(of: fd)?.port else { throw POSIXError(.EADDRNOTAVAIL) }
    return port
}

/// The path of `name` on `$PATH` (and in /usr/sbin and /sbin, where Debian
/// puts daemons such as haproxy).
public func executable(named name: String) -> URL? {
    let path = (ProcessInfo.processInfo.environment["PATH"] ?? "") + ":/usr/sbin:/sbin"
    for directory in path.split(separator: ":") where !directory.isEmpty {
        let candidate = "\(directory)/\(name)"
        if access(candidate, X_OK) == 0 { return URL(fileURLWithPath: candidate) }
    }
    return nil
}

/// The uid a process runs as, from `/proc/PID/status`.
public func uid(of pid: Int32) -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
          let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") }) else { return nil }
    return Int(line.split(separator: "\t")[1])
}
