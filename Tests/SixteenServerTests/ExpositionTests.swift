import SixteenProtocol
import XCTest

@testable import SixteenServer

/// The Prometheus text exposition, `MetricsSnapshot`'s lookups, the
/// `totals` line, and the cells behind them, over snapshots built by hand:
/// no server, no sockets, exact text.
final class ExpositionTests: XCTestCase {

    static let requests = MetricFamily("sixteen_requests_total", .counter, "Requests handled, by code.")
    static let active = SeriesDeclaration.gauge("sixteen_connections_active", "Client connections open now.")
    static let duration = HistogramDeclaration("sixteen_session_duration_seconds", "Sessions from accept to close.", boundsInSeconds: [0.001, 0.25, 2])

    /// A counter family with two labelled series, a gauge, and a histogram.
    static func snapshot() -> MetricsSnapshot {
        var snapshot = MetricsSnapshot()
        snapshot.append(requests, Sample(labels: [MetricLabel("code", "200"), MetricLabel("path", "/metrics")], value: 7))
        snapshot.append(active, value: 3)
        snapshot.append(requests, Sample(labels: [MetricLabel("code", "404"), MetricLabel("path", "/x")], value: 2))
        snapshot.append(duration.family, HistogramSample(
            labels: [MetricLabel("protocol", "sixteen")], bounds: duration.bounds,
            buckets: [3, 0, 5, 1], sumNanoseconds: 3_750_250_000, count: 9))
        return snapshot
    }

    // MARK: Rendering

    func testRenderExactText() {
        let expected = """
            # HELP sixteen_requests_total Requests handled, by code.
            # TYPE sixteen_requests_total counter
            sixteen_requests_total{code="200",path="/metrics"} 7
            sixteen_requests_total{code="404",path="/x"} 2
            # HELP sixteen_connections_active Client connections open now.
            # TYPE sixteen_connections_active gauge
            sixteen_connections_active 3
            # HELP sixteen_session_duration_seconds Sessions from accept to close.
            # TYPE sixteen_session_duration_seconds histogram
            sixteen_session_duration_seconds_bucket{protocol="sixteen",le="0.001"} 3
            sixteen_session_duration_seconds_bucket{protocol="sixteen",le="0.25"} 3
            sixteen_session_duration_seconds_bucket{protocol="sixteen",le="2"} 8
            sixteen_session_duration_seconds_bucket{protocol="sixteen",le="+Inf"} 9
            sixteen_session_duration_seconds_sum{protocol="sixteen"} 3.75025
            sixteen_session_duration_seconds_count{protocol="sixteen"} 9

            """
        XCTAssertEqual(PrometheusExposition.render(Self.snapshot()), expected)
        XCTAssertEqual(PrometheusExposition.contentType, "text/plain; version=0.0.4; charset=utf-8")
    }

    func testEmptySnapshotRendersNothing() {
        XCTAssertEqual(PrometheusExposition.render(MetricsSnapshot()), "")
    }

    func testUnlabelledHistogramHasOnlyTheLeLabel() {
        var snapshot = MetricsSnapshot()
        let declaration = HistogramDeclaration("loop_seconds", "Loop.", boundsInSeconds: [0.5])
        snapshot.append(declaration.family, HistogramSample(labels: [], bounds: declaration.bounds, buckets: [0, 0], sumNanoseconds: 0, count: 0))
        XCTAssertEqual(PrometheusExposition.render(snapshot), """
            # HELP loop_seconds Loop.
            # TYPE loop_seconds histogram
            loop_seconds_bucket{le="0.5"} 0
            loop_seconds_bucket{le="+Inf"} 0
            loop_seconds_sum 0
            loop_seconds_count 0

            """)
    }

    func testTheDaemonsBucketBoundsPrintAsDeclared() {
        let bounds = ReactorFamilies.sessionDuration.bounds
        XCTAssertEqual(bounds.prefix(3), [100_000, 250_000, 500_000])
        XCTAssertEqual(bounds.map(PrometheusExposition.seconds), [
            "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5",
            "1", "2.5", "5", "10", "30", "60",
        ])
        XCTAssertEqual(ReactorFamilies.loopIteration.bounds.first, 10_000)
        XCTAssertEqual(PrometheusExposition.seconds(10_000), "1e-05")
    }

    func testLabelValuesAreEscaped() {
        var snapshot = MetricsSnapshot()
        let family = MetricFamily("x_total", .counter, "X.")
        snapshot.append(family, Sample(labels: [MetricLabel("path", "a\\b\"c\nd"), MetricLabel("plain", "é ok")], value: 1))
        XCTAssertEqual(PrometheusExposition.render(snapshot), """
            # HELP x_total X.
            # TYPE x_total counter
            x_total{path="a\\\\b\\"c\\nd",plain="é ok"} 1

            """)
        XCTAssertEqual(PrometheusExposition.escapeLabel("\\\"\n"), #"\\\"\n"#)
    }

    func testHelpIsEscaped() {
        var snapshot = MetricsSnapshot()
        snapshot.append(SeriesDeclaration.gauge("g", "C:\\dir \"quoted\"\nsecond line"), value: 0)
        XCTAssertEqual(PrometheusExposition.render(snapshot), """
            # HELP g C:\\\\dir "quoted"\\nsecond line
            # TYPE g gauge
            g 0

            """)
        XCTAssertEqual(PrometheusExposition.escapeHelp("\\\"\n"), #"\\"\n"#)
    }

    func testNumbers() {
        XCTAssertEqual(PrometheusExposition.number(7), "7")
        XCTAssertEqual(PrometheusExposition.number(0), "0")
        XCTAssertEqual(PrometheusExposition.number(-0.0), "0")
        XCTAssertEqual(PrometheusExposition.number(-3), "-3")
        XCTAssertEqual(PrometheusExposition.number(123_456_789_012), "123456789012")
        XCTAssertEqual(PrometheusExposition.number(999_999_999_999_999), "999999999999999")
        // From 1e15 on, Swift's own form (which Prometheus parses too).
        XCTAssertEqual(PrometheusExposition.number(1e15), "1000000000000000.0")
        XCTAssertEqual(PrometheusExposition.number(1.5e300), "1.5e+300")
        XCTAssertEqual(PrometheusExposition.number(0.5), "0.5")
        XCTAssertEqual(PrometheusExposition.number(-2.25), "-2.25")
        XCTAssertEqual(PrometheusExposition.number(.nan), "NaN")
        XCTAssertEqual(PrometheusExposition.number(.infinity), "+Inf")
        XCTAssertEqual(PrometheusExposition.number(-.infinity), "-Inf")
        XCTAssertEqual(PrometheusExposition.seconds(1_000_000_000), "1")
        XCTAssertEqual(PrometheusExposition.seconds(2_500_000_000), "2.5")
        XCTAssertEqual(PrometheusExposition.seconds(1), "1e-09")
    }

    // MARK: Lookups

    func testValueSumsOverMatchingSeries() {
        let snapshot = Self.snapshot()
        XCTAssertEqual(snapshot.value("sixteen_requests_total"), 9)
        XCTAssertEqual(snapshot.value("sixteen_requests_total", ["code": "200"]), 7)
        XCTAssertEqual(snapshot.value("sixteen_requests_total", ["code": "404", "path": "/x"]), 2)
        XCTAssertEqual(snapshot.value("sixteen_requests_total", ["code": "404", "path": "/metrics"]), 0)
        XCTAssertEqual(snapshot.value("sixteen_requests_total", ["code": "500"]), 0)
        XCTAssertEqual(snapshot.value("sixteen_requests_total", ["nolabel": "200"]), 0)
        XCTAssertEqual(snapshot.value("sixteen_connections_active"), 3)
        XCTAssertEqual(snapshot.value("no_such_metric"), 0)
        XCTAssertEqual(snapshot.value("sixteen_session_duration_seconds"), 0)
    }

    func testHistogramMergesMatchingSeries() throws {
        var snapshot = Self.snapshot()
        snapshot.append(Self.duration.family, HistogramSample(
            labels: [MetricLabel("protocol", "upper")], bounds: Self.duration.bounds,
            buckets: [1, 2, 0, 4], sumNanoseconds: 1_000, count: 7))
        let merged = try XCTUnwrap(snapshot.histogram("sixteen_session_duration_seconds"))
        XCTAssertEqual(merged, HistogramSample(
            labels: [], bounds: [1_000_000, 250_000_000, 2_000_000_000], buckets: [4, 2, 5, 5],
            sumNanoseconds: 3_750_251_000, count: 16))
        let upper = try XCTUnwrap(snapshot.histogram("sixteen_session_duration_seconds", ["protocol": "upper"]))
        XCTAssertEqual(upper, HistogramSample(
            labels: [], bounds: Self.duration.bounds, buckets: [1, 2, 0, 4], sumNanoseconds: 1_000, count: 7))
        XCTAssertNil(snapshot.histogram("sixteen_session_duration_seconds", ["protocol": "other"]))
        XCTAssertNil(snapshot.histogram("no_such_histogram"))
        XCTAssertNil(snapshot.histogram("sixteen_requests_total"))
    }

    func testFamiliesKeepTheirFirstAppearanceOrder() {
        XCTAssertEqual(Self.snapshot().families.map(\.family.name), [
            "sixteen_requests_total", "sixteen_connections_active", "sixteen_session_duration_seconds",
        ])
        XCTAssertEqual(Self.snapshot().families[0].samples.map(\.value), [7, 2])
    }

    // MARK: Totals

    /// What a one-protocol server's snapshot holds, from the real declarations.
    static func serverSnapshot(protocols: [String]) -> MetricsSnapshot {
        var snapshot = MetricsSnapshot()
        snapshot.append(BuildInfo.series, value: 1, extraLabels: [MetricLabel("version", "0.1.0"), MetricLabel("libev", "4.33")])
        snapshot.append(ReactorCount.accepted.declaration, value: 5)
        snapshot.append(ReactorCount.active.declaration, value: 1)
        for (index, name) in protocols.enumerated() {
            for (outcome, value) in [(SessionOutcome.replied, 4 + 10 * index), (.short, 1 + 10 * index)] {
                snapshot.append(ReactorFamilies.sessions, Sample(
                    labels: [MetricLabel("protocol", name), MetricLabel("outcome", outcome.label)], value: Double(value)))
            }
        }
        let pending = MetricFamily("sixteen_pending_output_bytes", .gauge, "Pending.")
        snapshot.append(SeriesDeclaration(pending, labels: [MetricLabel("store", "memory")]), value: 100)
        snapshot.append(SeriesDeclaration(pending, labels: [MetricLabel("store", "spill")]), value: 200)
        let declaration = ReactorFamilies.sessionDuration
        snapshot.append(declaration.family, HistogramSample(
            labels: [], bounds: declaration.bounds, buckets: Array(repeating: 1, count: declaration.bounds.count + 1),
            sumNanoseconds: 5, count: declaration.bounds.count + 1))
        snapshot.append(ProcessMetrics.cpu, Sample(labels: [], value: 1.5))
        snapshot.append(ProcessMetrics.openFDs, Sample(labels: [], value: 12))
        return snapshot
    }

    func testTotalsWithOneProtocol() {
        let snapshot = Self.serverSnapshot(protocols: ["sixteen"])
        XCTAssertEqual(snapshot.totals.map(\.key), [
            "connections_accepted", "connections_active", "sessions_replied", "sessions_short",
            "pending_output_bytes_memory", "pending_output_bytes_spill",
        ])
        XCTAssertEqual(snapshot.totals.map(\.value), [5, 1, 4, 1, 100, 200])
        XCTAssertEqual(
            snapshot.totalsLine,
            "connections_accepted=5 connections_active=1 sessions_replied=4 sessions_short=1 "
                + "pending_output_bytes_memory=100 pending_output_bytes_spill=200")
    }

    func testTotalsWithTwoProtocolsNameTheProtocol() {
        let snapshot = Self.serverSnapshot(protocols: ["sixteen", "upper"])
        XCTAssertEqual(
            snapshot.totalsLine,
            "connections_accepted=5 connections_active=1 sessions_sixteen_replied=4 sessions_sixteen_short=1 "
                + "sessions_upper_replied=14 sessions_upper_short=11 "
                + "pending_output_bytes_memory=100 pending_output_bytes_spill=200")
    }

    func testTotalsLeaveOutOtherPrefixesAndKeepMiddleTotal() {
        var snapshot = MetricsSnapshot()
        snapshot.append(SeriesDeclaration.counter("other_total", "Not ours."), value: 3)
        snapshot.append(SeriesDeclaration.counter("sixteen_total_bytes", "Not a suffix."), value: 8)
        snapshot.append(SeriesDeclaration.gauge("sixteen_build_info_extra", "Not build_info itself."), value: 2)
        XCTAssertEqual(snapshot.totalsLine, "total_bytes=8 build_info_extra=2")
        XCTAssertEqual(MetricsSnapshot().totalsLine, "")
    }

    // MARK: Cells

    func testHistogramBucketBoundsAreInclusive() {
        let cells = HistogramCells(Self.duration)
        defer { cells.deallocate() }
        XCTAssertEqual(Self.duration.bounds, [1_000_000, 250_000_000, 2_000_000_000])
        XCTAssertEqual(cells.load().buckets, [0, 0, 0, 0])
        let observations: [Int64] = [
            0, 1_000_000,  // le 0.001 (the bound itself included)
            1_000_001, 250_000_000,  // le 0.25
            250_000_001, 2_000_000_000,  // le 2
            2_000_000_001, 90_000_000_000,  // +Inf
        ]
        for observation in observations { cells.record(observation) }
        let loaded = cells.load()
        XCTAssertEqual(loaded.buckets, [2, 2, 2, 2])
        XCTAssertEqual(loaded.sumNanoseconds, 94_502_000_003)
        XCTAssertEqual(loaded.count, 8)
    }

    /// Each observation lands in the first bucket whose bound holds it:
    /// every bound of the daemon's histograms, one below and one above, and
    /// every power of two around them.
    func testEveryObservationLandsInTheFirstBucketWhoseBoundHoldsIt() {
        for declaration in [ReactorFamilies.loopIteration, ReactorFamilies.sessionDuration, Self.duration] {
            var observations: [Int64] = [Int64.min, -1, 0, 1, 2, 3, Int64.max - 1, Int64.max]
            for bound in declaration.bounds { observations += [bound - 1, bound, bound + 1] }
            for shift in 0..<63 { observations += [(1 << shift) - 1, 1 << shift, (1 << shift) + 1] }
            for observation in observations {
                let cells = HistogramCells(declaration)
                defer { cells.deallocate() }
                cells.record(observation)
                let expected = declaration.bounds.firstIndex { max(observation, 0) <= $0 } ?? declaration.bounds.count
                var buckets = [Int](repeating: 0, count: declaration.bounds.count + 1)
                buckets[expected] = 1
                XCTAssertEqual(cells.load().buckets, buckets, "\(declaration.family.name): \(observation)")
            }
        }
    }

    func testHistogramNegativeObservationCountsAsZero() {
        let cells = HistogramCells(Self.duration)
        defer { cells.deallocate() }
        cells.record(-5)
        cells.record(1_500)
        let loaded = cells.load()
        XCTAssertEqual(loaded.buckets, [2, 0, 0, 0])
        XCTAssertEqual(loaded.sumNanoseconds, 1_500)
        XCTAssertEqual(loaded.count, 2)
    }

    func testCounterCells() {
        let cells = CounterCells(count: 3)
        defer { cells.deallocate() }
        XCTAssertEqual(cells.count, 3)
        XCTAssertEqual((0..<3).map(cells.load), [0, 0, 0])
        cells.add(0)
        cells.add(1, 41)
        cells.add(1)
        cells.set(2, -4)
        cells.add(2, 10)
        XCTAssertEqual((0..<3).map(cells.load), [1, 42, 6])
    }
}
