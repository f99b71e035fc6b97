import Reactor
import SixteenProtocol

/// The build, as `sixteen_build_info` and `--version` report it.
public enum BuildInfo {
    public static let version = "0.1.0"
    /// The git commit built (`-dirty` with uncommitted changes), and the
    /// compiler that built it: written at build time by the BuildInfo plugin.
    public static let commit = generatedBuildCommit
    public static let swiftVersion = generatedSwiftVersion

    /// What `sixteen --version` prints.
    public static var versionLine: String {
        "\(version) (commit \(commit), Swift \(swiftVersion), libev \(libevVersion))"
    }

    static let series = SeriesDeclaration(MetricFamily(
        "sixteen_build_info", .gauge, "Always 1; the labels say which build of Sixteen, on which libev, is running."))
}

extension Server {
    /// How long a reactor may go without finishing a loop iteration before
    /// `/healthz` calls it stalled. Each reactor's heartbeat makes its loop
    /// turn every second, so a healthy idle reactor never comes close.
    public static var stallThreshold: Duration { .seconds(3) }

    /// Every metric, summed over the reactors as each series' aggregation
    /// says (the loop histogram stays per reactor), with the admin listener's
    /// responses and the process metrics. Reads relaxed atomics only: the
    /// reactors are never stopped or locked for it.
    public func metrics() -> MetricsSnapshot {
        let reactors = reactorMetrics
        var snapshot = MetricsSnapshot()
        snapshot.append(BuildInfo.series, value: 1, extraLabels: [
            MetricLabel("version", BuildInfo.version), MetricLabel("libev", libevVersion),
            MetricLabel("commit", BuildInfo.commit), MetricLabel("swift", BuildInfo.swiftVersion),
        ])
        for count in ReactorCount.allCases {
            let values = reactors.map { $0.common.load(count) }
            snapshot.append(count.declaration, value: Double(aggregate(values, count.declaration.aggregation)) * count.declaration.scale)
        }
        snapshot.append(ConnectionLimit.maxSeries, value: Double(descriptorPlan.maxConnections))
        let prepared = preparedServices
        for (position, service) in services.enumerated() {
            let served = service.served
            let own = reactors.filter { $0.protocolName == served.name }
            let protocolLabel = MetricLabel("protocol", served.name)
            for outcome in served.outcomes {
                let total = own.reduce(0) { $0 + $1.sessions(outcome) }
                snapshot.append(ReactorFamilies.sessions, Sample(labels: [protocolLabel, MetricLabel("outcome", outcome.label)], value: Double(total)))
            }
            for (cell, series) in served.ownDeclarations.enumerated() {
                let values = own.map { $0.own.load(cell) }
                snapshot.append(series, value: Double(aggregate(values, series.aggregation)) * series.scale)
            }
            for (series, value) in prepared?[position].serviceMetrics() ?? [] {
                snapshot.append(series, value: value)
            }
        }
        for service in services {
            let own = reactors.filter { $0.protocolName == service.served.name }
            snapshot.append(ReactorFamilies.sessionDuration.family, sum(own.map { $0.sessionDuration.load() }, ReactorFamilies.sessionDuration, labels: [
                MetricLabel("protocol", service.served.name),
            ]))
        }
        for reactor in reactors {
            snapshot.append(ReactorFamilies.loopIteration.family, sum([reactor.loopIteration.load()], ReactorFamilies.loopIteration, labels: [
                MetricLabel("protocol", reactor.protocolName), MetricLabel("reactor", String(reactor.index)),
            ]))
        }
        if adminFD >= 0 {
            let admin = adminMetrics
            for status in HTTPStatus.allCases {
                snapshot.append(status.declaration, value: Double(admin?.own.load(status.cell) ?? 0))
            }
        }
        ProcessMetrics.append(to: &snapshot)
        return snapshot
    }

    /// Reactors whose loop has not finished an iteration for longer than
    /// `stallThreshold`, with how long.
    public func stalledReactors(now: Int64 = MonotonicClock.nanoseconds()) -> [(reactor: Int, nanoseconds: Int64)] {
        let threshold = Self.stallThreshold.nanoseconds
        return reactorMetrics.compactMap { metrics in
            guard let idle = metrics.stalledFor(now: now), idle > threshold else { return nil }
            return (metrics.index, idle)
        }
    }

    /// The admin listener's answer for a route; runs on the admin thread.
    /// (`now` is the health check's clock: tests look from later.)
    func respond(to route: AdminRoute, now: Int64 = MonotonicClock.nanoseconds()) -> AdminResponse {
        switch route {
        case .metrics:
            return AdminResponse(.ok, contentType: PrometheusExposition.contentType, PrometheusExposition.render(metrics()))
        case .health:
            let stalled = stalledReactors(now: now)
            guard stalled.isEmpty else {
                let lines = stalled.map { "reactor \($0.reactor) stalled: no loop iteration finished for \(Double($0.nanoseconds / 1_000_000) / 1000) s" }
                return AdminResponse(.serviceUnavailable, lines.joined(separator: "\n") + "\n")
            }
            return AdminResponse(.ok, "ok: \(reactorCount) reactors turning\n")
        case .ready:
            if isAccepting { return AdminResponse(.ok, "ready\n") }
            if isDraining {
                let stillAccepting = reactorMetrics.allSatisfy { $0.common.load(.accepting) == 1 }
                return AdminResponse(.serviceUnavailable, stillAccepting ? "draining: accepting until --drain-delay ends\n" : "not accepting: draining\n")
            }
            return AdminResponse(.serviceUnavailable, "not accepting: at --max-connections (\(descriptorPlan.maxConnections))\n")
        }
    }

    private func aggregate(_ values: [Int], _ aggregation: Aggregation) -> Int {
        switch aggregation {
        case .sum: values.reduce(0, +)
        case .minimum: values.min() ?? 0
        case .maximum: values.max() ?? 0
        }
    }

    private func sum(_ loads: [(buckets: [Int], sumNanoseconds: Int, count: Int)], _ declaration: HistogramDeclaration, labels: [MetricLabel]) -> HistogramSample {
        var buckets = Array(repeating: 0, count: declaration.bounds.count + 1)
        for load in loads {
            for index in buckets.indices { buckets[index] += load.buckets[index] }
        }
        return HistogramSample(
            labels: labels, bounds: declaration.bounds, buckets: buckets,
            sumNanoseconds: loads.reduce(0) { $0 + $1.sumNanoseconds }, count: loads.reduce(0) { $0 + $1.count })
    }
}
