// One connection to the admin listener, server side. Rules first:
//
//  1. A connection carries one request. From accept, the client has
//     `timeouts.request` to send its whole head (`HTTPRequestParser`'s rules);
//     a client that has not finished by then is closed with no response.
//  2. Once the head is complete or refused, reading stops mattering: the
//     glue builds the response for what the machine asks (`respond`), and the
//     machine has it written within `timeouts.response`. A client that does
//     not take it in time is closed.
//  3. The response always ends the connection (`Connection: close`). To keep
//     an unread request body from turning our close into a reset that
//     destroys the response (as in the `sixteen` rules), the write side is
//     shut down after the response, and input is read and discarded until
//     the client's EOF or `timeouts.linger` later.
//  4. EOF before the head is complete: the session ends as short, with no
//     response. A connection error ends it as reset.
//  5. A closed session ignores every later event.
//
// Pure: no I/O, no clock; every event carries `now`.

/// What the admin listener serves.
public enum AdminRoute: String, Sendable, Equatable, CaseIterable {
    case metrics = "/metrics"
    case health = "/healthz"
    case ready = "/ready"
}

/// What the glue must answer.
public enum AdminRequest: Sendable, Equatable {
    /// A known route, by GET (or HEAD: the same headers, no body).
    case route(AdminRoute, headOnly: Bool)
    /// An error response with this status.
    case error(HTTPStatus)

    /// Routes a valid head: unknown paths get 404, known paths with another
    /// method than GET or HEAD get 405.
    public static func routing(_ head: HTTPRequestHead) -> AdminRequest {
        guard let route = AdminRoute(rawValue: head.path) else { return .error(.notFound) }
        switch head.method {
        case "GET": return .route(route, headOnly: false)
        case "HEAD": return .route(route, headOnly: true)
        default: return .error(.methodNotAllowed)
        }
    }
}

public struct AdminTimeouts: Sendable, Equatable {
    /// From accept to the end of the request head (rule 1).
    public var request: Duration
    /// To write the response (rule 2).
    public var response: Duration
    /// To wait for the client's EOF after the response (rule 3).
    public var linger: Duration

    public init(request: Duration = .seconds(5), response: Duration = .seconds(5), linger: Duration = .seconds(1)) {
        self.request = request
        self.response = response
        self.linger = linger
    }
}

/// What the glue must do after an admin event.
public enum AdminAction: Sendable, Equatable {
    case wait
    case armTimer(deadline: Instant)
    /// Build the response to `request` and report its length with `responseReady`.
    case respond(AdminRequest)
    /// Write the response from `offset`, within `deadline`.
    case write(offset: Int, deadline: Instant)
    case shutDownAndLinger(deadline: Instant)
    case close(SessionOutcome)
}

public struct AdminSession: Sendable {
    private enum State: Sendable {
        case idle
        case reading(deadline: Instant)
        case awaitingResponse
        case writing(length: Int, sent: Int, deadline: Instant)
        case lingering(deadline: Instant)
        case closed(SessionOutcome)
    }

    public let timeouts: AdminTimeouts
    private var state: State = .idle
    private var parser = HTTPRequestParser()
    /// What was asked, once the head is complete or refused.
    public private(set) var request: AdminRequest?

    public init(timeouts: AdminTimeouts) {
        self.timeouts = timeouts
    }

    public mutating func accepted(now: Instant) -> AdminAction {
        guard case .idle = state else { return .wait }
        let deadline = now + timeouts.request
        state = .reading(deadline: deadline)
        return .armTimer(deadline: deadline)
    }

    /// Octets arrived (rules 1, 2, 3).
    public mutating func received(_ octets: UnsafeRawBufferPointer, now: Instant) -> AdminAction {
        guard case .reading = state else { return .wait }
        let answer: AdminRequest
        switch parser.consume(octets) {
        case .incomplete: return .wait
        case .complete(let head): answer = .routing(head)
        case .rejected(let status): answer = .error(status)
        }
        request = answer
        state = .awaitingResponse
        return .respond(answer)
    }

    /// The glue has built a response of `length` octets (rule 2).
    public mutating func responseReady(length: Int, now: Instant) -> AdminAction {
        guard case .awaitingResponse = state else { return .wait }
        let deadline = now + timeouts.response
        state = .writing(length: length, sent: 0, deadline: deadline)
        return .write(offset: 0, deadline: deadline)
    }

    public mutating func wrote(_ count: Int, now: Instant) -> AdminAction {
        guard case .writing(let length, let sent, let deadline) = state else { return .wait }
        let total = min(length, sent + max(count, 0))
        if total < length {
            state = .writing(length: length, sent: total, deadline: deadline)
            return .write(offset: total, deadline: deadline)
        }
        let lingerDeadline = now + timeouts.linger
        state = .lingering(deadline: lingerDeadline)
        return .shutDownAndLinger(deadline: lingerDeadline)
    }

    public mutating func becameWritable(now: Instant) -> AdminAction {
        guard case .writing(_, let sent, let deadline) = state else { return .wait }
        return .write(offset: sent, deadline: deadline)
    }

    /// The client finished sending (rules 3, 4).
    public mutating func inputEnded(now: Instant) -> AdminAction {
        switch state {
        case .reading: return close(.short)
        case .lingering: return close(.replied)
        default: return .wait
        }
    }

    public mutating func connectionFailed() -> AdminAction {
        switch state {
        case .closed: return .wait
        case .lingering: return close(.replied)
        default: return close(.reset)
        }
    }

    public mutating func timerFired(now: Instant) -> AdminAction {
        switch state {
        case .reading(let deadline):
            return now < deadline ? .armTimer(deadline: deadline) : close(.requestTimeout)
        case .writing(_, _, let deadline):
            return now < deadline ? .armTimer(deadline: deadline) : close(.replyTimeout)
        case .lingering(let deadline):
            return now < deadline ? .armTimer(deadline: deadline) : close(.replied)
        default:
            return .wait
        }
    }

    /// Octets of the response written so far, while writing.
    public var responseOffset: Int? {
        if case .writing(_, let sent, _) = state { return sent }
        return nil
    }

    public var outcome: SessionOutcome? {
        if case .closed(let outcome) = state { return outcome }
        return nil
    }

    private mutating func close(_ outcome: SessionOutcome) -> AdminAction {
        state = .closed(outcome)
        return .close(outcome)
    }
}
