#if canImport(Glibc)
import Glibc
#endif
import Histogram
import Reactor
import SixteenProtocol
import Synchronization

/// Why a load run could not start.
public enum LoadError: Error, Equatable, CustomStringConvertible {
    case unresolvableHost(ResolutionError)
    case reactor(ReactorError)

    public var description: String {
        switch self {
        case .unresolvableHost(let error): error.description
        case .reactor(let error): error.description
        }
    }
}

/// A snapshot for the live progress line.
public struct LoadProgress: Sendable {
    public var elapsedSeconds: Double
    public var sessionsDone: Int
    public var inFlight: Int
    public var errors: Int
}

/// Runs `configuration` to the end (quota, duration or hard deadline) and
/// reports. Worker threads drive the connections; the calling thread only
/// keeps time, prints progress, enforces the hard deadline, and, with
/// `configuration.interval`, gathers the intervals (the series, and `log`
/// if given, headed by `logComment`). With `configuration.startAt` the
/// calling thread first sleeps until then, once everything is set up, so
/// the start is as close to that time as the clock allows.
public func runLoad(_ configuration: LoadConfiguration, log: IntervalLogWriter? = nil, logComment: String = "Logged with sixteen load",
                    progress: ((LoadProgress) -> Void)? = nil) throws(LoadError) -> LoadReport {
    let target: SocketAddress
    do {
        target = try SocketAddress.resolve(host: configuration.host, port: configuration.port, passive: false)[0]
    } catch {
        throw .unresolvableHost(error)
    }
    let threads = configuration.threads
    var workers: [UncheckedWorker] = []
    var first = 0
    var quotaLeft = configuration.sessions
    for thread in 0..<threads {
        let count = configuration.connections / threads + (thread < configuration.connections % threads ? 1 : 0)
        var quota: Int?
        if let sessions = configuration.sessions {
            let share = thread == threads - 1 ? quotaLeft! : sessions * count / configuration.connections
            quota = share
            quotaLeft! -= share
        }
        do {
            workers.append(UncheckedWorker(worker: try LoadWorker(
                configuration: configuration, target: target, firstConnection: first, connections: count, quota: quota)))
        } catch {
            throw .reactor(error)
        }
        first += count
    }

    let control: EventLoop
    do {
        control = try EventLoop()
    } catch {
        throw .reactor(error)
    }
    let finishedCount = Atomic<Int>(0)
    let finished = AsyncWatcher(loop: control) { [unowned control] in
        if finishedCount.load(ordering: .acquiring) == threads { control.breakAll() }
    }
    finished.start()
    if let startAt = configuration.startAt {
        startAt.sleepUntil()
        control.updateNow()
    }
    let startedNanos = MonotonicClock.nanoseconds()
    let startTime = WallTime.now()
    func snapshot() -> LoadProgress {
        var done = 0, inFlight = 0, errors = 0
        for handle in workers {
            let counters = handle.worker.counters
            for outcome in LoadOutcome.allCases {
                let count = counters.outcomeCount(outcome)
                done += count
                if outcome != .ok { errors += count }
            }
            inFlight += counters.inFlight.load(ordering: .relaxed)
        }
        return LoadProgress(elapsedSeconds: Double(MonotonicClock.nanoseconds() - startedNanos) / 1e9,
                            sessionsDone: done, inFlight: inFlight, errors: errors)
    }
    let ticker = TimerWatcher(loop: control) { progress?(snapshot()) }
    if progress != nil { ticker.start(after: 1, repeat: 1) }
    var hitDeadline = false
    let deadline = TimerWatcher(loop: control) {
        hitDeadline = true
        workers.forEach { $0.worker.stopWakeup.send() }
    }
    deadline.start(after: Double(configuration.hardDeadline.nanoseconds) / 1e9)

    let cpuBefore = cpuSeconds()
    let start = Instant(nanoseconds: startedNanos)
    let collector = configuration.interval.map { interval in
        IntervalCollector(rings: workers.compactMap(\.worker.intervals), start: start, wallStart: startTime, interval: interval,
                          warmup: configuration.warmup, log: log, comment: logComment)
    }
    let collecting = TimerWatcher(loop: control) { collector?.collectReady(now: Instant(nanoseconds: MonotonicClock.nanoseconds())) }
    if let interval = configuration.interval {
        // Just after each boundary, when the workers' own timers have moved on.
        let seconds = Double(interval.nanoseconds) / 1e9
        collecting.start(after: seconds + 0.02, repeat: seconds)
    }
    let wakeup = finished.wakeup
    var running: [ReactorThread] = []
    do {
        for (index, handle) in workers.enumerated() {
            running.append(try ReactorThread(name: "load-\(index)") {
                handle.worker.run(startingAt: start)
                finishedCount.add(1, ordering: .releasing)
                wakeup.send()
            })
        }
    } catch {
        workers.forEach { $0.worker.stopWakeup.send() }
        running.forEach { $0.join() }
        throw .reactor(error)
    }
    control.run()
    running.forEach { $0.join() }
    ticker.stop()
    deadline.stop()
    finished.stop()
    collecting.stop()
    let endNanos = MonotonicClock.nanoseconds()
    collector?.finish(end: Instant(nanoseconds: endNanos))
    return LoadReport(configuration: configuration, workers: workers.map(\.worker), start: start,
                      end: Instant(nanoseconds: endNanos), cpuSeconds: cpuSeconds() - cpuBefore, hitDeadline: hitDeadline,
                      startTime: startTime, series: collector?.series ?? [])
}

/// A worker handed to its own thread; only `stopWakeup` and `counters` are touched from elsewhere while it runs.
private struct UncheckedWorker: @unchecked Sendable {
    let worker: LoadWorker
}

/// User plus system CPU time of this process so far.
func cpuSeconds() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
    return seconds(usage.ru_utime) + seconds(usage.ru_stime)
}
