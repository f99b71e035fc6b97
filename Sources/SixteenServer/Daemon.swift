#if canImport(Glibc)
import Glibc
#endif
import Logging
import Reactor

extension Server {
    /// Blocks SIGINT and SIGTERM in the calling thread until
    /// `runUntilSignalled` watches them (a signal in between stays pending and
    /// is handled then). Call it before announcing readiness: a supervisor may
    /// signal as soon as it reads the `Listening at` line.
    public static func holdShutdownSignals() {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        pthread_sigmask(SIG_BLOCK, &set, nil)
    }

    /// Serves until SIGINT or SIGTERM, then drains and returns the totals.
    ///
    /// The signals are watched on the default loop, run by the calling thread
    /// (the reactor threads block them), and forwarded to every reactor with
    /// `ev_async`. The first signal stops accepting and gives sessions in
    /// flight `shutdownTimeout` to finish; a second one exits at once.
    public func runUntilSignalled() throws(ServerError) -> ServerStats {
        let control: EventLoop
        do {
            control = try EventLoop.makeDefault()
        } catch {
            throw .reactor(error)
        }
        let finished = AsyncWatcher(loop: control) { [unowned self, unowned control] in
            if self.isFinished { control.breakAll() }
        }
        var received: Int32 = 0
        let onSignal: (Int32) -> Void = { [unowned self] signal in
            if received == 0 {
                received = signal
                let active = self.stats.active
                self.logger.info("Received \(signalName(signal)): no longer accepting; draining \(active) sessions (up to \(self.configuration.shutdownTimeout))")
                self.requestShutdown()
            } else {
                self.logger.warning("Received \(signalName(signal)) again: exiting at once")
                exit(128 + signal)
            }
        }
        let watchers = [SIGINT, SIGTERM].map { SignalWatcher(loop: control, signal: $0, handler: onSignal) }
        watchers.forEach { $0.start() }
        // Watched now: let any signal held by holdShutdownSignals() through.
        var held = sigset_t()
        sigemptyset(&held)
        sigaddset(&held, SIGINT)
        sigaddset(&held, SIGTERM)
        pthread_sigmask(SIG_UNBLOCK, &held, nil)
        finished.start()
        try start(whenFinished: finished.wakeup)
        control.run()
        let totals = wait()
        watchers.forEach { $0.stop() }
        finished.stop()
        return totals
    }
}

/// `SIGTERM`, `SIGINT`, or the number.
func signalName(_ signal: Int32) -> String {
    switch signal {
    case SIGINT: "SIGINT"
    case SIGTERM: "SIGTERM"
    default: "signal \(signal)"
    }
}
