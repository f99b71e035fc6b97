#if canImport(Glibc)
import Glibc
#endif
import Reactor
import SixteenClient
import SixteenProtocol
@testable import SixteenServer
import TestSupport
import XCTest

/// `--max-connections` across reactors, the descriptor plan, and what still
/// happens if descriptors run out anyway.
final class ConnectionLimitTests: ServerTestCase {
    func testClientsPastTheCapWaitAcrossReactorsAndAreServedWhenPlacesFree() throws {
        let server = try startServer(ServerConfiguration(
            served: .sixteen(SixteenTimeouts(request: .seconds(30), linger: .seconds(2))),
            host: "127.0.0.1", port: 0, reactors: 3,
            admin: AdminConfiguration(host: "127.0.0.1", port: 0), maxConnections: 20))
        let admin = try XCTUnwrap(server.adminAddress?.port)
        XCTAssertEqual(server.descriptorPlan.maxConnections, 20)
        let idle = try (0..<20).map { _ in try connect(server) }
        XCTAssertTrue(eventually { server.metrics().active == 20 })
        let waiting = try (0..<15).map { _ in try connect(server) }
        for connection in waiting { try connection.sendAll(sixteenRequest) }
        // They wait, connected, in the listen queues of three reactors.
        usleep(300_000)
        let atCap = server.metrics()
        XCTAssertEqual(atCap.active, 20)
        XCTAssertEqual(atCap.accepted, 20)
        XCTAssertEqual(atCap.value("sixteen_accepting"), 0)
        XCTAssertEqual(atCap.value("sixteen_connections_max"), 20)
        XCTAssertGreaterThanOrEqual(atCap.value("sixteen_accept_pauses_total"), 1)
        let ready = try XCTUnwrap(httpGet(port: admin, "/ready"))
        XCTAssertEqual(ready.status, 503)
        XCTAssertEqual(ready.body, "not accepting: at --max-connections (20)\n")

        for connection in idle.prefix(15) { connection.shutdownWrite() }
        for connection in waiting {
            XCTAssertEqual(try connection.receiveUntilEnd(), sixteenReply, "a waiting client was not served")
        }
        XCTAssertTrue(eventually { server.metrics().ended == 30 }, server.metrics().totalsLine)
        let after = server.metrics()
        XCTAssertEqual(after.accepted, 35)
        XCTAssertEqual(after.replied, 15)
        XCTAssertEqual(after.shortRequests, 15)
        XCTAssertEqual(after.active, 5)
        XCTAssertEqual(after.value("sixteen_accepting"), 1)
        XCTAssertGreaterThan(after.value("sixteen_accept_paused_seconds_total"), 0.2)
        XCTAssertEqual(try httpGet(port: admin, "/ready")?.status, 200)
        _ = idle
    }

    /// The cap holds under a flood: at no moment do more than `cap`
    /// connections stand open, and every client is served in the end.
    func testTheCapHoldsUnderLoad() throws {
        let server = try startServer(ServerConfiguration(
            served: .sixteen(SixteenTimeouts()), host: "127.0.0.1", port: 0, reactors: 2, maxConnections: 8))
        let peak = Lock(0)
        let sampling = Lock(true)
        let sampler = try ReactorThread(name: "sampler") {
            while sampling.withLock({ $0 }) {
                let active = server.metrics().active
                peak.withLock { $0 = max($0, active) }
                usleep(500)
            }
        }
        let report = try runLoad(LoadConfiguration(
            host: "127.0.0.1", port: server.address.port, mode: .sixteen, connections: 40, threads: 2,
            sessions: 3_000, duration: nil, timeout: .seconds(10)))
        sampling.withLock { $0 = false }
        sampler.join()
        XCTAssertEqual(report.outcomes[.ok], 3_000)
        XCTAssertEqual(report.errors, 0)
        XCTAssertLessThanOrEqual(peak.withLock { $0 }, 8)
        XCTAssertEqual(statsAfter(server, ended: 3_000).replied, 3_000)
    }

    func testThePlanReservesWhatTheDaemonHoldsAndClampsWhatItCannot() {
        let plain = DescriptorPlan(limit: 1024, reactors: 2, admin: nil, spills: false, requested: nil)
        XCTAssertEqual(plain.fixedReserve, DescriptorPlan.base + 2 * DescriptorPlan.perReactor)
        XCTAssertEqual(plain.spillFiles, 0)
        XCTAssertEqual(plain.maxConnections, 1024 - plain.fixedReserve)
        XCTAssertNil(plain.clampedFrom)

        let upper = DescriptorPlan(limit: 1024, reactors: 2, admin: AdminConfiguration(), spills: true, requested: nil)
        XCTAssertEqual(upper.fixedReserve, DescriptorPlan.base + 3 * DescriptorPlan.perReactor + 1 + 64)
        XCTAssertEqual(upper.spillFiles, (1024 - upper.fixedReserve) / 5)
        XCTAssertEqual(upper.maxConnections, 1024 - upper.fixedReserve - upper.spillFiles)

        let asked = DescriptorPlan(limit: 1024, reactors: 2, admin: nil, spills: false, requested: 100)
        XCTAssertEqual(asked.maxConnections, 100)
        XCTAssertNil(asked.clampedFrom)
        let tooMany = DescriptorPlan(limit: 1024, reactors: 2, admin: nil, spills: false, requested: 5_000)
        XCTAssertEqual(tooMany.maxConnections, 1024 - tooMany.fixedReserve)
        XCTAssertEqual(tooMany.clampedFrom, 5_000)

        let none = DescriptorPlan(limit: 20, reactors: 2, admin: nil, spills: false, requested: nil)
        XCTAssertEqual(none.maxConnections, 0)
    }

    /// Descriptors can still run out (another part of the process took
    /// them): the server sheds instead of spinning, and serves again after.
    func testOutOfDescriptorsShedsWithoutSpinning() throws {
        let server = try startServer(reactors: 1)
        // The clients' sockets are made first: the limit then leaves the
        // server only a few descriptors to accept with.
        let sockets = (0..<40).map { _ in socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0) }
        XCTAssertFalse(sockets.contains(-1))
        defer { sockets.forEach { close($0) } }
        let saved = DescriptorLimit.soft
        var limit = rlimit()
        getrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        limit.rlim_cur = rlim_t(openDescriptors() + 4)
        XCTAssertEqual(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit), 0)
        defer {
            limit.rlim_cur = rlim_t(saved)
            setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit)
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = UInt16(server.address.port).bigEndian
        address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        for fd in sockets {
            _ = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
        }
        XCTAssertTrue(eventually { server.metrics().value("sixteen_accept_shed_total") + Double(server.metrics().accepted) >= 40 },
                      server.metrics().totalsLine)
        let iterations = server.metrics().value("sixteen_loop_iteration_seconds_count")
        usleep(500_000)
        XCTAssertLessThan(server.metrics().value("sixteen_loop_iteration_seconds_count") - iterations, 20, "the loop spun while out of descriptors")
        let metrics = server.metrics()
        XCTAssertGreaterThanOrEqual(metrics.value("sixteen_accept_shed_total"), 30, metrics.totalsLine)
        limit.rlim_cur = rlim_t(saved)
        XCTAssertEqual(setrlimit(__rlimit_resource_t(RLIMIT_NOFILE.rawValue), &limit), 0)
        XCTAssertEqual(try bookSession(server), sixteenReply, "the server serves again once descriptors are back")
    }

    private func openDescriptors() -> Int {
        (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? 0
    }
}

/// `--max-connections-per-ip` over reactors, with clients bound to
/// different loopback addresses.
final class AddressLimitTests: ServerTestCase {
    private func from(_ host: String, _ server: Server) throws -> DeadlineConnection {
        let source = try SocketAddress.resolve(host: host, port: 0, passive: false)[0]
        return try DeadlineConnection(host: "127.0.0.1", port: server.address.port, timeout: .seconds(5), source: source)
    }

    func testOneAddressPastItsCapIsRejectedWhileAnotherIsServed() throws {
        let server = try startServer(ServerConfiguration(
            served: .sixteen(SixteenTimeouts(request: .seconds(30), linger: .seconds(2))),
            host: "127.0.0.1", port: 0, reactors: 3, maxConnectionsPerAddress: 4))
        let held = try (0..<4).map { _ in try from("127.0.0.2", server) }
        XCTAssertTrue(eventually { server.metrics().active == 4 })
        // Past the cap, from .2: accepted and closed at once, on whichever reactor.
        for _ in 0..<6 {
            let rejected = try from("127.0.0.2", server)
            XCTAssertEqual(try rejected.receiveUntilEnd(), [], "closed with no reply")
        }
        // .3 is another client: served.
        for _ in 0..<5 {
            let other = try from("127.0.0.3", server)
            try other.sendAll(sixteenRequest)
            XCTAssertEqual(try other.receiveUntilEnd(), sixteenReply)
        }
        let metrics = server.metrics()
        XCTAssertEqual(metrics.value("sixteen_connections_rejected_total", ["reason": "per_ip"]), 6)
        XCTAssertEqual(metrics.accepted, 9)
        // When .2 closes one, it may open one again.
        held[0].abort()
        XCTAssertTrue(eventually { server.metrics().active == 3 })
        let again = try from("127.0.0.2", server)
        try again.sendAll(sixteenRequest)
        XCTAssertEqual(try again.receiveUntilEnd(), sixteenReply)
        XCTAssertEqual(server.metrics().value("sixteen_connections_rejected_total", ["reason": "per_ip"]), 6)
        _ = held
    }

    func testOffMeansNoLimitAndNoSeries() throws {
        let server = try startServer(reactors: 2)
        let many = try (0..<20).map { _ in try from("127.0.0.4", server) }
        XCTAssertTrue(eventually { server.metrics().active == 20 })
        XCTAssertEqual(server.metrics().value("sixteen_connections_rejected_total"), 0)
        _ = many
    }

    func testTheKeyIsTheHostAndIPv4MappedIsIPv4() throws {
        let limit = AddressLimit(cap: 1, expectedAddresses: 4)
        func key(_ host: String, _ port: Int) throws -> UInt64 {
            var storage = sockaddr_storage()
            try SocketAddress.resolve(host: host, port: port, passive: false)[0].withSockAddr { address, length in
                withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: UnsafeRawBufferPointer(start: address, count: Int(length))) }
            }
            return withUnsafePointer(to: &storage) { limit.key($0) }
        }
        XCTAssertEqual(try key("127.0.0.2", 1000), try key("127.0.0.2", 2000), "the port is not part of the key")
        XCTAssertNotEqual(try key("127.0.0.2", 1000), try key("127.0.0.3", 1000))
        XCTAssertEqual(try key("::ffff:127.0.0.2", 1), try key("127.0.0.2", 1))
        XCTAssertNotEqual(try key("::1", 1), try key("::2", 1))
        XCTAssertTrue(limit.admit(try key("::1", 1)))
        XCTAssertFalse(limit.admit(try key("::1", 2)))
        limit.release(try key("::1", 3))
        XCTAssertEqual(limit.addresses, 0, "the last connection's release forgets the address")
        XCTAssertTrue(limit.admit(try key("::1", 4)))
    }
}
