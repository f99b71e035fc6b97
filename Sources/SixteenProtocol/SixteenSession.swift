// The `sixteen` protocol, server side: Listing 3-1 of *Foundations of Python
// Network Programming*, made robust. Rules first; the code below follows them
// and nothing else.
//
//  1. A session is one TCP connection. It starts when the connection is
//     accepted, and must deliver its request by the request deadline:
//     `request` timeout after that moment. The deadline covers the whole
//     request, not the gap between octets, so a client sending one octet a
//     minute cannot hold a slot forever.
//  2. The request is the first 16 octets the client sends, in however many
//     pieces they arrive. Any 16 octets are a valid request (the book sends
//     `Hi there, server`).
//  3. When the 16th octet arrives, the server answers exactly the 16 octets
//     `Farewell, client`, in as many writes as the socket needs, and must
//     finish writing them by the reply deadline: `linger` timeout later.
//  4. Octets after the 16th, in the same read or later ones, are read and
//     discarded. They are never answered and never stop the reading: a
//     connection is read until its peer finishes or the session ends.
//  5. Nothing is lost to RST. Closing a socket that has unread input makes
//     Linux send RST, which can destroy the reply before the client reads it.
//     So once the reply is written: if the client has already finished
//     sending (EOF), close; otherwise shut down our write side (the client
//     sees EOF after the reply), keep reading and discarding until EOF or the
//     linger deadline (`linger` timeout later), and only then close.
//  6. EOF before 16 octets is a short request: no reply, close. (The book's
//     client would report `EOFError: was expecting 16 bytes ...`.)
//  7. A reset (or any connection error) before the reply is completely
//     written ends the session as reset. After that, the reply has been
//     handed over and the session counts as replied: a client that closes
//     with unread octets of its own resets us, having read its reply.
//  8. A deadline that passes ends the session: before 16 octets, the request
//     timed out; before the reply is written, the reply timed out (the client
//     is not reading); while lingering, the session simply ends, replied.
//  9. A closed session ignores every later event.
//
// The machine performs no I/O and reads no clock: events carry `now`, and
// each returns one action for the glue to perform.

/// The sixteen-octet reply.
public let sixteenReply: [UInt8] = Array("Farewell, client".utf8)

/// The sixteen-octet request the book's client sends (any 16 octets will do).
public let sixteenRequest: [UInt8] = Array("Hi there, server".utf8)

/// How long each phase of a `sixteen` session may take. Every session carries
/// a copy, and a session's size is per-connection memory, so they are kept as
/// whole milliseconds (rounded up; at most about 49 days).
public struct SixteenTimeouts: Equatable, Sendable {
    private var requestMilliseconds: UInt32
    private var lingerMilliseconds: UInt32

    /// From accept to the 16th request octet (rule 1).
    public var request: Duration {
        get { .milliseconds(Int64(requestMilliseconds)) }
        set { requestMilliseconds = Self.milliseconds(newValue) }
    }

    /// For writing the reply, and again for lingering after it (rules 3, 5).
    public var linger: Duration {
        get { .milliseconds(Int64(lingerMilliseconds)) }
        set { lingerMilliseconds = Self.milliseconds(newValue) }
    }

    /// `request` and `linger` in nanoseconds, for the events' arithmetic.
    var requestNanoseconds: Int64 { Int64(requestMilliseconds) &* 1_000_000 }
    var lingerNanoseconds: Int64 { Int64(lingerMilliseconds) &* 1_000_000 }

    public init(request: Duration = .seconds(10), linger: Duration = .seconds(2)) {
        requestMilliseconds = Self.milliseconds(request)
        lingerMilliseconds = Self.milliseconds(linger)
    }

    private static func milliseconds(_ duration: Duration) -> UInt32 {
        let nanoseconds = max(duration.nanoseconds, 0)
        let milliseconds = nanoseconds / 1_000_000 + (nanoseconds % 1_000_000 == 0 ? 0 : 1)
        return UInt32(clamping: milliseconds)
    }
}

/// How a `sixteen` session ended.
public enum SixteenOutcome: Equatable, Sendable {
    /// The whole reply was written (rules 5, 7, 8).
    case replied
    /// The client finished sending after `received` octets (rule 6).
    case shortRequest(received: Int)
    /// The connection failed after `received` request octets, before the reply was written (rule 7).
    case reset(received: Int)
    /// The request deadline passed with `received` octets in (rule 8).
    case requestTimedOut(received: Int)
    /// The reply deadline passed with `sent` reply octets written (rule 8).
    case replyTimedOut(sent: Int)
}

/// What the glue must do after an event.
public enum SixteenAction: Equatable, Sendable {
    /// Nothing: keep watching the socket as before.
    case wait
    /// (Re-)arm the session's timer to fire at `deadline`.
    case armTimer(deadline: Instant)
    /// Write `sixteenReply[offset...]` now, then report `wrote(_:now:)`; if
    /// the socket is full, wait for writability and report `becameWritable`.
    /// The timer must fire at `deadline`.
    case writeReply(offset: Int, deadline: Instant)
    /// Shut down the write side, keep reading (and discarding), and arm the
    /// timer to fire at `deadline`.
    case shutDownAndLinger(deadline: Instant)
    /// Close the socket; the session is over.
    case close(SixteenOutcome)
}

/// One `sixteen` session's state machine (server side). A value type kept
/// inline in a connection slot: events allocate nothing.
public struct SixteenSession: Sendable {
    public static let requestLength = 16
    /// `sixteenReply.count` as a compile-time constant: the array is a lazily
    /// initialized global, so reading its count on every write went through
    /// its initializer's once-check.
    public static let replyLength = 16

    /// Counts are `UInt8` (they never exceed 16): the state is per-connection memory.
    private enum State: Sendable {
        case idle
        case awaitingRequest(received: UInt8, deadline: Instant)
        case sendingReply(sent: UInt8, deadline: Instant, peerFinished: Bool)
        case lingering(deadline: Instant)
        case closed(SixteenOutcome)
    }

    private var state: State = .idle
    private var requestOctets: (UInt64, UInt64) = (0, 0)
    public let timeouts: SixteenTimeouts

    public init(timeouts: SixteenTimeouts) {
        self.timeouts = timeouts
    }

    // MARK: Events

    /// The connection was accepted at `now` (rule 1).
    public mutating func accepted(now: Instant) -> SixteenAction {
        guard case .idle = state else { return .wait }
        let deadline = now.advanced(byNanoseconds: timeouts.requestNanoseconds)
        state = .awaitingRequest(received: 0, deadline: deadline)
        return .armTimer(deadline: deadline)
    }

    /// `octets` (at least one) were read (rules 2, 3, 4).
    public mutating func received(_ octets: UnsafeRawBufferPointer, now: Instant) -> SixteenAction {
        guard case .awaitingRequest(let count, _) = state, !octets.isEmpty else { return .wait }
        let received = Int(count)
        let taken = min(octets.count, Self.requestLength - received)
        withUnsafeMutableBytes(of: &requestOctets) { storage in
            storage.baseAddress!.advanced(by: received)
                .copyMemory(from: octets.baseAddress!, byteCount: taken)
        }
        let total = received + taken
        guard total == Self.requestLength else {
            state = .awaitingRequest(received: UInt8(total), deadline: awaitingDeadline)
            return .wait
        }
        let deadline = now.advanced(byNanoseconds: timeouts.lingerNanoseconds)
        state = .sendingReply(sent: 0, deadline: deadline, peerFinished: false)
        return .writeReply(offset: 0, deadline: deadline)
    }

    /// The client finished sending: a read returned EOF (rules 5, 6).
    public mutating func inputEnded(now: Instant) -> SixteenAction {
        switch state {
        case .awaitingRequest(let received, _):
            return close(.shortRequest(received: Int(received)))
        case .sendingReply(let sent, let deadline, _):
            state = .sendingReply(sent: sent, deadline: deadline, peerFinished: true)
            return .wait
        case .lingering:
            return close(.replied)
        case .idle, .closed:
            return .wait
        }
    }

    /// A write took `count` reply octets (rules 3, 5).
    public mutating func wrote(_ count: Int, now: Instant) -> SixteenAction {
        guard case .sendingReply(let sent, let deadline, let peerFinished) = state else { return .wait }
        let total = min(Int(sent) + max(count, 0), Self.replyLength)
        if total < Self.replyLength {
            state = .sendingReply(sent: UInt8(total), deadline: deadline, peerFinished: peerFinished)
            return .writeReply(offset: total, deadline: deadline)
        }
        if peerFinished { return close(.replied) }
        let lingerDeadline = now.advanced(byNanoseconds: timeouts.lingerNanoseconds)
        state = .lingering(deadline: lingerDeadline)
        return .shutDownAndLinger(deadline: lingerDeadline)
    }

    /// The socket can take more octets after a write would have blocked.
    public mutating func becameWritable(now: Instant) -> SixteenAction {
        guard case .sendingReply(let sent, let deadline, _) = state else { return .wait }
        return .writeReply(offset: Int(sent), deadline: deadline)
    }

    /// A read or write failed: reset, or any other connection error (rule 7).
    public mutating func connectionFailed() -> SixteenAction {
        switch state {
        case .idle:
            return close(.reset(received: 0))
        case .awaitingRequest(let received, _):
            return close(.reset(received: Int(received)))
        case .sendingReply:
            return close(.reset(received: Self.requestLength))
        case .lingering:
            return close(.replied)
        case .closed:
            return .wait
        }
    }

    /// The session's timer fired at `now`; it may fire early or late (rule 8).
    public mutating func timerFired(now: Instant) -> SixteenAction {
        switch state {
        case .awaitingRequest(let received, let deadline):
            return now < deadline ? .armTimer(deadline: deadline) : close(.requestTimedOut(received: Int(received)))
        case .sendingReply(let sent, let deadline, _):
            return now < deadline ? .armTimer(deadline: deadline) : close(.replyTimedOut(sent: Int(sent)))
        case .lingering(let deadline):
            return now < deadline ? .armTimer(deadline: deadline) : close(.replied)
        case .idle, .closed:
            return .wait
        }
    }

    // MARK: Inspection

    /// The request octets received so far (all 16 once complete), for logging.
    public var request: [UInt8] {
        var copy = requestOctets
        return withUnsafeBytes(of: &copy) { Array($0.prefix(requestReceived)) }
    }

    /// How many request octets have arrived.
    public var requestReceived: Int {
        switch state {
        case .idle: 0
        case .awaitingRequest(let received, _): Int(received)
        case .sendingReply, .lingering: Self.requestLength
        case .closed(let outcome):
            switch outcome {
            case .shortRequest(let n), .reset(let n), .requestTimedOut(let n): n
            case .replied, .replyTimedOut: Self.requestLength
            }
        }
    }

    /// While the reply is being written: how many of its octets are written
    /// already (the glue sends `sixteenReply[offset...]`). nil otherwise.
    public var replyOffset: Int? {
        if case .sendingReply(let sent, _, _) = state { return Int(sent) }
        return nil
    }

    /// How the session ended, once it has.
    public var outcome: SixteenOutcome? {
        if case .closed(let outcome) = state { return outcome }
        return nil
    }

    private var awaitingDeadline: Instant {
        if case .awaitingRequest(_, let deadline) = state { return deadline }
        return .zero
    }

    private mutating func close(_ outcome: SixteenOutcome) -> SixteenAction {
        state = .closed(outcome)
        return .close(outcome)
    }
}
