/// The Prometheus text exposition format, version 0.0.4, written by hand over
/// a `MetricsSnapshot`: every family with `# HELP` and `# TYPE`, histograms
/// as cumulative `_bucket` series with `le`, then `_sum` (seconds) and `_count`.
public enum PrometheusExposition {
    public static let contentType = "text/plain; version=0.0.4; charset=utf-8"

    public static func render(_ snapshot: MetricsSnapshot) -> String {
        var text = ""
        text.reserveCapacity(8192)
        for family in snapshot.families {
            let name = family.family.name
            text += "# HELP \(name) \(escapeHelp(family.family.help))\n"
            text += "# TYPE \(name) \(family.family.kind.rawValue)\n"
            for sample in family.samples {
                text += "\(name)\(labelSet(sample.labels)) \(number(sample.value))\n"
            }
            for histogram in family.histograms {
                var cumulative = 0
                for (index, count) in histogram.buckets.enumerated() {
                    cumulative += count
                    let bound = index < histogram.bounds.count ? seconds(histogram.bounds[index]) : "+Inf"
                    text += "\(name)_bucket\(labelSet(histogram.labels + [MetricLabel("le", bound)])) \(cumulative)\n"
                }
                text += "\(name)_sum\(labelSet(histogram.labels)) \(seconds(Int64(histogram.sumNanoseconds)))\n"
                text += "\(name)_count\(labelSet(histogram.labels)) \(histogram.count)\n"
            }
        }
        return text
    }

    static func labelSet(_ labels: [MetricLabel]) -> String {
        guard !labels.isEmpty else { return "" }
        return "{" + labels.map { "\($0.name)=\"\(escapeLabel($0.value))\"" }.joined(separator: ",") + "}"
    }

    /// Whole numbers without a fraction; others as Swift prints a `Double`
    /// (shortest round-trip form, which Prometheus parses).
    static func number(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value.isInfinite { return value > 0 ? "+Inf" : "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return "\(value)"
    }

    static func seconds(_ nanoseconds: Int64) -> String {
        number(Double(nanoseconds) / 1e9)
    }

    /// A label value: backslash, double quote and newline escaped.
    static func escapeLabel(_ value: String) -> String {
        escape(value, quote: true)
    }

    /// A help text: backslash and newline escaped (quotes stay as they are).
    static func escapeHelp(_ value: String) -> String {
        escape(value, quote: false)
    }

    private static func escape(_ value: String, quote: Bool) -> String {
        var escaped = ""
        for character in value {
            switch character {
            case "\\": escaped += "\\\\"
            case "\"" where quote: escaped += "\\\""
            case "\n": escaped += "\\n"
            default: escaped.append(character)
            }
        }
        return escaped
    }
}

extension MetricsSnapshot {
    /// The daemon's own counters and gauges as `key=value` pairs, in order:
    /// the exit totals and the SIGUSR1 log. A key is the metric name without
    /// `sixteen_` and `_total`, then the values of the labels that tell the
    /// family's series apart (`sessions_replied`, `pending_output_bytes_spill`;
    /// with two protocols, `sessions_upper_replied`).
    public var totals: [(key: String, value: Int)] {
        var pairs: [(key: String, value: Int)] = []
        for family in families where family.family.kind != .histogram {
            let name = family.family.name
            guard name.hasPrefix("sixteen_"), name != "sixteen_build_info" else { continue }
            var key = String(name.dropFirst("sixteen_".count))
            if key.hasSuffix("_total") { key = String(key.dropLast("_total".count)) }
            let distinguishing = Set(family.samples.flatMap(\.labels).map(\.name)).filter { name in
                Set(family.samples.map { $0.labels.first { $0.name == name }?.value }).count > 1
            }
            for sample in family.samples {
                let suffix = sample.labels.filter { distinguishing.contains($0.name) }.map { "_" + $0.value }.joined()
                pairs.append((key + suffix, Int(sample.value)))
            }
        }
        return pairs
    }

    /// `totals` as one line: `connections_accepted=1 sessions_replied=1 …`.
    public var totalsLine: String {
        totals.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
    }
}
