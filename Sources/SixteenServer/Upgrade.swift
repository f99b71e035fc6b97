#if canImport(Glibc)
import Glibc
#endif
import Logging
import Reactor

extension Server {
    /// Every listening socket, named as a new process takes them back: the
    /// protocol's name for each of its listeners, `admin` for the admin one.
    func handover() -> [InheritedListener] {
        var listeners = services.flatMap { service in service.listenerFDs.map { InheritedListener(fd: $0, name: service.served.name) } }
        if adminFD >= 0 { listeners.append(InheritedListener(fd: adminFD, name: "admin")) }
        return listeners
    }
}

/// A zero-downtime upgrade (SIGUSR2), run on the control loop: start the
/// binary on disk with every listening socket (its descriptors, not new
/// binds: closing a `SO_REUSEPORT` listener resets what waits in its queue),
/// wait for it to say it is ready on a pipe, then let this process drain
/// and exit. Until the new process is ready, this one serves as before; if
/// it fails to start, this one logs why and goes on.
final class Upgrade {
    private let server: Server
    private let loop: EventLoop
    private let logger: Logger
    private let succeeded: () -> Void
    private var child: pid_t = 0
    private var readEnd: Int32 = -1
    private var watcher: IOWatcher?
    private var deadline: TimerWatcher?

    /// How long the new process has to say it is ready.
    static var readyTimeout: Double { 60 }

    var inProgress: Bool { child != 0 }

    init(server: Server, loop: EventLoop, logger: Logger, succeeded: @escaping () -> Void) {
        self.server = server
        self.loop = loop
        self.logger = logger
        self.succeeded = succeeded
    }

    func begin() {
        guard !inProgress else {
            logger.warning("Received SIGUSR2: an upgrade is already under way (process \(child))")
            return
        }
        guard let executable = Spawn.executablePath else {
            logger.error("Received SIGUSR2: cannot upgrade: the path of the running binary is unknown; still serving")
            return
        }
        let ends: [Int32]
        switch Spawn.pipe() {
        case .success(let pair): ends = [pair.0, pair.1]
        case .failure(let error):
            logger.error("Received SIGUSR2: cannot upgrade: no pipe (\(error)); still serving")
            return
        }
        let listeners = server.handover()
        let handed = ["SIXTEEN_LISTEN_FDS", "SIXTEEN_LISTEN_FDNAMES", "SIXTEEN_READY_FD", "LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES"]
        var environment = Spawn.currentEnvironment.filter { entry in !handed.contains { entry.hasPrefix($0 + "=") } }
        environment += [
            "SIXTEEN_LISTEN_FDS=\(listeners.count)",
            "SIXTEEN_LISTEN_FDNAMES=\(listeners.map(\.name).joined(separator: ":"))",
            "SIXTEEN_READY_FD=\(3 + listeners.count)",
        ]
        let result = Spawn.start(executable, arguments: CommandLine.arguments, environment: environment, handing: listeners.map(\.fd) + [ends[1]])
        Glibc.close(ends[1])
        guard case .success(let pid) = result else {
            Glibc.close(ends[0])
            if case .failure(let error) = result {
                logger.error("Received SIGUSR2: cannot start \(executable): \(error); still serving")
            }
            return
        }
        child = pid
        readEnd = ends[0]
        logger.info("Received SIGUSR2: upgrading: started \(executable) as process \(pid) with \(listeners.count) listening sockets; serving until it is ready")
        watcher = IOWatcher(loop: loop, fd: readEnd, events: .readable) { [unowned self] _ in self.heard() }
        watcher?.start()
        deadline = TimerWatcher(loop: loop) { [unowned self] in
            self.failed("it was not ready within \(Int(Self.readyTimeout)) s", kill: true)
        }
        deadline?.start(after: Self.readyTimeout)
    }

    /// The new process wrote "ready", or closed the pipe (it ended).
    private func heard() {
        var buffer = [UInt8](repeating: 0, count: 64)
        let count = read(readEnd, &buffer, buffer.count)
        if count < 0, errno == EINTR || errno == EAGAIN { return }
        if count > 0, String(decoding: buffer[..<count], as: UTF8.self).hasPrefix("ready") {
            logger.info("Upgrade: process \(child) is ready; this process (\(getpid())) stops accepting and drains")
            finish()
            succeeded()
            return
        }
        // EOF: it exited (or closed the pipe) without being ready.
        var status: Int32?
        for _ in 0..<100 {
            status = Spawn.reap(child)
            if status != nil { break }
            usleep(10_000)
        }
        failed(status.map { "it exited with status \($0)" } ?? "it closed its pipe without being ready", kill: status == nil)
    }

    private func failed(_ reason: String, kill shouldKill: Bool) {
        if shouldKill {
            kill(child, SIGKILL)
            var status: Int32 = 0
            waitpid(child, &status, 0)
        }
        logger.error("Upgrade failed: the new process \(child) \(reason); still serving")
        finish()
    }

    /// Stops both watchers but keeps them: `finish` runs inside their own
    /// callbacks, and an `IOWatcher` must outlive its handler's call. The
    /// next upgrade replaces them.
    private func finish() {
        watcher?.stop()
        deadline?.stop()
        if readEnd >= 0 { Glibc.close(readEnd) }
        readEnd = -1
        child = 0
    }
}
