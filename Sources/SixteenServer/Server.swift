#if canImport(Glibc)
import Glibc
#endif
import Logging
import Reactor
import SixteenProtocol
import Synchronization

/// The `sixteen` daemon: N reactor threads, each with its own libev loop and
/// its own `SO_REUSEPORT` listener on the same address, and, if configured,
/// an admin listener on a reactor thread of its own (so no admin client can
/// slow the protocol down).
///
/// `init` resolves and binds, so every address problem surfaces there, before
/// any thread starts. `start()` runs the reactors; `requestShutdown()` drains
/// them and `stopNow()` closes every session at once (from any thread).
public final class Server: Sendable {
    public let configuration: ServerConfiguration
    /// Where each service listens, with the real port, in configuration order.
    public let addresses: [SocketAddress]
    /// The first service's address.
    public var address: SocketAddress { addresses[0] }
    /// The admin listener's address, with the real port; nil without one.
    public let adminAddress: SocketAddress?
    let services: [BoundService]
    let logger: Logger
    /// How the descriptors are shared out, and so the connection cap.
    public let descriptorPlan: DescriptorPlan
    let connectionLimit: ConnectionLimit
    let adminFD: Int32
    private let state = Lock(RunState())
    private let finishedReactors = Atomic<Int>(0)
    private let draining = Atomic<Bool>(false)

    /// A service with its listeners, one per reactor.
    struct BoundService: Sendable {
        let served: ServedProtocol
        let address: SocketAddress
        let listenerFDs: [Int32]
        /// Whether the listeners came from outside (socket activation, an
        /// upgrade): never shut down, and handed on as they came.
        let inherited: Bool
    }

    private struct RunState {
        var prepared: [PreparedProtocol]?
        var reactors: [UncheckedReactor] = []
        var admin: UncheckedReactor?
        var threads: [ReactorThread] = []
        var adminThread: ReactorThread?
        var started = false
    }

    /// A reactor handed to its own thread; only that thread touches it,
    /// except for its wake-ups and `metrics`, which are thread-safe.
    struct UncheckedReactor: @unchecked Sendable {
        let reactor: any ServingReactor
    }

    /// Takes the listeners handed over (`configuration.inherited`) and binds
    /// the rest: one listener per reactor for each service, and the admin
    /// listener. Nothing else happens until `prepare` and `start`.
    public init(configuration: ServerConfiguration, logger: Logger) throws(ServerError) {
        self.configuration = configuration
        self.logger = logger
        let plan = DescriptorPlan(
            limit: DescriptorLimit.soft, reactors: max(1, configuration.reactors) * configuration.services.count,
            admin: configuration.admin, spills: configuration.spills, requested: configuration.maxConnections)
        guard plan.maxConnections >= 1 else { throw .tooFewDescriptors(plan) }
        descriptorPlan = plan
        connectionLimit = ConnectionLimit(cap: plan.maxConnections)
        let listeners = try Listeners(configuration)
        services = listeners.services
        addresses = services.map(\.address)
        adminFD = listeners.adminFD
        adminAddress = adminFD >= 0 ? SocketAddress.local(of: adminFD) : nil
    }

    /// Checks what each protocol can check once (a spill directory is
    /// writable, as the user the daemon now runs as) and makes what its
    /// reactors share. `start` does it if it was not done.
    public func prepare() throws(ServerError) {
        try state.withLock { (state: inout RunState) throws(ServerError) in
            guard state.prepared == nil else { return }
            var prepared: [PreparedProtocol] = []
            for service in services {
                prepared.append(try service.served.prepare(descriptorPlan))
            }
            state.prepared = prepared
        }
    }

    /// Starts the reactor threads. Sessions are served from here on.
    /// `whenFinished` is woken each time a protocol reactor has drained and stopped.
    public func start(whenFinished: AsyncWakeup? = nil) throws(ServerError) {
        // A write to a vanished peer must yield EPIPE, never kill the process.
        signal(SIGPIPE, SIG_IGN)
        try prepare()
        let addressLimit = configuration.maxConnectionsPerAddress.map {
            AddressLimit(cap: $0, expectedAddresses: descriptorPlan.maxConnections)
        }
        // Behind a PROXY header, the handler learns the client's address and admits it.
        let settings = ReactorSettings(
            acceptBatch: configuration.acceptBatch, shutdownTimeout: configuration.shutdownTimeout,
            readBufferSize: configuration.readBufferSize, connectionCap: nil, sharedLimit: connectionLimit,
            addressLimit: configuration.proxyProtocol ? nil : addressLimit,
            handlerAddressLimit: configuration.proxyProtocol ? addressLimit : nil)
        try state.withLock { (state: inout RunState) throws(ServerError) in
            precondition(!state.started, "Server.start() called twice")
            state.started = true
            let prepared = state.prepared!
            let listeners = services.indices.flatMap { service in services[service].listenerFDs.map { (service, $0) } }
            for (index, (service, fd)) in listeners.enumerated() {
                do throws(ReactorError) {
                    let reactor = try prepared[service].makeReactor(index, services[service].listenerFDs.count, fd, settings, logger)
                    state.reactors.append(UncheckedReactor(reactor: reactor))
                } catch {
                    // Reactors made so far own (and close) their listeners; close the rest.
                    listeners[index...].forEach { Socket.close($0.1) }
                    if adminFD >= 0 { Socket.close(adminFD) }
                    throw .reactor(error)
                }
            }
            if adminFD >= 0 {
                let admin = configuration.admin ?? AdminConfiguration()
                let handler = AdminHandlerConfiguration(
                    timeouts: AdminTimeouts(request: admin.requestTimeout, response: admin.requestTimeout),
                    respond: { [weak self] route in self?.respond(to: route) ?? AdminResponse(.serviceUnavailable, "stopping\n") })
                let adminSettings = ReactorSettings(
                    acceptBatch: 16, shutdownTimeout: .zero, readBufferSize: 16 << 10, connectionCap: admin.maxConnections,
                    sharedLimit: nil)
                do throws(ReactorError) {
                    let reactor = try ServerReactor<AdminHandler>(
                        index: 0, reactorCount: 1, listenerFD: adminFD, configuration: handler,
                        shared: (), settings: adminSettings, logger: logger)
                    state.admin = UncheckedReactor(reactor: reactor)
                } catch {
                    Socket.close(adminFD)
                    throw .reactor(error)
                }
            }
            connectionLimit.attach(state.reactors.map(\.reactor.resumeWakeup))
            do throws(ReactorError) {
                for (index, handle) in state.reactors.enumerated() {
                    state.threads.append(try ReactorThread(name: "sixteen-r\(index)") { [self] in
                        blockSignals(Self.handledSignals)
                        handle.reactor.run()
                        self.finishedReactors.add(1, ordering: .releasing)
                        whenFinished?.send()
                    })
                }
                if let admin = state.admin {
                    state.adminThread = try ReactorThread(name: "sixteen-admin") {
                        blockSignals(Self.handledSignals)
                        admin.reactor.run()
                    }
                }
            } catch {
                throw .reactor(error)
            }
        }
    }

    /// Says the server is draining (`/ready` answers 503) while every reactor
    /// still accepts: the `--drain-delay` before `requestShutdown`.
    public func announceDrain() {
        draining.store(true, ordering: .relaxed)
    }

    /// Asks every reactor to stop accepting and drain. Safe from any thread,
    /// idempotent, and returns at once; `wait()` returns once drained. The
    /// admin listener keeps answering (`/ready` says 503) until then.
    public func requestShutdown() {
        draining.store(true, ordering: .relaxed)
        let wakeups = state.withLock { $0.reactors.map(\.reactor.drainWakeup) }
        wakeups.forEach { $0.send() }
    }

    /// Closes every session at once (counted as aborted) and stops every
    /// reactor. Safe from any thread; `wait()` returns soon after.
    public func stopNow() {
        draining.store(true, ordering: .relaxed)
        let wakeups = state.withLock { $0.reactors.map(\.reactor.abortWakeup) }
        wakeups.forEach { $0.send() }
    }

    /// Waits for every protocol reactor to finish (at most `timeout`, if
    /// given), stops the admin listener, and returns the totals. With a
    /// timeout, threads still running are left behind: only for an exit.
    @discardableResult
    public func wait(timeout: Duration? = nil) -> MetricsSnapshot {
        let threads = state.withLock { $0.threads }
        var allJoined = true
        for thread in threads {
            if let timeout { allJoined = thread.join(timeout: timeout) && allJoined } else { thread.join() }
        }
        let (admin, adminThread) = state.withLock { ($0.admin, $0.adminThread) }
        admin?.reactor.abortWakeup.send()
        if let adminThread {
            if let timeout { _ = adminThread.join(timeout: timeout) } else { adminThread.join() }
        }
        if !allJoined { logger.error("a reactor did not stop within \(timeout ?? .zero); exiting without it") }
        return metrics()
    }

    /// Whether every protocol reactor has drained and stopped.
    public var isFinished: Bool {
        finishedReactors.load(ordering: .acquiring) == reactorCount
    }

    /// Whether a drain (or a stop) has begun.
    public var isDraining: Bool { draining.load(ordering: .relaxed) }

    /// Whether the server takes new connections now: started, not draining,
    /// and every reactor accepting (none paused at `--max-connections`).
    public var isAccepting: Bool {
        guard !draining.load(ordering: .relaxed) else { return false }
        let reactors = reactorMetrics
        return !reactors.isEmpty && reactors.allSatisfy { $0.common.load(.accepting) == 1 }
    }

    /// Connections each reactor has accepted (how evenly `SO_REUSEPORT` spreads them).
    public var acceptedPerReactor: [Int] {
        reactorMetrics.map { $0.common.load(.accepted) }
    }

    /// The number of reactors, over every service.
    public var reactorCount: Int { services.reduce(0) { $0 + $1.listenerFDs.count } }

    var reactorMetrics: [ReactorMetrics] {
        state.withLock { $0.reactors.map(\.reactor.metrics) }
    }

    var preparedServices: [PreparedProtocol]? {
        state.withLock { $0.prepared }
    }

    var adminMetrics: ReactorMetrics? {
        state.withLock { $0.admin?.reactor.metrics }
    }

    /// The signals the daemon watches; reactor threads block them.
    public static let handledSignals: [Int32] = [SIGINT, SIGTERM, SIGQUIT, SIGHUP, SIGUSR1, SIGUSR2]
}
