#if canImport(Glibc)
import Glibc
#endif
import Logging
import Reactor
import SixteenProtocol

/// What the daemon tells its supervisor (systemd's notify protocol, when
/// `$NOTIFY_SOCKET` is set), and takes from the process it replaces.
public struct Supervision: Sendable {
    /// How often `STATUS=` says what the daemon is doing.
    public var statusInterval: Duration
    /// In a process an upgrade started: where to say "ready" to the old one.
    public var readyDescriptor: Int32?

    public init(statusInterval: Duration = .seconds(10), readyDescriptor: Int32? = nil) {
        self.statusInterval = statusInterval
        self.readyDescriptor = readyDescriptor
    }
}

/// How a daemon run ended.
public struct DaemonExit: Sendable {
    /// Every count at the end.
    public let totals: MetricsSnapshot
    /// 0 after a drain; 128 + the signal after an immediate stop; 1 when a
    /// reactor did not stop in time.
    public let status: Int32
}

extension Server {
    /// Signals whose default action would kill the daemon and that mean
    /// nothing to it: ignored, so that a stray `kill -ALRM`, a file-size
    /// limit (an oversized spill write then fails with EFBIG, ending only
    /// that session) or a vanished peer (EPIPE) cannot take it down. The
    /// synchronous fault signals (SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP,
    /// SIGSYS, SIGABRT) are not in the list: they mean a real crash.
    public static var ignoredSignals: [Int32] {
        [SIGPIPE, SIGXFSZ, SIGXCPU, SIGALRM, SIGVTALRM, SIGPROF, SIGIO, SIGPWR, SIGSTKFLT]
            + Array(realtimeSignals)
    }

    /// Call before announcing readiness: ignores `ignoredSignals`, and blocks
    /// `handledSignals` in the calling thread until `runUntilSignalled`
    /// watches them. A supervisor may signal as soon as it reads the
    /// `Listening at` line; the signal then waits, and is handled.
    public static func holdSignals() {
        for signal in ignoredSignals { Glibc.signal(signal, SIG_IGN) }
        blockSignals(handledSignals)
    }

    /// Serves until SIGINT, SIGTERM or SIGQUIT, and returns the totals.
    ///
    /// The signals are watched on the default loop, run by the calling
    /// thread (the reactor threads block them):
    /// - SIGINT, SIGTERM: `/ready` answers 503 at once; after `drainDelay`
    ///   (accepting all the while, so that a balancer takes the daemon out
    ///   first), stop accepting, give sessions in flight `shutdownTimeout`,
    ///   then return with status 0. A second one stops at once.
    /// - SIGQUIT: stop at once.
    /// - SIGUSR1: log every counter at info level; keep serving.
    /// - SIGHUP: log that there is nothing to reload; keep serving.
    /// - SIGUSR2: upgrade: start the binary on disk with the listening
    ///   sockets, and drain once it is ready (see `Upgrade`).
    ///
    /// With `$NOTIFY_SOCKET` it tells systemd `READY=1` once every reactor
    /// accepts (and `MAINPID=` when an upgrade started it), `STATUS=` every
    /// `statusInterval`, `STOPPING=1` when a drain begins, and `WATCHDOG=1`
    /// every half of `$WATCHDOG_USEC` while every reactor's loop turns.
    ///
    /// Stopping at once closes every session (counted as aborted), joins the
    /// reactors (at most a second) and returns with status 128 + the signal;
    /// the caller prints the totals either way. The watchers are never
    /// stopped: a signal that arrives after the end stays harmless (libev
    /// would restore its default action, which kills).
    public func runUntilSignalled(
        supervision: Supervision = Supervision(), log: @escaping (MetricsSnapshot) -> Void = { _ in }
    ) throws(ServerError) -> DaemonExit {
        let control: EventLoop
        do {
            control = try EventLoop.makeDefault()
        } catch {
            throw .reactor(error)
        }
        let finished = AsyncWatcher(loop: control) { [unowned self, unowned control] in
            if self.isFinished { control.breakAll() }
        }
        var draining = false
        var status: Int32 = 0
        var upgrade: Upgrade?
        // However a stop goes, the control loop does not wait on a stuck
        // reactor for ever: past this timer it returns, and the totals are
        // printed from what the reactors counted so far.
        let giveUp = TimerWatcher(loop: control) { [unowned self, unowned control] in
            self.logger.error("the reactors did not stop in time; exiting without waiting for them")
            if status == 0 { status = 1 }
            control.breakAll()
        }
        let stopAtOnce: (Int32) -> Void = { [unowned self] signal in
            guard status == 0 else { return }
            status = 128 + signal
            self.logger.warning("Received \(signalName(signal))\(draining && signal != SIGQUIT ? " again" : ""): closing every session and stopping at once")
            self.stopNow()
            giveUp.start(after: 1)
        }
        // Stops accepting and drains: at once, or once the --drain-delay is over.
        let beginDrain: (Int32?) -> Void = { [unowned self] signal in
            let active = self.metrics().active
            let cause = signal.map { "Received \(signalName($0))" } ?? "The --drain-delay is over"
            self.logger.info("\(cause): no longer accepting; draining \(active) sessions (up to \(self.configuration.shutdownTimeout))")
            ServiceManager.notify("STOPPING=1\nSTATUS=draining \(active) sessions")
            self.requestShutdown()
            giveUp.start(after: Double(self.configuration.shutdownTimeout.nanoseconds) / 1e9 + 5)
        }
        let drainDelay = TimerWatcher(loop: control) {
            guard status == 0 else { return }
            beginDrain(nil)
        }
        let onSignal: (Int32) -> Void = { [unowned self] signal in
            switch signal {
            case SIGINT, SIGTERM:
                guard !draining else { return stopAtOnce(signal) }
                draining = true
                let delay = self.configuration.drainDelay
                guard delay > .zero else { return beginDrain(signal) }
                self.logger.info("Received \(signalName(signal)): /ready answers 503; accepting for \(delay) more (--drain-delay) while balancers take this daemon out, then draining")
                ServiceManager.notify("STOPPING=1\nSTATUS=unready: accepting for \(delay) more, then draining")
                self.announceDrain()
                drainDelay.start(after: Double(delay.nanoseconds) / 1e9)
            case SIGQUIT:
                stopAtOnce(signal)
            case SIGUSR1:
                log(self.metrics())
            case SIGHUP:
                self.logger.info("Received SIGHUP: there is no configuration to reload; still serving")
            case SIGUSR2:
                guard !draining else {
                    self.logger.warning("Received SIGUSR2 while draining: no upgrade")
                    return
                }
                upgrade?.begin()
            default:
                break
            }
        }
        // The upgrade hands over, then this process drains as for SIGTERM,
        // but tells systemd nothing: the new process is its main one now.
        upgrade = Upgrade(server: self, loop: control, logger: logger) { [unowned self] in
            draining = true
            self.requestShutdown()
            giveUp.start(after: Double(self.configuration.shutdownTimeout.nanoseconds) / 1e9 + 5)
        }
        let watchers = Self.handledSignals.map { SignalWatcher(loop: control, signal: $0, handler: onSignal) }
        watchers.forEach { $0.start() }
        // Watched now: let any signal held by holdSignals() through.
        unblockSignals(Self.handledSignals)
        finished.start()
        try start(whenFinished: finished.wakeup)
        let pulse = supervise(supervision, on: control)
        control.run()
        pulse.forEach { $0.stop() }
        let totals = wait(timeout: isFinished ? nil : .seconds(1))
        // Keep the watchers (see above): only the wake-up and the timer go.
        finished.stop()
        giveUp.stop()
        drainDelay.stop()
        keptSignalWatchers.withLock { $0 += watchers }
        return DaemonExit(totals: totals, status: status)
    }
}

extension Server {
    /// Tells the supervisor the daemon is ready (and the old process, after
    /// an upgrade), then keeps it told: status and watchdog timers.
    private func supervise(_ supervision: Supervision, on control: EventLoop) -> [TimerWatcher] {
        var ready = "READY=1\nSTATUS=\(statusLine)"
        if supervision.readyDescriptor != nil { ready = "MAINPID=\(getpid())\n" + ready }
        ServiceManager.notify(ready)
        if let fd = supervision.readyDescriptor {
            var line = Array("ready\n".utf8)
            _ = Glibc.write(fd, &line, line.count)
            Glibc.close(fd)
        }
        var timers: [TimerWatcher] = []
        let status = TimerWatcher(loop: control) { [unowned self] in
            if !self.isDraining { ServiceManager.notify("STATUS=\(self.statusLine)") }
        }
        let interval = Double(supervision.statusInterval.nanoseconds) / 1e9
        status.start(after: interval, repeat: interval)
        timers.append(status)
        if let watchdog = ServiceManager.watchdogInterval {
            let pinger = TimerWatcher(loop: control) { [unowned self] in
                // Only while every loop turns: a stalled reactor lets systemd restart us.
                if self.stalledReactors().isEmpty { ServiceManager.notify("WATCHDOG=1") }
            }
            let seconds = Double(watchdog.nanoseconds) / 1e9
            pinger.start(after: seconds, repeat: seconds)
            timers.append(pinger)
        }
        return timers
    }

    /// `Listening at …; 3 active, 1,234 sessions`: what `STATUS=` says.
    var statusLine: String {
        let metrics = metrics()
        let listening = addresses.map(\.description).joined(separator: ", ")
        return "Listening at \(listening); \(metrics.active) active connections, \(metrics.ended) sessions ended"
    }
}

/// Signal watchers kept until the process exits (see `runUntilSignalled`).
private let keptSignalWatchers = Lock<[SignalWatcher]>([])

/// `SIGTERM`, `SIGINT`, and so on, or the number.
func signalName(_ signal: Int32) -> String {
    switch signal {
    case SIGINT: "SIGINT"
    case SIGTERM: "SIGTERM"
    case SIGQUIT: "SIGQUIT"
    case SIGHUP: "SIGHUP"
    case SIGUSR1: "SIGUSR1"
    case SIGUSR2: "SIGUSR2"
    default: "signal \(signal)"
    }
}
