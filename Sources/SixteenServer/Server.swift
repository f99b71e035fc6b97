#if canImport(Glibc)
import Glibc
#endif
import Logging
import Reactor
import Synchronization

/// The `sixteen` daemon: N reactor threads, each with its own libev loop and
/// its own `SO_REUSEPORT` listener on the same address.
///
/// `init` resolves and binds, so every address problem surfaces there, before
/// any thread starts. `start()` runs the reactors; `requestShutdown()` (from
/// any thread, or a signal through `runUntilSignalled`) drains them.
public final class Server: Sendable {
    public let configuration: ServerConfiguration
    /// The address the listeners are bound to, with the real port.
    public let address: SocketAddress
    private let listenerFDs: [Int32]
    let logger: Logger
    private let state = Lock(RunState())
    private let finishedReactors = Atomic<Int>(0)

    private struct RunState {
        var reactors: [UncheckedReactor] = []
        var threads: [ReactorThread] = []
        var finished: [ServerStats] = []
        var started = false
        var joined = false
    }

    /// A reactor handed to its own thread; only that thread touches it,
    /// except for `stopWakeup` and `counters`, which are thread-safe.
    private struct UncheckedReactor: @unchecked Sendable {
        let reactor: any ReactorHandle
    }

    /// Resolves the host and binds one listener per reactor.
    public init(configuration: ServerConfiguration, logger: Logger) throws(ServerError) {
        self.configuration = configuration
        self.logger = logger
        let candidates: [SocketAddress]
        do {
            candidates = try SocketAddress.resolve(host: configuration.host, port: configuration.port, passive: true)
        } catch {
            throw .unresolvableHost(error)
        }
        if configuration.serverProtocol == .upper {
            // Find out now, not at the first slow client, whether spilling works.
            switch SpillDirectory(path: configuration.output.spillDirectory).makeFile() {
            case .success(let fd): Socket.close(fd)
            case .failure(let error): throw .unusableSpillDirectory(path: configuration.output.spillDirectory, error)
            }
        }
        let requested = candidates[0]
        let port = try Self.claimPort(requested, backlog: configuration.backlog)
        let address = requested.withPort(port)
        var fds: [Int32] = []
        for _ in 0..<max(1, configuration.reactors) {
            do {
                fds.append(try Socket.listen(on: address, reusePort: true, backlog: configuration.backlog))
            } catch {
                fds.forEach(Socket.close)
                throw .cannotListen(address: address.description, error)
            }
        }
        self.address = address
        listenerFDs = fds
    }

    /// Binds once without `SO_REUSEPORT` to learn the port (for `-p 0`) and to
    /// find out whether anyone listens there already. Our own listeners all
    /// set `SO_REUSEPORT`, and the kernel would let them share a port with
    /// another process (of the same user) that does too: this probe turns
    /// that silent sharing into "address in use".
    private static func claimPort(_ address: SocketAddress, backlog: Int32) throws(ServerError) -> Int {
        let probe: Int32
        do {
            probe = try Socket.listen(on: address, reusePort: false, backlog: 1)
        } catch {
            throw .cannotListen(address: address.description, error)
        }
        defer { Socket.close(probe) }
        return SocketAddress.local(of: probe)?.port ?? address.port
    }

    /// Starts the reactor threads. Sessions are served from here on.
    /// `whenFinished` is woken each time a reactor has drained and stopped.
    public func start(whenFinished: AsyncWakeup? = nil) throws(ServerError) {
        // A write to a vanished peer must yield EPIPE, never kill the process.
        signal(SIGPIPE, SIG_IGN)
        try state.withLock { (state: inout RunState) throws(ServerError) in
            precondition(!state.started, "Server.start() called twice")
            state.started = true
            for (index, fd) in listenerFDs.enumerated() {
                let reactor: any ReactorHandle
                do throws(ReactorError) {
                    switch configuration.serverProtocol {
                    case .sixteen:
                        reactor = try ServerReactor<SixteenGlue>(index: index, listenerFD: fd, configuration: configuration, logger: logger)
                    case .upper:
                        reactor = try ServerReactor<UpperGlue>(index: index, listenerFD: fd, configuration: configuration, logger: logger)
                    }
                } catch {
                    // Reactors made so far own (and close) their listeners; close the rest.
                    listenerFDs[index...].forEach(Socket.close)
                    throw .reactor(error)
                }
                state.reactors.append(UncheckedReactor(reactor: reactor))
            }
            for (index, handle) in state.reactors.enumerated() {
                do throws(ReactorError) {
                    state.threads.append(try ReactorThread(name: "sixteen-r\(index)") { [self] in
                        blockTerminationSignals()
                        handle.reactor.run()
                        self.finishedReactors.add(1, ordering: .releasing)
                        whenFinished?.send()
                    })
                } catch {
                    throw .reactor(error)
                }
            }
        }
    }

    /// Asks every reactor to stop accepting and drain. Safe from any thread,
    /// idempotent, and returns at once; `wait()` returns once drained.
    public func requestShutdown() {
        let wakeups = state.withLock { $0.reactors.map(\.reactor.stopWakeup) }
        wakeups.forEach { $0.send() }
    }

    /// Waits for every reactor to finish and returns the totals.
    @discardableResult
    public func wait() -> ServerStats {
        let threads = state.withLock { $0.threads }
        threads.forEach { $0.join() }
        return stats
    }

    /// The counts so far, summed over the reactors (each reactor's figures are
    /// exact; the sum is a snapshot while the server runs).
    public var stats: ServerStats {
        state.withLock { $0.reactors.map { $0.reactor.counters.snapshot() } }.reduce(ServerStats(), +)
    }

    /// The counts so far, one entry per reactor (how evenly `SO_REUSEPORT` spreads the load).
    public var statsPerReactor: [ServerStats] {
        state.withLock { $0.reactors.map { $0.reactor.counters.snapshot() } }
    }

    /// Whether every reactor has drained and stopped.
    public var isFinished: Bool {
        finishedReactors.load(ordering: .acquiring) == listenerFDs.count
    }

    /// The number of reactors that will run.
    public var reactorCount: Int { listenerFDs.count }
}
