// The `upper` protocol, server side: Listing 3-2 of *Foundations of Python
// Network Programming* (`tcp_deadlock.py`), made deadlock-proof. Rules first.
//
//  1. A session is one TCP connection, starting when it is accepted. The
//     client streams octets; the server sends every one back ASCII-uppercased
//     (only `a`-`z` change), in order. The book sends 16-octet frames, but
//     nothing here depends on framing: a partial last frame is echoed too.
//  2. Always drain reads. Whatever the client sends is read as soon as it
//     arrives, however much output is pending: reading never waits for
//     writing, so the book's deadlock (both sides stuck in send with full
//     buffers) cannot happen, and no session ever waits on another.
//  3. Output not yet taken by the socket is pending. The glue keeps it in an
//     output queue (memory up to a high-water mark, then a spill file); this
//     machine only counts it.
//  4. A ceiling bounds what one client can make us hold: octets that would
//     take pending output past `maxPending` end the session as overflowed,
//     and are not queued. The glue reads at most `readRoom` octets at a time
//     (what is left under the ceiling, or 1 at it), so a client that reads
//     everything it is sent is never closed, however small the ceiling.
//  5. Once the client's EOF has arrived and every pending octet has been
//     written, the session is complete and the connection is closed. (All
//     input has been read, so closing sends FIN, never RST.)
//  6. A session that makes no progress for `idle` ends as idle. Progress
//     is: output written; EOF; and input, but while output is pending (the
//     client is not reading what it is sent) only every `holdProgress`
//     octets of it. So a client that keeps output pending while it trickles
//     input (one octet every few seconds, to hold a spill file for ever) is
//     closed within `idle` of its last real progress, while the book's
//     client, which sends everything before it reads, makes progress at any
//     rate above `holdProgress` per `idle` (16 KiB a minute by default). The
//     deadline moves with progress; the timer is re-armed only when it fires
//     early (libev's "be smart about timeouts", technique 2).
//  7. A reset, or any connection error, ends the session as reset.
//  8. A closed session ignores every later event.

/// Limits of an `upper` session.
public struct UpperLimits: Equatable, Sendable {
    /// How long a session may go without progress (rule 6).
    public var idle: Duration
    /// The most output one session may have pending (rule 4).
    public var maxPending: Int
    /// Input octets that count as progress while output is pending (rule 6).
    public var holdProgress: Int

    public init(idle: Duration = .seconds(60), maxPending: Int = 2 << 30, holdProgress: Int = 16 << 10) {
        self.idle = idle
        self.maxPending = maxPending
        self.holdProgress = holdProgress
    }
}

/// How an `upper` session ended.
public enum UpperOutcome: Equatable, Sendable {
    /// The client finished and got every octet back (rule 5).
    case completed(echoed: Int)
    /// Pending output would have exceeded the ceiling (rule 4).
    case overflowed(pending: Int)
    /// No progress for the idle timeout (rule 6); with output pending, the
    /// client held it unread.
    case idleTimedOut(received: Int, sent: Int)
    /// The connection failed (rule 7).
    case reset(received: Int, sent: Int)
    /// The glue could not store pending output (the spill file failed).
    case storageFailed(received: Int, sent: Int)
}

/// What the glue must do after an `upper` event.
public enum UpperAction: Equatable, Sendable {
    /// Nothing new.
    case wait
    /// (Re-)arm the session's timer to fire at `deadline`.
    case armTimer(deadline: Instant)
    /// Uppercase the octets just reported, append them to the output queue,
    /// then send what the socket takes (as for `send`).
    case queueAndSend
    /// Send pending output until the socket is full or nothing is pending,
    /// reporting each write with `wrote(_:now:)`.
    case send
    /// Close the connection; the session is over.
    case close(UpperOutcome)
}

/// One `upper` session's state machine (server side). A value type kept inline
/// in a connection slot: events allocate nothing.
public struct UpperSession: Sendable {
    public let limits: UpperLimits
    private var received = 0
    private var sent = 0
    private var inputEnded = false
    private var lastActivity = Instant.zero
    /// Input received while output was pending, since the last progress (rule 6).
    private var heldInput = 0
    private var started = false
    public private(set) var outcome: UpperOutcome?

    public init(limits: UpperLimits) {
        self.limits = limits
    }

    /// Octets read but not yet written back.
    public var pending: Int { received - sent }

    /// The most the glue should read now (rule 4): what is left under the
    /// ceiling, or 1 when there is no room (that octet then overflows).
    public var readRoom: Int { max(1, limits.maxPending - pending) }
    public var octetsReceived: Int { received }
    public var octetsSent: Int { sent }

    // MARK: Events

    /// The connection was accepted at `now` (rules 1, 6).
    public mutating func accepted(now: Instant) -> UpperAction {
        guard !started, outcome == nil else { return .wait }
        started = true
        lastActivity = now
        return .armTimer(deadline: now + limits.idle)
    }

    /// `count` octets were read (rules 2, 4).
    public mutating func received(_ count: Int, now: Instant) -> UpperAction {
        guard started, outcome == nil, !inputEnded, count > 0 else { return .wait }
        if pending == 0 {
            progressed(now)
        } else {
            heldInput += count
            if heldInput >= limits.holdProgress { progressed(now) }
        }
        if count > limits.maxPending - pending {
            let (wanted, overflow) = pending.addingReportingOverflow(count)
            return close(.overflowed(pending: overflow ? .max : wanted))
        }
        received += count
        return .queueAndSend
    }

    /// The client finished sending (rule 5).
    public mutating func inputEnded(now: Instant) -> UpperAction {
        guard started, outcome == nil, !inputEnded else { return .wait }
        inputEnded = true
        progressed(now)
        return pending == 0 ? close(.completed(echoed: sent)) : .send
    }

    /// A write took `count` octets of pending output (rule 5).
    public mutating func wrote(_ count: Int, now: Instant) -> UpperAction {
        guard started, outcome == nil else { return .wait }
        let taken = min(max(count, 0), pending)
        sent += taken
        if taken > 0 { progressed(now) }
        if pending == 0 {
            return inputEnded ? close(.completed(echoed: sent)) : .wait
        }
        return .send
    }

    /// The socket can take more after a write would have blocked.
    public mutating func becameWritable(now: Instant) -> UpperAction {
        guard started, outcome == nil, pending > 0 else { return .wait }
        return .send
    }

    /// A read or write failed (rule 7).
    public mutating func connectionFailed() -> UpperAction {
        guard outcome == nil else { return .wait }
        return close(.reset(received: received, sent: sent))
    }

    /// The output queue could not take the octets just reported.
    public mutating func storageFailed() -> UpperAction {
        guard outcome == nil else { return .wait }
        return close(.storageFailed(received: received, sent: sent))
    }

    /// The session's timer fired at `now` (rule 6).
    public mutating func timerFired(now: Instant) -> UpperAction {
        guard started, outcome == nil else { return .wait }
        let deadline = lastActivity + limits.idle
        if now < deadline { return .armTimer(deadline: deadline) }
        return close(.idleTimedOut(received: received, sent: sent))
    }

    private mutating func progressed(_ now: Instant) {
        lastActivity = now
        heldInput = 0
    }

    private mutating func close(_ outcome: UpperOutcome) -> UpperAction {
        self.outcome = outcome
        return .close(outcome)
    }
}

/// Uppercases ASCII `a`-`z` in place; every other octet is left as it is.
/// Sixteen octets at a time, as one SIMD vector (SSE2 on x86-64, NEON on
/// arm64: both baseline): this runs over every octet `upper` echoes. Per
/// vector: a wrapping subtraction puts `a`-`z` at 0-25, one unsigned compare
/// picks them, and the case bit of those lanes is flipped: 13 instructions
/// per 16 octets with the loop, where eight octets in a 64-bit word (SWAR)
/// took 20 per 8. The constants are vectors, not scalars: Swift's SIMD
/// operators that take a scalar compiled to a loop over the lanes.
@inline(__always)
public func uppercaseASCII(_ octets: UnsafeMutableRawBufferPointer) {
    guard let base = octets.baseAddress else { return }
    let count = octets.count
    var index = 0
    let lowercaseA = SIMD16<UInt8>(repeating: 0x61)
    let letters = SIMD16<UInt8>(repeating: 26)
    let caseBit = SIMD16<UInt8>(repeating: 0x20)
    let noBits = SIMD16<UInt8>(repeating: 0)
    while count &- index >= 16 {
        let vector = (base + index).loadUnaligned(as: SIMD16<UInt8>.self)
        let lowercase = (vector &- lowercaseA) .< letters
        (base + index).storeBytes(of: vector ^ noBits.replacing(with: caseBit, where: lowercase), as: SIMD16<UInt8>.self)
        index &+= 16
    }
    let bytes = base.assumingMemoryBound(to: UInt8.self)
    while index < count {
        let octet = bytes[index]
        // a-z is 0x61...0x7a; clearing bit 5 maps it onto A-Z.
        if octet &- 0x61 < 26 { bytes[index] = octet & 0xdf }
        index &+= 1
    }
}
