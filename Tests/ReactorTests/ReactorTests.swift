import Reactor
import Synchronization
import XCTest

final class EventLoopTests: XCTestCase {
    func testLoopUsesEpoll() throws {
        XCTAssertTrue(try EventLoop().usesEpoll)
    }

    func testTimerFiresOnceAfterItsDelay() throws {
        let loop = try EventLoop()
        var fired = 0
        let started = MonotonicClock.nanoseconds()
        let timer = TimerWatcher(loop: loop) { fired += 1 }
        timer.start(after: 0.05)
        loop.run()  // returns when no watcher is left active
        XCTAssertEqual(fired, 1)
        XCTAssertGreaterThanOrEqual(MonotonicClock.nanoseconds() - started, 45_000_000)
        XCTAssertFalse(timer.isActive)
    }

    func testAsyncWakeupFromAnotherThreadRunsOnTheLoopThread() throws {
        let loop = try EventLoop()
        var woken = 0
        let watcher = AsyncWatcher(loop: loop) {
            woken += 1
            loop.breakAll()
        }
        watcher.start()
        let wakeup = watcher.wakeup
        let sender = try ReactorThread(name: "sender") {
            usleep(20_000)
            wakeup.send()
        }
        let guardTimer = TimerWatcher(loop: loop) { loop.breakAll() }
        guardTimer.start(after: 5)
        loop.run()
        sender.join()
        XCTAssertEqual(woken, 1)
        XCTAssertTrue(guardTimer.isActive, "the loop ended by the guard timer, not the wake-up")
    }

    func testIOWatcherSeesReadabilityOfASocketPair() throws {
        let loop = try EventLoop()
        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds), 0)
        defer { fds.forEach { Socket.close($0) } }
        var seen: IOEvents = []
        var watcher: IOWatcher?
        watcher = IOWatcher(loop: loop, fd: fds[0], events: .readable) { events in
            seen = events
            watcher?.stop()
        }
        watcher?.start()
        var octet: UInt8 = 7
        XCTAssertEqual(write(fds[1], &octet, 1), 1)
        loop.run()
        XCTAssertEqual(seen, .readable)
    }
}

/// Pooled watchers report to the loop's callbacks with their slot number,
/// and callbacks with an `iteration` closure run each iteration's watcher
/// callbacks through it.
final class PooledWatcherTests: XCTestCase {
    /// A loop whose callbacks record what they hear, with pooled I/O
    /// watchers and timers for slots 0..<`slots`.
    final class Recorder {
        let loop: EventLoop
        private(set) var callbacks: LoopCallbacks!
        let ios: UnsafeMutablePointer<PooledIOStorage>
        let timers: UnsafeMutablePointer<PooledTimerStorage>
        var io: [(Int, IOEvents)] = []
        var timersFired: [Int] = []
        /// What happened, in order: "began", "io 1", "timer 2", "ended".
        var journal: [String] = []

        init(slots: Int, bracketingIterations: Bool) throws {
            loop = try EventLoop()
            ios = .allocate(capacity: slots)
            timers = .allocate(capacity: slots)
            for slot in 0..<slots {
                (ios + slot).initialize(to: PooledIOStorage())
                (timers + slot).initialize(to: PooledTimerStorage())
                PooledIO(ios + slot).prepare(slot: slot)
                PooledTimer(timers + slot).prepare(slot: slot)
            }
            let ioReady: (Int, IOEvents) -> Void = { [unowned self] slot, events in
                io.append((slot, events))
                journal.append("io \(slot)")
                loop.breakAll()
            }
            let timerFired: (Int) -> Void = { [unowned self] slot in
                timersFired.append(slot)
                journal.append("timer \(slot)")
            }
            callbacks = bracketingIterations
                ? LoopCallbacks(ioReady: ioReady, timerFired: timerFired, iteration: { [unowned self] in
                    journal.append("began")
                    loop.invokePending()
                    journal.append("ended")
                })
                : LoopCallbacks(ioReady: ioReady, timerFired: timerFired)
            loop.install(callbacks)
        }

        deinit {
            ios.deallocate()
            timers.deallocate()
        }
    }

    func testSlotNumbersTravelThroughTheWatcher() throws {
        let recorder = try Recorder(slots: 3, bracketingIterations: false)
        let loop = recorder.loop
        PooledTimer(recorder.timers + 0).arm(inSeconds: 0.02, on: loop)
        PooledTimer(recorder.timers + 2).arm(inSeconds: 0.01, on: loop)
        loop.run()
        XCTAssertEqual(recorder.timersFired, [2, 0])

        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds), 0)
        defer { fds.forEach { Socket.close($0) } }
        let io = PooledIO(recorder.ios + 1)
        io.watch(fd: fds[0], events: [.readable, .writable], on: loop)
        XCTAssertTrue(io.isActive)
        XCTAssertEqual(io.events, [.readable, .writable])
        loop.run()
        XCTAssertEqual(recorder.io.map(\.0), [1])
        XCTAssertEqual(recorder.io.first?.1, .writable)
        io.watch(fd: fds[0], events: .none, on: loop)
        XCTAssertFalse(io.isActive)
    }

    /// Both timers come due in one iteration and the socket is ready in a
    /// later one; each iteration's callbacks run inside one call of the
    /// iteration closure. (libev also runs its pending callbacks once when
    /// `ev_run` starts, with nothing pending: that call is empty.)
    func testEachIterationRunsInsideTheIterationClosure() throws {
        let recorder = try Recorder(slots: 2, bracketingIterations: true)
        let loop = recorder.loop
        PooledTimer(recorder.timers + 1).arm(inSeconds: 0.001, on: loop)
        PooledTimer(recorder.timers + 0).arm(inSeconds: 0.002, on: loop)
        usleep(20_000)
        loop.updateNow()
        loop.run()
        XCTAssertEqual(recorder.journal, ["began", "ended", "began", "timer 1", "timer 0", "ended"])

        var fds: [Int32] = [0, 0]
        XCTAssertEqual(socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_NONBLOCK.rawValue), 0, &fds), 0)
        defer { fds.forEach { Socket.close($0) } }
        recorder.journal = []
        PooledIO(recorder.ios).watch(fd: fds[0], events: .writable, on: loop)
        loop.run()
        XCTAssertEqual(recorder.journal, ["began", "ended", "began", "io 0", "ended"])
        PooledIO(recorder.ios).stop(on: loop)
    }
}

/// 127.0.0.1, port 0.
private var loopbackPortZero: SocketAddress {
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
    return .v4(address)
}

/// Each socket call returns the outcome its situation calls for.
final class SocketOutcomeTests: XCTestCase {
    private func connectedPair() throws -> (client: Int32, server: Int32, listener: Int32) {
        let listener = try Socket.listen(on: loopbackPortZero, reusePort: false, backlog: 4)
        let address = try XCTUnwrap(SocketAddress.local(of: listener))
        let client = try Socket.makeTCP(family: AF_INET)
        XCTAssertNil(Socket.startConnect(client, to: address))
        var server: Int32 = -1
        for _ in 0..<1000 {
            if case .accepted(let fd) = Socket.accept(listener) { server = fd; break }
            usleep(1000)
        }
        XCTAssertGreaterThanOrEqual(server, 0)
        return (client, server, listener)
    }

    func testReadOutcomes() throws {
        let (client, server, listener) = try connectedPair()
        defer { Socket.close(listener); Socket.close(server) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
        defer { buffer.deallocate() }
        XCTAssertEqual(Socket.read(server, into: buffer), .wouldBlock)
        let hello = Array("hello".utf8)
        XCTAssertEqual(hello.withUnsafeBytes { Socket.send(client, $0) }, .wrote(5))
        usleep(10_000)
        XCTAssertEqual(Socket.read(server, into: buffer), .read(5))
        XCTAssertEqual(Array(buffer.prefix(5)), hello)
        Socket.shutdownWrite(client)
        usleep(10_000)
        XCTAssertEqual(Socket.read(server, into: buffer), .endOfInput)
        Socket.close(client)
    }

    func testReadAfterAResetFails() throws {
        let (client, server, listener) = try connectedPair()
        defer { Socket.close(listener); Socket.close(server) }
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
        defer { buffer.deallocate() }
        Socket.abort(client)
        usleep(10_000)
        XCTAssertEqual(Socket.read(server, into: buffer), .failed(.connectionReset))
    }

    func testSendToAVanishedPeerIsEPIPENotSIGPIPE() throws {
        let (client, server, listener) = try connectedPair()
        defer { Socket.close(listener); Socket.close(client) }
        Socket.abort(server)
        usleep(10_000)
        let octets = [UInt8](repeating: 1, count: 1024)
        var outcomes: [WriteOutcome] = []
        for _ in 0..<3 { outcomes.append(octets.withUnsafeBytes { Socket.send(client, $0) }) }
        // The first send may hit the reset; by the next, the socket is dead.
        XCTAssertTrue(outcomes.contains(.failed(.brokenPipe)) || outcomes.contains(.failed(.connectionReset)), "\(outcomes)")
    }

    func testSendReportsWouldBlockWhenTheBufferIsFull() throws {
        let (client, server, listener) = try connectedPair()
        defer { Socket.close(listener); Socket.close(server); Socket.close(client) }
        let chunk = [UInt8](repeating: 2, count: 65536)
        var total = 0
        var last = WriteOutcome.wrote(0)
        for _ in 0..<10_000 {
            last = chunk.withUnsafeBytes { Socket.send(client, $0) }
            guard case .wrote(let n) = last else { break }
            total += n
        }
        XCTAssertEqual(last, .wouldBlock)
        XCTAssertGreaterThan(total, 0)
    }

    func testAcceptOnAnEmptyBacklogWouldBlock() throws {
        let listener = try Socket.listen(on: loopbackPortZero, reusePort: false, backlog: 4)
        defer { Socket.close(listener) }
        XCTAssertEqual(Socket.accept(listener), .wouldBlock)
    }

    func testConnectingToAClosedPortIsRefused() throws {
        let listener = try Socket.listen(on: loopbackPortZero, reusePort: false, backlog: 4)
        let address = try XCTUnwrap(SocketAddress.local(of: listener))
        Socket.close(listener)
        let fd = try Socket.makeTCP(family: AF_INET)
        defer { Socket.close(fd) }
        XCTAssertNil(Socket.startConnect(fd, to: address))
        var entry = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
        XCTAssertEqual(poll(&entry, 1, 5000), 1)
        XCTAssertEqual(Socket.pendingError(fd), .connectionRefused)
    }

    func testReusePortListenersShareAPortButAPlainOneCannot() throws {
        let first = try Socket.listen(on: loopbackPortZero, reusePort: true, backlog: 4)
        defer { Socket.close(first) }
        let address = try XCTUnwrap(SocketAddress.local(of: first))
        let second = try Socket.listen(on: address, reusePort: true, backlog: 4)
        Socket.close(second)
        XCTAssertThrowsError(try Socket.listen(on: address, reusePort: false, backlog: 4)) { error in
            XCTAssertEqual((error as? SocketError)?.errno, .addressInUse)
        }
    }
}

final class SocketAddressTests: XCTestCase {
    func testEmptyHostIsEveryIPv4Interface() throws {
        let addresses = try SocketAddress.resolve(host: "", port: 1060, passive: true)
        XCTAssertEqual(addresses.map(\.pythonDescription), ["('0.0.0.0', 1060)"])
        XCTAssertTrue(addresses[0].isUnspecified)
    }

    func testLiteralsAndTheirPythonSpelling() throws {
        XCTAssertEqual(try SocketAddress.resolve(host: "0.0.0.0", port: 7, passive: true).first?.pythonDescription, "('0.0.0.0', 7)")
        let any6 = try XCTUnwrap(SocketAddress.resolve(host: "::", port: 7, passive: true).first)
        XCTAssertEqual(any6.pythonDescription, "('::', 7, 0, 0)")
        XCTAssertTrue(any6.isUnspecified)
        XCTAssertEqual(try SocketAddress.resolve(host: "::1", port: 1060, passive: false).first?.description, "[::1]:1060")
        XCTAssertEqual(try SocketAddress.resolve(host: "127.0.0.1", port: 1060, passive: false).first?.description, "127.0.0.1:1060")
        XCTAssertFalse(try XCTUnwrap(SocketAddress.resolve(host: "127.0.0.1", port: 1, passive: true).first).isUnspecified)
    }

    func testUnknownHostFailsWithItsName() {
        XCTAssertThrowsError(try SocketAddress.resolve(host: "no-such-host.invalid", port: 1, passive: true)) { error in
            XCTAssertEqual((error as? ResolutionError)?.host, "no-such-host.invalid")
            XCTAssertTrue("\(error)".hasPrefix("cannot resolve host 'no-such-host.invalid': "), "\(error)")
        }
    }

    func testWithPortKeepsTheHost() throws {
        let address = try XCTUnwrap(SocketAddress.resolve(host: "127.0.0.1", port: 0, passive: true).first)
        XCTAssertEqual(address.withPort(4242).description, "127.0.0.1:4242")
    }
}
