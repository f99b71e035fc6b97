import Logging
import Reactor
import SixteenClient
import SixteenProtocol
@testable import SixteenServer
import TestSupport
import XCTest

/// `--proxy-protocol` on a real server: the header first, then the protocol;
/// refusals counted apart from sessions; the header's client in logs and in
/// `--max-connections-per-ip`; LOCAL counted as `health_check`.
final class ProxyProtocolServerTests: ServerTestCase {
    static let v1Header = Array("PROXY TCP4 203.0.113.7 198.51.100.1 40000 1060\r\n".utf8)
    static let signature = ProxyHeaderParser.signature

    /// A v2 header: PROXY (0x21) or LOCAL (0x20), family, addresses.
    static func v2(command: UInt8 = 0x21, family: UInt8, _ body: [UInt8]) -> [UInt8] {
        signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 0xFF)] + body
    }

    static let v2IPv4 = v2(family: 0x11, [203, 0, 113, 9, 198, 51, 100, 1, 0x9C, 0x41, 0x04, 0x24])  // :40001 -> :1060
    static let v2IPv6 = v2(family: 0x21, [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [7]
        + [0x20, 0x01, 0x0D, 0xB8] + [UInt8](repeating: 0, count: 11) + [1] + [0x9C, 0x42, 0x04, 0x24])
    static let v2Local = v2(command: 0x20, family: 0x00, [])

    func proxiedServer(
        _ served: ProtocolConfiguration = .sixteen(SixteenTimeouts(request: .seconds(10), linger: .seconds(2))),
        perAddress: Int? = nil, logger: Logger? = nil
    ) throws -> Server {
        var configuration = ServerConfiguration(served: served, host: "127.0.0.1", port: 0, reactors: 2, maxConnectionsPerAddress: perAddress)
        configuration.proxyProtocol = true
        guard let logger else { return try startServer(configuration) }
        let server = try Server(configuration: configuration, logger: logger)
        try server.start()
        servers.append(server)
        return server
    }

    /// Sends `parts` one by one (a pause between, so that they tend to
    /// arrive as separate reads), then reads to the end.
    func exchange(_ server: Server, _ parts: [[UInt8]]) throws -> [UInt8] {
        let connection = try connect(server)
        for (index, part) in parts.enumerated() {
            if index > 0 { usleep(2_000) }
            try connection.sendAll(part)
        }
        return try connection.receiveUntilEnd()
    }

    /// The connection ends with no octet of reply (a FIN, or a reset when
    /// the server closed with input unread).
    func assertClosedWithoutReply(_ server: Server, _ octets: [UInt8], endInput: Bool = false,
                                  file: StaticString = #filePath, line: UInt = #line) throws {
        let connection = try connect(server)
        try connection.sendAll(octets)
        if endInput { connection.shutdownWrite() }
        do throws(ClientError) {
            let received = try connection.receiveUntilEnd()
            XCTAssertEqual(received, [], file: file, line: line)
        } catch {
            XCTAssertEqual(error, .connectionFailed(doing: "while receiving", .connectionReset), file: file, line: line)
        }
    }

    func rejected(_ server: Server, _ reason: String) -> Int {
        Int(server.metrics().value("sixteen_connections_rejected_total", ["reason": reason]))
    }

    func testEveryHeaderFormThenTheBookSession() throws {
        let server = try proxiedServer()
        for header in [Self.v1Header, Array("PROXY TCP6 2001:db8::7 2001:db8::1 40002 1060\r\n".utf8),
                       Array("PROXY UNKNOWN\r\n".utf8), Self.v2IPv4, Self.v2IPv6] {
            XCTAssertEqual(try exchange(server, [header + sixteenRequest]), sixteenReply)
        }
        let stats = statsAfter(server, ended: 5)
        XCTAssertEqual(stats.replied, 5)
        XCTAssertEqual(rejected(server, "proxy_header"), 0)
    }

    /// The header and the request split at every octet: the same reply, and
    /// nothing of the header reaches the protocol.
    func testSplitAtEveryOctet() throws {
        let server = try proxiedServer()
        let whole = Self.v2IPv4 + sixteenRequest
        for cut in 1..<whole.count {
            XCTAssertEqual(try exchange(server, [Array(whole[..<cut]), Array(whole[cut...])]), sixteenReply, "cut \(cut)")
        }
        let header = Self.v1Header
        XCTAssertEqual(try exchange(server, header.map { [$0] } + [sixteenRequest]), sixteenReply, "one octet at a time")
        let stats = statsAfter(server, ended: whole.count)
        XCTAssertEqual(stats.replied, whole.count)
    }

    /// LOCAL is a health check: served, and counted as `health_check`, not `replied`.
    func testLocalIsServedAndCountedAsAHealthCheck() throws {
        let server = try proxiedServer()
        XCTAssertEqual(try exchange(server, [Self.v2Local + sixteenRequest]), sixteenReply)
        XCTAssertEqual(try exchange(server, [Self.v2Local + sixteenRequest]), sixteenReply)
        XCTAssertEqual(try exchange(server, [Self.v1Header + sixteenRequest]), sixteenReply)
        let stats = statsAfter(server, ended: 3)
        XCTAssertEqual(stats.sessions(.healthCheck), 2)
        XCTAssertEqual(stats.replied, 1)
    }

    /// Garbage, a v1 line past 107 octets, no header at all, a header cut
    /// short by EOF or by the deadline: closed with no reply, counted as
    /// `proxy_header`, and not as sessions.
    func testBadOrMissingHeadersAreRejectedAndCountedApart() throws {
        let server = try proxiedServer(.sixteen(SixteenTimeouts(request: .milliseconds(300), linger: .seconds(2))))
        try assertClosedWithoutReply(server, Array("GET / HTTP/1.1\r\n\r\n".utf8))
        try assertClosedWithoutReply(server, sixteenRequest)
        try assertClosedWithoutReply(server, Array(("PROXY UNKNOWN " + String(repeating: "x", count: 100)).utf8))
        try assertClosedWithoutReply(server, Array(Self.v2IPv4.prefix(20)), endInput: true)
        try assertClosedWithoutReply(server, Array(Self.v1Header.prefix(30)))  // the request timeout ends it
        try assertClosedWithoutReply(server, Self.v2(command: 0x21, family: 0x12, [UInt8](repeating: 1, count: 12)))
        XCTAssertTrue(eventually { rejected(server, "proxy_header") == 6 && server.metrics().active == 0 },
                      "rejected \(rejected(server, "proxy_header"))")
        XCTAssertEqual(server.metrics().ended, 0, "no session was counted")
        XCTAssertEqual(try exchange(server, [Self.v1Header + sixteenRequest]), sixteenReply, "others are served")
    }

    /// `--max-connections-per-ip` counts the header's client, not the balancer.
    func testPerAddressLimitUsesTheHeadersClient() throws {
        let server = try proxiedServer(perAddress: 1)
        let held = try connect(server)
        try held.sendAll(Self.v1Header)
        XCTAssertTrue(eventually { server.metrics().active == 1 })
        usleep(50_000)  // the header has been read
        try assertClosedWithoutReply(server, Self.v1Header + sixteenRequest)
        XCTAssertEqual(rejected(server, "per_ip"), 1)
        // Another client through the same balancer address is served.
        XCTAssertEqual(try exchange(server, [Self.v2IPv4 + sixteenRequest]), sixteenReply)
        // Once the first client's connection ends, its next one is served.
        try held.sendAll(sixteenRequest)
        held.shutdownWrite()
        XCTAssertEqual(try held.receiveUntilEnd(), sixteenReply)
        XCTAssertTrue(eventually { server.metrics().active == 0 })
        XCTAssertEqual(try exchange(server, [Self.v1Header + sixteenRequest]), sixteenReply)
        XCTAssertEqual(statsAfter(server, ended: 3).replied, 3)
        XCTAssertEqual(rejected(server, "per_ip"), 1)
    }

    /// At debug, the header's client is logged, and the protocol's own lines
    /// name it too.
    func testDebugLogShowsTheClientFromTheHeader() throws {
        let log = CapturedLog()
        let server = try proxiedServer(.upper(UpperConfiguration()), logger: log.logger)
        let connection = try connect(server)
        try connection.sendAll(Self.v1Header + Array("hello".utf8))
        connection.shutdownWrite()
        XCTAssertEqual(try connection.receiveUntilEnd(), Array("HELLO".utf8))
        _ = statsAfter(server, ended: 1)
        XCTAssertTrue(log.messages.contains("PROXY header: client ('203.0.113.7', 40000), destination ('198.51.100.1', 1060)"),
                      log.messages.joined(separator: "\n"))
        XCTAssertTrue(log.messages.contains { $0.hasPrefix("Stream from ('203.0.113.7', 40000) complete") }, log.messages.joined(separator: "\n"))
    }

    /// `upper` behind a header: the octets after it in the same read are the
    /// stream's first; without `--proxy-protocol` a header is plain data.
    func testUpperTakesTheOctetsAfterTheHeader() throws {
        let server = try proxiedServer(.upper(UpperConfiguration()))
        let connection = try connect(server)
        try connection.sendAll(Self.v2IPv6 + Array("hi there".utf8))
        connection.shutdownWrite()
        XCTAssertEqual(try connection.receiveUntilEnd(), Array("HI THERE".utf8))

        let plain = try startUpperServer()
        let direct = try connect(plain)
        try direct.sendAll(Self.v1Header)
        direct.shutdownWrite()
        XCTAssertEqual(try direct.receiveUntilEnd(), Array("PROXY TCP4 203.0.113.7 198.51.100.1 40000 1060\r\n".utf8))
    }
}
