import Logging
import Reactor
import SixteenProtocol

/// A response the admin listener sends: status, content type, body.
public struct AdminResponse: Sendable, Equatable {
    public var status: HTTPStatus
    public var contentType: String
    public var body: String

    public init(_ status: HTTPStatus, contentType: String = "text/plain; charset=utf-8", _ body: String) {
        self.status = status
        self.contentType = contentType
        self.body = body
    }
}

/// What the admin handler is built with: its timeouts, and who answers routes.
struct AdminHandlerConfiguration: @unchecked Sendable {
    var timeouts: AdminTimeouts
    /// Answers a known route; runs on the admin reactor's thread.
    var respond: @Sendable (AdminRoute) -> AdminResponse
}

/// An admin connection's state: the session, and its response once built
/// (in memory of its own, freed when the connection closes).
struct AdminConnection {
    var session: AdminSession
    var response = UnsafeMutableRawBufferPointer(start: nil, count: 0)
}

/// Admin responses by status code: `sixteen_admin_requests_total{code}`.
extension HTTPStatus: CountSet {
    public var cell: Int { Self.allCases.firstIndex(of: self)! }

    public var declaration: SeriesDeclaration {
        SeriesDeclaration(Self.requests, labels: [MetricLabel("code", String(rawValue))])
    }

    static let requests = MetricFamily("sixteen_admin_requests_total", .counter, "Admin listener responses, by HTTP status code.")
}

/// The admin listener's HTTP/1.1 on its own reactor: one request per
/// connection, answered and closed. Not the hot path: responses are built
/// in fresh memory per request.
final class AdminHandler: ProtocolHandler {
    typealias Session = AdminConnection
    typealias Configuration = AdminHandlerConfiguration
    typealias Count = HTTPStatus

    static let name = "admin"
    static var outcomes: [SessionOutcome] { [.replied, .short, .reset, .requestTimeout, .replyTimeout] }

    private let configuration: AdminHandlerConfiguration
    private let counts: Counts<HTTPStatus>

    init(_ configuration: AdminHandlerConfiguration, shared: Void, context: HandlerContext<HTTPStatus>) {
        self.configuration = configuration
        counts = context.counts
    }

    var blankSession: AdminConnection { AdminConnection(session: AdminSession(timeouts: configuration.timeouts)) }

    func opened(_ connection: inout AdminConnection, now: Instant) -> ConnectionStep {
        connection = blankSession
        return step(connection.session.accepted(now: now), &connection, now: now)
    }

    func received(_ connection: inout AdminConnection, _ octets: UnsafeMutableRawBufferPointer, now: Instant) -> ConnectionStep {
        step(connection.session.received(UnsafeRawBufferPointer(octets), now: now), &connection, now: now)
    }

    func inputEnded(_ connection: inout AdminConnection, now: Instant) -> ConnectionStep {
        step(connection.session.inputEnded(now: now), &connection, now: now)
    }

    func output(_ connection: inout AdminConnection) -> OutputRegion {
        guard let offset = connection.session.responseOffset, offset < connection.response.count else { return .empty }
        return .memory(UnsafeRawBufferPointer(rebasing: connection.response[offset...]))
    }

    func wrote(_ connection: inout AdminConnection, _ count: Int, now: Instant) -> ConnectionStep {
        step(connection.session.wrote(count, now: now), &connection, now: now)
    }

    func writable(_ connection: inout AdminConnection, now: Instant) -> ConnectionStep {
        step(connection.session.becameWritable(now: now), &connection, now: now)
    }

    func deadlinePassed(_ connection: inout AdminConnection, now: Instant) -> ConnectionStep {
        step(connection.session.timerFired(now: now), &connection, now: now)
    }

    func failed(_ connection: inout AdminConnection) -> ConnectionStep {
        step(connection.session.connectionFailed(), &connection, now: .zero)
    }

    func closing(_ connection: inout AdminConnection, _ outcome: SessionOutcome?, _ info: ConnectionInfo, now: Instant) {
        connection.response.deallocate()
        connection.response = UnsafeMutableRawBufferPointer(start: nil, count: 0)
    }

    private func step(_ action: AdminAction, _ connection: inout AdminConnection, now: Instant) -> ConnectionStep {
        switch action {
        case .wait: return .wait
        case .armTimer(let deadline): return .setDeadline(deadline)
        case .respond(let request):
            let octets = render(request)
            connection.response = .allocate(byteCount: octets.count, alignment: 1)
            connection.response.copyBytes(from: octets)
            return step(connection.session.responseReady(length: connection.response.count, now: now), &connection, now: now)
        case .write(_, let deadline): return .send(deadline: deadline)
        case .shutDownAndLinger(let deadline): return .shutDownWrite(deadline: deadline)
        case .close(let outcome): return .close(outcome)
        }
    }

    /// The whole response, head and body, for `request`.
    private func render(_ request: AdminRequest) -> [UInt8] {
        let response: AdminResponse
        var headOnly = false
        var extraHeaders = ""
        switch request {
        case .route(let route, let head):
            response = configuration.respond(route)
            headOnly = head
        case .error(let status):
            response = AdminResponse(status, "\(status.reason)\n")
            if status == .methodNotAllowed { extraHeaders = "Allow: GET, HEAD\r\n" }
        }
        counts.add(response.status)
        let body = Array(response.body.utf8)
        let head = "HTTP/1.1 \(response.status.rawValue) \(response.status.reason)\r\n"
            + "Content-Type: \(response.contentType)\r\n"
            + "Content-Length: \(body.count)\r\n"
            + "Connection: close\r\n"
            + extraHeaders
            + "\r\n"
        return Array(head.utf8) + (headOnly ? [] : body)
    }
}
