/// What a metric family is, as Prometheus' `# TYPE` line names it.
public enum MetricKind: String, Sendable {
    case counter, gauge, histogram
}

/// One metric family: a name, a kind and a help text. `/metrics`, the
/// SIGUSR1 log, the exit totals and `sixteen stats` all print from these
/// declarations; none of them lists a metric by hand.
public struct MetricFamily: Sendable, Hashable {
    public let name: String
    public let kind: MetricKind
    public let help: String

    public init(_ name: String, _ kind: MetricKind, _ help: String) {
        self.name = name
        self.kind = kind
        self.help = help
    }
}

/// How a scrape combines one series' values from every reactor.
public enum Aggregation: Sendable {
    /// Added up (counts, and gauges of things held).
    case sum
    /// The smallest (a 0/1 gauge that holds only if it holds everywhere).
    case minimum
    /// The largest (what the reactor that saw the most of it saw).
    case maximum
}

/// One series: its family and label values. Each is one cell per reactor.
public struct SeriesDeclaration: Sendable {
    public let family: MetricFamily
    public let labels: [MetricLabel]
    public let aggregation: Aggregation
    /// What one unit of the cell is in the series' unit: 1e-9 for a cell of
    /// nanoseconds shown in seconds.
    public let scale: Double

    public init(_ family: MetricFamily, labels: [MetricLabel] = [], aggregation: Aggregation = .sum, scale: Double = 1) {
        self.family = family
        self.labels = labels
        self.aggregation = aggregation
        self.scale = scale
    }

    /// A series that is its family's only one.
    public static func counter(_ name: String, _ help: String, aggregation: Aggregation = .sum, scale: Double = 1) -> SeriesDeclaration {
        SeriesDeclaration(MetricFamily(name, .counter, help), aggregation: aggregation, scale: scale)
    }

    public static func gauge(_ name: String, _ help: String, aggregation: Aggregation = .sum) -> SeriesDeclaration {
        SeriesDeclaration(MetricFamily(name, .gauge, help), aggregation: aggregation)
    }
}

/// A label name and value.
public struct MetricLabel: Sendable, Hashable {
    public let name: String
    public let value: String

    public init(_ name: String, _ value: String) {
        self.name = name
        self.value = value
    }
}

/// The counts one owner keeps (the reactor, or one protocol's handler): an
/// enum whose cases are its cells, each with its series declared beside it.
/// Adding a count is a case and its declaration, in one file; everything
/// that prints counts finds it from there.
public protocol CountSet: CaseIterable, Sendable {
    /// This count's cell among its owner's cells (its position in `allCases`).
    var cell: Int { get }
    var declaration: SeriesDeclaration { get }
}

extension CountSet where Self: RawRepresentable, RawValue == Int {
    @inline(__always)
    public var cell: Int { rawValue }
}

/// For an owner with no counts of its own.
public enum NoCounts: CountSet {
    public var cell: Int { switch self {} }
    public var declaration: SeriesDeclaration { switch self {} }
    public static var allCases: [NoCounts] { [] }
}

/// A histogram family and its fixed bucket bounds.
public struct HistogramDeclaration: Sendable {
    public let family: MetricFamily
    /// Upper bounds of the buckets (`le`), in nanoseconds, ascending; +Inf follows.
    public let bounds: [Int64]

    public init(_ name: String, _ help: String, boundsInSeconds: [Double]) {
        family = MetricFamily(name, .histogram, help)
        bounds = boundsInSeconds.map { Int64(($0 * 1e9).rounded()) }
    }
}
