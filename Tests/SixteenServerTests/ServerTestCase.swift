import Logging
import Reactor
import SixteenClient
import SixteenProtocol
import SixteenServer
import TestSupport
import XCTest

/// Starts a real server on 127.0.0.1, port 0, and always drains it.
class ServerTestCase: XCTestCase {
    var servers: [Server] = []

    func startServer(
        reactors: Int = 2,
        request: Duration = .seconds(10),
        linger: Duration = .seconds(2),
        shutdown: Duration = .seconds(5)
    ) throws -> Server {
        var logger = Logger(label: "test")
        logger.logLevel = .error
        let configuration = ServerConfiguration(
            served: .sixteen(SixteenTimeouts(request: request, linger: linger)),
            host: "127.0.0.1", port: 0, reactors: reactors,
            shutdownTimeout: shutdown
        )
        let server = try Server(configuration: configuration, logger: logger)
        try server.start()
        servers.append(server)
        return server
    }

    /// An `upper` server with small limits, spilling into `spillDirectory`.
    func startUpperServer(
        reactors: Int = 2,
        idle: Duration = .seconds(30),
        maxPending: Int = 1 << 30,
        highWaterMark: Int = 256 * 1024,
        memoryBudget: Int = 4 << 20,
        spillDirectory: String = "/tmp"
    ) throws -> Server {
        var logger = Logger(label: "test")
        logger.logLevel = .critical
        let configuration = ServerConfiguration(
            served: .upper(UpperConfiguration(
                limits: UpperLimits(idle: idle, maxPending: maxPending),
                output: OutputLimits(highWaterMark: highWaterMark, memoryBudget: memoryBudget, spillDirectory: spillDirectory))),
            host: "127.0.0.1", port: 0, reactors: reactors
        )
        let server = try Server(configuration: configuration, logger: logger)
        try server.start()
        servers.append(server)
        return server
    }

    /// A server as configured, logging only errors (or at `level`).
    func startServer(_ configuration: ServerConfiguration, level: Logger.Level = .error) throws -> Server {
        var logger = Logger(label: "test")
        logger.logLevel = level
        let server = try Server(configuration: configuration, logger: logger)
        try server.start()
        servers.append(server)
        return server
    }

    override func tearDown() {
        for server in servers {
            server.requestShutdown()
            server.wait()
        }
        servers = []
        super.tearDown()
    }

    func connect(_ server: Server, timeout: Duration = .seconds(10)) throws -> DeadlineConnection {
        try DeadlineConnection(host: "127.0.0.1", port: server.address.port, timeout: timeout)
    }

    /// The whole book session: send the request, then read to EOF.
    func bookSession(_ server: Server) throws -> [UInt8] {
        let connection = try connect(server)
        try connection.sendAll(sixteenRequest)
        return try connection.receiveUntilEnd()
    }

    /// Waits until the server has ended `count` sessions, then returns its metrics.
    func statsAfter(_ server: Server, ended count: Int, file: StaticString = #filePath, line: UInt = #line) -> MetricsSnapshot {
        let settled = eventually { server.metrics().ended >= count && server.metrics().active == 0 }
        XCTAssertTrue(settled, "server ended \(server.metrics().ended) sessions, expected \(count): \(server.metrics().totalsLine)", file: file, line: line)
        return server.metrics()
    }
}

/// The figures the tests read, by the names the tests use; each is one
/// series of `/metrics`.
extension MetricsSnapshot {
    var replied: Int { sessions(.replied) }
    var shortRequests: Int { sessions(.short) }
    var resets: Int { sessions(.reset) }
    var requestTimeouts: Int { sessions(.requestTimeout) }
    var replyTimeouts: Int { sessions(.replyTimeout) }
    var timedOut: Int { requestTimeouts + replyTimeouts }
    /// `upper` streams that got every octet back count as replied.
    var streamsCompleted: Int { sessions(.replied) }
    var overflows: Int { sessions(.overflow) }
    var idleTimeouts: Int { sessions(.idleTimeout) }
    var storageFailures: Int { sessions(.storage) }
    var abortedAtShutdown: Int { sessions(.aborted) }
    var octetsEchoed: Int { octetsSent }
    var spilledOctets: Int { Int(value("sixteen_pending_output_bytes", ["store": "spill"])) }
    var memoryPendingOctets: Int { Int(value("sixteen_pending_output_bytes", ["store": "memory"])) }
    var spillFiles: Int { Int(value("sixteen_spill_files")) }
    var bufferedBytes: Int { Int(value("sixteen_output_buffer_bytes")) }
}
