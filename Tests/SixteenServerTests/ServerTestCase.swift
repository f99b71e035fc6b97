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
            host: "127.0.0.1", port: 0, reactors: reactors,
            timeouts: SixteenTimeouts(request: request, linger: linger),
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
            serverProtocol: .upper, host: "127.0.0.1", port: 0, reactors: reactors,
            upper: UpperLimits(idle: idle, maxPending: maxPending),
            output: OutputLimits(highWaterMark: highWaterMark, memoryBudget: memoryBudget, spillDirectory: spillDirectory)
        )
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

    /// Waits until the server has ended `count` sessions, then returns its stats.
    func statsAfter(_ server: Server, ended count: Int, file: StaticString = #filePath, line: UInt = #line) -> ServerStats {
        let settled = eventually { server.stats.ended >= count && server.stats.active == 0 }
        XCTAssertTrue(settled, "server ended \(server.stats.ended) sessions, expected \(count): \(server.stats)", file: file, line: line)
        return server.stats
    }
}
