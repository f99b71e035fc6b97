#if canImport(Glibc)
import Glibc
#endif
import Reactor
import SixteenProtocol

/// The 16-octet message the book's deadlock client repeats.
public let deadlockMessage: [UInt8] = Array("capitalize this!".utf8)

/// How far a stream has got, for progress lines.
public struct StreamProgress: Sendable, Equatable {
    public var sent = 0
    public var received = 0
    public var elapsedSeconds = 0.0
}

/// What a completed stream did.
public struct StreamResult: Sendable, Equatable {
    public var octets: Int
    public var seconds: Double
    /// Octets per second, both directions counted once (as the book counts bytecount).
    public var megabytesPerSecond: Double { seconds > 0 ? Double(octets) / seconds / 1e6 : 0 }
}

/// Why a stream failed.
public enum StreamError: Error, Equatable, CustomStringConvertible {
    case connection(ClientError)
    case stalled(after: Duration, progress: StreamProgress)
    case mismatch(offset: Int, expected: UInt8, got: UInt8)
    case short(expected: Int, received: Int)
    case long(expected: Int)
    case failed(doing: String, Errno)

    public var description: String {
        switch self {
        case .connection(let error):
            return error.description
        case .stalled(let after, let progress):
            return "stalled: no progress for \(after) after sending \(progress.sent) and receiving \(progress.received) octets"
                + (progress.received == 0 ? " (is the server deadlocked?)" : "")
        case .mismatch(let offset, let expected, let got):
            return "wrong octet at offset \(offset): expected \(pythonBytesLiteral([expected])), got \(pythonBytesLiteral([got]))"
        case .short(let expected, let received):
            return "short stream: the server closed after \(received) of \(expected) octets"
        case .long(let expected):
            return "the server sent more than the \(expected) octets it was sent"
        case .failed(let doing, let errno):
            return "connection failed \(doing): \(errno)"
        }
    }
}

/// The book's deadlock client (Listing 3-2), made checkable: it sends
/// `byteCount` octets (rounded up to a multiple of 16, the message repeated)
/// before reading anything, half-closes, then reads everything back and
/// verifies each octet against the uppercase of what it sent. Any
/// `stallTimeout` without progress in either direction fails the stream.
public func runDeadlockStream(
    host: String,
    port: Int,
    byteCount: Int,
    stallTimeout: Duration = .seconds(10),
    connected: () -> Void = {},
    progress: (StreamProgress) -> Void = { _ in }
) throws(StreamError) -> StreamResult {
    guard let total = Frames.roundUp(byteCount) else { throw .failed(doing: "sizing", Errno(EOVERFLOW)) }
    let connection: DeadlineConnection
    do {
        connection = try DeadlineConnection(host: host, port: port, timeout: stallTimeout)
    } catch {
        throw .connection(error)
    }
    connected()
    let fd = connection.fd
    let started = MonotonicClock.nanoseconds()
    var state = StreamProgress()
    var lastReport = started

    // 64 KiB of the message, repeated: a whole number of 16-octet frames.
    let pattern = [UInt8]((0..<(64 * 1024)).map { deadlockMessage[$0 % 16] })
    let expected = deadlockMessage.map { $0 >= 0x61 && $0 <= 0x7a ? $0 & 0xdf : $0 }
    var buffer = [UInt8](repeating: 0, count: 256 * 1024)

    func report(_ now: Int64) {
        state.elapsedSeconds = Double(now - started) / 1e9
        if now - lastReport >= 250_000_000 {
            lastReport = now
            progress(state)
        }
    }

    func wait(for events: Int16) throws(StreamError) {
        while true {
            var entry = pollfd(fd: fd, events: events, revents: 0)
            let rc = poll(&entry, 1, Int32(clamping: stallTimeout.nanoseconds / 1_000_000))
            if rc > 0 { return }
            if rc == 0 { throw .stalled(after: stallTimeout, progress: state) }
            if errno != EINTR { throw .failed(doing: "waiting", .current) }
        }
    }

    // 1. Send everything, reading nothing (the book's point).
    while state.sent < total {
        let offset = state.sent % pattern.count
        let count = min(pattern.count - offset, total - state.sent)
        let outcome = pattern.withUnsafeBytes { Socket.send(fd, UnsafeRawBufferPointer(rebasing: $0[offset..<(offset + count)])) }
        switch outcome {
        case .wrote(let n): state.sent += n
        case .wouldBlock: try wait(for: Int16(POLLOUT))
        case .failed(let errno): throw .failed(doing: "while sending", errno)
        }
        report(MonotonicClock.nanoseconds())
    }
    // 2. Half-close: the server sees EOF once it has read everything.
    connection.shutdownWrite()
    // 3. Read everything back, checking every octet.
    while true {
        let outcome = buffer.withUnsafeMutableBytes { Socket.read(fd, into: $0) }
        switch outcome {
        case .read(let n):
            if state.received + n > total { throw .long(expected: total) }
            for index in 0..<n {
                let position = state.received + index
                let want = expected[position & 15]
                if buffer[index] != want {
                    throw .mismatch(offset: position, expected: want, got: buffer[index])
                }
            }
            state.received += n
        case .endOfInput:
            let seconds = Double(MonotonicClock.nanoseconds() - started) / 1e9
            state.elapsedSeconds = seconds
            progress(state)
            if state.received < total { throw .short(expected: total, received: state.received) }
            return StreamResult(octets: total, seconds: seconds)
        case .wouldBlock:
            try wait(for: Int16(POLLIN))
        case .failed(let errno):
            throw .failed(doing: "while receiving", errno)
        }
        report(MonotonicClock.nanoseconds())
    }
}
