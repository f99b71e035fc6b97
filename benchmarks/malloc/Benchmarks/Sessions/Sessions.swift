// Steady-state serving allocates nothing per session.
//
// Each benchmark starts an in-process `Server` (one reactor thread) in
// `setup`, warms it up with 2,000 sessions, and then runs exactly ONE complete
// session per iteration with a blocking client made of `Reactor.Socket` and
// raw Glibc calls over buffers allocated once in setup: no Strings, arrays or
// closures are made per iteration. The malloc interposer counts every
// allocation in the process (the server's reactor thread and the client), so
// a `mallocCountTotal` of 0 per iteration means neither side allocated.
//
// Two controls keep the zeros honest:
// - `noop (measurement floor)` measures an empty iteration: what the
//   framework itself contributes (0).
// - `control: sixteen session, debug logging` is the first benchmark with the
//   server logging at `.debug` into a handler that discards: the server's
//   per-session debug lines (peer names, the request as a Python literal) are
//   built on the reactor thread, so it MUST report allocations. It shows that
//   allocations on the server's thread are counted.

import Benchmark
import SessionRig

/// Sessions each benchmark runs in `setup`, before anything is measured.
let warmUpSessions = 2_000

let metrics: [BenchmarkMetric] = [
    .mallocCountTotal,
    .freeCountTotal,
    .mallocBytesCount,
    .wallClock,
    .throughput,
]

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: metrics,
        timeUnits: .microseconds,
        warmupIterations: 200,
        scalingFactor: .one,
        maxDuration: .seconds(10),
        maxIterations: 10_000
    )

    Benchmark("noop (measurement floor)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(0)
        }
    }

    let sixteen = SessionRig(kind: .sixteen)
    Benchmark(
        "sixteen session, steady state",
        configuration: .init(
            metrics: metrics,
            timeUnits: .microseconds,
            warmupIterations: 200,
            scalingFactor: .one,
            maxDuration: .seconds(10),
            maxIterations: 20_000
        )
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            sixteen.sixteenSession()
        }
    } setup: {
        try sixteen.start(warmUp: warmUpSessions)
    } teardown: {
        sixteen.stop()
    }

    let control = SessionRig(kind: .sixteen, debugLogging: true)
    Benchmark(
        "control: sixteen session, debug logging",
        configuration: .init(
            metrics: metrics,
            timeUnits: .microseconds,
            warmupIterations: 200,
            scalingFactor: .one,
            maxDuration: .seconds(5),
            maxIterations: 2_000
        )
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            control.sixteenSession()
        }
    } setup: {
        try control.start(warmUp: warmUpSessions)
    } teardown: {
        control.stop()
    }

    let upper = SessionRig(kind: .upper)
    Benchmark(
        "upper stream 64 KiB, steady state",
        configuration: .init(
            metrics: metrics,
            timeUnits: .microseconds,
            warmupIterations: 100,
            scalingFactor: .one,
            maxDuration: .seconds(10),
            maxIterations: 5_000
        )
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            upper.upperSession()
        }
    } setup: {
        try upper.start(warmUp: warmUpSessions)
    } teardown: {
        upper.stop()
    }
}
