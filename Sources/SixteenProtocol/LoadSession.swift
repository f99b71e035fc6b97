// One session of the load generator (`sixteen load`), client side. Rules:
//
//  1. A session starts with a connect. Connect errors end it at once, named
//     by kind (refused, or another connect failure such as EADDRNOTAVAIL).
//  2. `sixteen`: send the 16-octet request, then expect exactly
//     `Farewell, client` and EOF. Any other octet, or any octet after the
//     16th, is wrong; EOF before 16 is a short reply.
//  3. `upper`: send `bytes` octets (rounded up to whole 16-octet frames of
//     `capitalize this!`), half-close, and expect every octet back
//     uppercased, then EOF. `sendAll` sends everything before reading
//     anything (the book's client); `interleaved` reads while sending.
//  4. `idle`: connect and hold the connection without sending until the
//     generator releases it, then run a `sixteen` exchange (rule 2).
//  5. A session whose connection moves no octet for `timeout` (the clock
//     stops while an idle session is held) ends as timed out.
//  6. The reply is complete at its last expected octet; latency is measured
//     to that moment (`replyCompletedAt`), not to the EOF after it.
//  7. The generator's hard deadline (`--max-time`) ends whatever is in
//     flight as unfinished: not a failure of the server's, a cut of the run's.
//  8. A finished session ignores every later event.
//
// Pure: no I/O, no clock. The glue sends `requestOctets(at:count:)` slices.

/// What the load generator's sessions do.
public enum LoadMode: Equatable, Sendable {
    case sixteen
    case upper(bytes: Int, sendAll: Bool)
    case idle
}

/// How a load session ended.
public enum LoadOutcome: Equatable, Sendable, CaseIterable {
    case ok
    case refused
    case connectFailed
    case reset
    case timedOut
    case shortReply
    case wrongOctets
    /// Still running when the hard deadline ended the run (rule 7).
    case unfinished
}

/// What the glue must do next.
public enum LoadAction: Equatable, Sendable {
    /// Nothing new.
    case wait
    /// Arm the session's timer for `deadline`.
    case armTimer(deadline: Instant)
    /// Send request octets from `offset` (`requestOctets`); report `wrote`.
    case send(offset: Int)
    /// Everything is sent: shut down the write side.
    case shutdownWrite
    /// Close the connection; the session is over.
    case finish(LoadOutcome)
}

public struct LoadSession: Sendable {
    public let mode: LoadMode
    public let timeout: Duration
    /// Octets the session sends (and, for `upper`, expects back).
    public let requestLength: Int
    private var sent = 0
    private var received = 0
    private var released: Bool
    private var connected = false
    private var shutDown = false
    private var lastActivity = Instant.zero
    public private(set) var outcome: LoadOutcome?
    public private(set) var replyCompletedAt: Instant?

    public init(mode: LoadMode, timeout: Duration) {
        self.mode = mode
        self.timeout = timeout
        switch mode {
        case .sixteen, .idle: requestLength = 16
        case .upper(let bytes, _): requestLength = Frames.roundUp(max(bytes, 1)) ?? Int.max / Frames.size * Frames.size
        }
        if case .idle = mode { released = false } else { released = true }
    }

    /// Octets the reply must hold.
    public var expectedLength: Int { requestLength }
    public var octetsReceived: Int { received }
    public var octetsSent: Int { sent }

    /// Whether the glue should watch for readability now (rule 3: `sendAll`
    /// reads nothing until everything is sent).
    public var readsNow: Bool {
        guard connected, outcome == nil else { return false }
        if case .upper(_, true) = mode { return sent == requestLength }
        return true
    }

    /// The request octet at `offset`.
    @inline(__always)
    public static func requestOctet(_ mode: LoadMode, at offset: Int) -> UInt8 {
        switch mode {
        case .sixteen, .idle: sixteenRequestOctets[offset]
        case .upper: upperMessageOctets[offset & 15]
        }
    }

    /// The reply octet expected at `offset`.
    @inline(__always)
    public static func replyOctet(_ mode: LoadMode, at offset: Int) -> UInt8 {
        switch mode {
        case .sixteen, .idle: sixteenReplyOctets[offset]
        case .upper: upperReplyOctets[offset & 15]
        }
    }

    /// Whether `octets` are the reply's octets from `offset` on. Both replies
    /// repeat every 16 octets (the `sixteen` one is 16 long), so a 32-octet
    /// copy of the frame yields any 8 expected octets as one word: the
    /// client checks every octet of a gigabyte stream without becoming the
    /// bottleneck.
    @inline(__always)
    static func matchesReply(_ mode: LoadMode, _ octets: UnsafeRawBufferPointer, at offset: Int) -> Bool {
        let frames: UnsafeRawBufferPointer
        switch mode {
        case .sixteen, .idle: frames = doubledSixteenReply
        case .upper: frames = doubledUpperReply
        }
        var index = 0
        while index + 8 <= octets.count {
            let phase = (offset + index) & 15
            if octets.loadUnaligned(fromByteOffset: index, as: UInt64.self)
                != frames.loadUnaligned(fromByteOffset: phase, as: UInt64.self) {
                return false
            }
            index += 8
        }
        while index < octets.count {
            if octets[index] != frames[(offset + index) & 15] { return false }
            index += 1
        }
        return true
    }

    // MARK: Events

    /// The glue is about to connect, at `now` (the timer covers the connect too).
    public mutating func started(now: Instant) -> LoadAction {
        guard !connected, outcome == nil else { return .wait }
        lastActivity = now
        return .armTimer(deadline: now + timeout)
    }

    public mutating func connected(now: Instant) -> LoadAction {
        guard !connected, outcome == nil else { return .wait }
        connected = true
        lastActivity = now
        return released ? .send(offset: 0) : .wait
    }

    /// The connect failed; `refused` tells ECONNREFUSED from the rest.
    public mutating func connectFailed(refused: Bool) -> LoadAction {
        guard !connected, outcome == nil else { return .wait }
        return finish(refused ? .refused : .connectFailed)
    }

    /// An idle session may start its exchange now (rule 4).
    public mutating func releasedToSend(now: Instant) -> LoadAction {
        guard !released, outcome == nil else { return .wait }
        released = true
        guard connected else { return .wait }
        lastActivity = now
        return .send(offset: 0)
    }

    public mutating func wrote(_ count: Int, now: Instant) -> LoadAction {
        guard connected, released, outcome == nil, count > 0 else { return .wait }
        sent = min(sent + count, requestLength)
        lastActivity = now
        if sent < requestLength { return .send(offset: sent) }
        if case .upper = mode, !shutDown {
            shutDown = true
            return .shutdownWrite
        }
        return .wait
    }

    public mutating func becameWritable(now: Instant) -> LoadAction {
        guard connected, released, outcome == nil, sent < requestLength else { return .wait }
        return .send(offset: sent)
    }

    /// `octets` arrived; each is checked against what is expected (rules 2, 3).
    public mutating func received(_ octets: UnsafeRawBufferPointer, now: Instant) -> LoadAction {
        guard connected, outcome == nil, !octets.isEmpty else { return .wait }
        lastActivity = now
        if received + octets.count > expectedLength { return finish(.wrongOctets) }
        if !Self.matchesReply(mode, octets, at: received) { return finish(.wrongOctets) }
        received += octets.count
        if received == expectedLength { replyCompletedAt = now }
        return .wait
    }

    public mutating func inputEnded(now: Instant) -> LoadAction {
        guard connected, outcome == nil else { return .wait }
        return finish(received == expectedLength ? .ok : .shortReply)
    }

    public mutating func connectionFailed() -> LoadAction {
        guard outcome == nil else { return .wait }
        return finish(.reset)
    }

    /// The timer fired (rule 5); early fires re-arm.
    public mutating func timerFired(now: Instant) -> LoadAction {
        guard outcome == nil else { return .wait }
        // A held idle session is not timing out: keep the timer ticking.
        if connected && !released { return .armTimer(deadline: now + timeout) }
        let deadline = lastActivity + timeout
        if now < deadline { return .armTimer(deadline: deadline) }
        return finish(.timedOut)
    }

    /// The generator's hard deadline passed with the session unfinished.
    public mutating func abandoned() -> LoadAction {
        guard outcome == nil else { return .wait }
        return finish(.unfinished)
    }

    private mutating func finish(_ outcome: LoadOutcome) -> LoadAction {
        self.outcome = outcome
        return .finish(outcome)
    }
}

private let sixteenRequestOctets: [UInt8] = Array("Hi there, server".utf8)
private let sixteenReplyOctets: [UInt8] = Array("Farewell, client".utf8)
private let upperMessageOctets: [UInt8] = Array("capitalize this!".utf8)
private let upperReplyOctets: [UInt8] = Array("CAPITALIZE THIS!".utf8)

/// Each reply frame twice over, in memory that lives as long as the process
/// and is never written after it is made (so sharing it across threads is safe).
nonisolated(unsafe) private let doubledSixteenReply = doubled("Farewell, client")
nonisolated(unsafe) private let doubledUpperReply = doubled("CAPITALIZE THIS!")

private func doubled(_ frame: String) -> UnsafeRawBufferPointer {
    let octets = Array((frame + frame).utf8)
    let memory = UnsafeMutableRawBufferPointer.allocate(byteCount: octets.count, alignment: 8)
    memory.copyBytes(from: octets)
    return UnsafeRawBufferPointer(memory)
}
