import SixteenProtocol

/// One series' value at the moment of a snapshot.
public struct Sample: Sendable, Equatable {
    public let labels: [MetricLabel]
    public let value: Double
}

/// One histogram series at the moment of a snapshot.
public struct HistogramSample: Sendable, Equatable {
    public let labels: [MetricLabel]
    /// Upper bounds in nanoseconds (+Inf implied after the last).
    public let bounds: [Int64]
    /// Observations per bucket, not cumulative; +Inf last.
    public let buckets: [Int]
    public let sumNanoseconds: Int
    public let count: Int
}

/// A family and its series at the moment of a snapshot.
public struct FamilySnapshot: Sendable {
    public let family: MetricFamily
    public internal(set) var samples: [Sample] = []
    public internal(set) var histograms: [HistogramSample] = []
}

/// Every metric of a server at one moment, in the order `/metrics` lists
/// them. Built from the reactors' cells (see `Server.metrics()`); the
/// exposition format, the totals line and the SIGUSR1 log print from it.
public struct MetricsSnapshot: Sendable {
    public private(set) var families: [FamilySnapshot] = []
    private var positions: [String: Int] = [:]

    public init() {}

    mutating func append(_ family: MetricFamily, _ sample: Sample) {
        families[position(of: family)].samples.append(sample)
    }

    mutating func append(_ series: SeriesDeclaration, value: Double, extraLabels: [MetricLabel] = []) {
        append(series.family, Sample(labels: extraLabels + series.labels, value: value))
    }

    mutating func append(_ family: MetricFamily, _ histogram: HistogramSample) {
        families[position(of: family)].histograms.append(histogram)
    }

    private mutating func position(of family: MetricFamily) -> Int {
        if let position = positions[family.name] { return position }
        families.append(FamilySnapshot(family: family))
        positions[family.name] = families.count - 1
        return families.count - 1
    }

    /// The value of the series `name` whose labels include `labels`, summed
    /// over every series that matches; 0 if none does.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double {
        guard let position = positions[name] else { return 0 }
        return families[position].samples.filter { sample in
            labels.allSatisfy { key, value in sample.labels.contains(MetricLabel(key, value)) }
        }.reduce(0) { $0 + $1.value }
    }

    /// The histogram series `name` (summed over series that match `labels`).
    public func histogram(_ name: String, _ labels: [String: String] = [:]) -> HistogramSample? {
        guard let position = positions[name] else { return nil }
        let matching = families[position].histograms.filter { histogram in
            labels.allSatisfy { key, value in histogram.labels.contains(MetricLabel(key, value)) }
        }
        guard let first = matching.first else { return nil }
        var buckets = first.buckets
        for other in matching.dropFirst() {
            for index in buckets.indices { buckets[index] += other.buckets[index] }
        }
        return HistogramSample(
            labels: [], bounds: first.bounds, buckets: buckets,
            sumNanoseconds: matching.reduce(0) { $0 + $1.sumNanoseconds }, count: matching.reduce(0) { $0 + $1.count })
    }

    // MARK: The figures tests and operators ask for most

    public var accepted: Int { Int(value(ReactorCount.accepted.declaration.family.name)) }
    public var active: Int { Int(value(ReactorCount.active.declaration.family.name)) }

    /// Sessions that ended with `outcome`.
    public func sessions(_ outcome: SessionOutcome) -> Int {
        Int(value(ReactorFamilies.sessions.name, ["outcome": outcome.label]))
    }

    /// Sessions that ended, whatever their outcome.
    public var ended: Int { Int(value(ReactorFamilies.sessions.name)) }

    public var octetsReceived: Int { Int(value(ReactorCount.octetsReceived.declaration.family.name)) }
    public var octetsSent: Int { Int(value(ReactorCount.octetsSent.declaration.family.name)) }
}
