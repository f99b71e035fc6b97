import Reactor
import SixteenClient
import TestSupport
import XCTest

/// `runDeadlockStream` against deliberately wrong servers: each fault is
/// detected and named.
final class StreamClientTests: XCTestCase {
    /// A one-connection server on 127.0.0.1 that reads everything until EOF,
    /// then answers with `reply(octetsRead)` and closes.
    private func withFaultyServer(_ reply: @escaping @Sendable (Int) -> [UInt8], _ body: (Int) throws -> Void) throws {
        var any = sockaddr_in()
        any.sin_family = sa_family_t(AF_INET)
        any.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
        let listener = try Socket.listen(on: .v4(any), reusePort: false, backlog: 4)
        defer { Socket.close(listener) }
        let port = try XCTUnwrap(SocketAddress.local(of: listener)?.port)
        let thread = try ReactorThread(name: "faulty") {
            var entry = pollfd(fd: listener, events: Int16(POLLIN), revents: 0)
            guard poll(&entry, 1, 10_000) > 0, case .accepted(let fd) = Socket.accept(listener) else { return }
            var buffer = [UInt8](repeating: 0, count: 65536)
            var total = 0
            while true {
                var ready = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
                guard poll(&ready, 1, 10_000) > 0 else { break }
                let outcome = buffer.withUnsafeMutableBytes { Socket.read(fd, into: $0) }
                if case .read(let n) = outcome { total += n } else if outcome != .wouldBlock { break }
            }
            let answer = reply(total)
            var sent = 0
            while sent < answer.count {
                var ready = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
                guard poll(&ready, 1, 10_000) > 0 else { break }
                guard case .wrote(let n) = answer.withUnsafeBytes({ Socket.send(fd, UnsafeRawBufferPointer(rebasing: $0[sent...])) }) else { break }
                sent += n
            }
            Socket.close(fd)
        }
        defer { thread.join() }
        try body(port)
    }

    func testWrongOctetIsReportedWithItsOffset() throws {
        try withFaultyServer({ count in
            var echo = (0..<count).map { Array("CAPITALIZE THIS!".utf8)[$0 % 16] }
            echo[1000] = UInt8(ascii: "x")
            return echo
        }) { port in
            XCTAssertThrowsError(try runDeadlockStream(host: "127.0.0.1", port: port, byteCount: 4096, stallTimeout: .seconds(5))) { error in
                XCTAssertEqual(error as? StreamError, .mismatch(offset: 1000, expected: UInt8(ascii: "Z"), got: UInt8(ascii: "x")))
            }
        }
    }

    func testShortStreamIsReported() throws {
        try withFaultyServer({ count in Array((0..<(count - 5)).map { Array("CAPITALIZE THIS!".utf8)[$0 % 16] }) }) { port in
            XCTAssertThrowsError(try runDeadlockStream(host: "127.0.0.1", port: port, byteCount: 4096, stallTimeout: .seconds(5))) { error in
                XCTAssertEqual(error as? StreamError, .short(expected: 4096, received: 4091))
                XCTAssertEqual("\(error)", "short stream: the server closed after 4091 of 4096 octets")
            }
        }
    }

    func testLongStreamIsReported() throws {
        try withFaultyServer({ count in (0..<(count + 16)).map { Array("CAPITALIZE THIS!".utf8)[$0 % 16] } }) { port in
            XCTAssertThrowsError(try runDeadlockStream(host: "127.0.0.1", port: port, byteCount: 4096, stallTimeout: .seconds(5))) { error in
                XCTAssertEqual(error as? StreamError, .long(expected: 4096))
            }
        }
    }

    func testCorrectEchoRoundsUpToWholeFrames() throws {
        try withFaultyServer({ count in (0..<count).map { Array("CAPITALIZE THIS!".utf8)[$0 % 16] } }) { port in
            let result = try runDeadlockStream(host: "127.0.0.1", port: port, byteCount: 4001, stallTimeout: .seconds(5))
            XCTAssertEqual(result.octets, 4016)
        }
    }
}
