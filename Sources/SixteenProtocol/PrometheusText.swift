// A reader of the Prometheus text exposition format (0.0.4), enough to read
// what a daemon's `/metrics` says: `# TYPE` and `# HELP` lines, and samples
// `name{label="value",...} value [timestamp]`, label values with the
// format's escapes (\\, \", \n). Pure: text in, samples out.

/// One sample line.
public struct ExpositionSample: Sendable, Equatable {
    public var name: String
    public var labels: [String: String]
    public var value: Double
}

/// Every sample of a scrape, with the declared type of each family.
public struct ExpositionDocument: Sendable, Equatable {
    public var samples: [ExpositionSample] = []
    /// Family name to its `# TYPE` (counter, gauge, histogram, …).
    public var types: [String: String] = [:]

    /// The sum of every sample named `name` whose labels include `labels`;
    /// nil when no sample matches.
    public func value(_ name: String, _ labels: [String: String] = [:]) -> Double? {
        let matching = samples.filter { sample in
            sample.name == name && labels.allSatisfy { sample.labels[$0.key] == $0.value }
        }
        return matching.isEmpty ? nil : matching.reduce(0) { $0 + $1.value }
    }

    /// The distinct values label `label` takes among samples named `name`, in order of appearance.
    public func labelValues(_ label: String, of name: String) -> [String] {
        var seen: [String] = []
        for sample in samples where sample.name == name {
            if let value = sample.labels[label], !seen.contains(value) { seen.append(value) }
        }
        return seen
    }

    /// A histogram's buckets, summed over series whose labels include
    /// `labels`: (upper bound, cumulative count), ascending, +Inf last.
    public func buckets(_ name: String, _ labels: [String: String] = [:]) -> [(bound: Double, count: Double)] {
        var byBound: [Double: Double] = [:]
        for sample in samples where sample.name == name + "_bucket" {
            guard labels.allSatisfy({ sample.labels[$0.key] == $0.value }),
                  let le = sample.labels["le"], let bound = ExpositionParser.number(le) else { continue }
            byBound[bound, default: 0] += sample.value
        }
        return byBound.keys.sorted().map { ($0, byBound[$0]!) }
    }

    /// The `quantile` (0…1) of a histogram, interpolated linearly within its
    /// bucket as Prometheus' `histogram_quantile` does; nil with no observations.
    public func quantile(_ quantile: Double, of name: String, _ labels: [String: String] = [:]) -> Double? {
        let buckets = buckets(name, labels)
        guard let total = buckets.last?.count, total > 0 else { return nil }
        let rank = quantile * total
        var lowerBound = 0.0
        var lowerCount = 0.0
        for bucket in buckets {
            if bucket.count >= rank {
                if bucket.bound.isInfinite { return lowerBound }
                let inBucket = bucket.count - lowerCount
                guard inBucket > 0 else { return bucket.bound }
                return lowerBound + (bucket.bound - lowerBound) * (rank - lowerCount) / inBucket
            }
            lowerBound = bucket.bound
            lowerCount = bucket.count
        }
        return lowerBound
    }
}

/// Why a scrape could not be read.
public struct ExpositionError: Error, Equatable, CustomStringConvertible {
    public let line: Int
    public let reason: String
    public var description: String { "line \(line): \(reason)" }
}

public enum ExpositionParser {
    public static func parse(_ text: String) throws(ExpositionError) -> ExpositionDocument {
        var document = ExpositionDocument()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.hasSuffix("\r") ? rawLine.dropLast() : rawLine
            if line.allSatisfy({ $0 == " " || $0 == "\t" }) { continue }
            if line.hasPrefix("#") {
                let words = line.split(separator: " ", maxSplits: 3, omittingEmptySubsequences: true)
                if words.count >= 4, words[1] == "TYPE" { document.types[String(words[2])] = String(words[3]) }
                continue
            }
            guard let sample = sample(Substring(line)) else {
                throw ExpositionError(line: index + 1, reason: "not a sample: \(line.prefix(80))")
            }
            document.samples.append(sample)
        }
        return document
    }

    /// `+Inf`, `-Inf`, `NaN`, or a decimal or scientific number.
    public static func number(_ text: Substring) -> Double? {
        switch text {
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        case "NaN": return .nan
        default: return Double(text)
        }
    }

    public static func number(_ text: String) -> Double? { number(Substring(text)) }

    private static func sample(_ line: Substring) -> ExpositionSample? {
        var rest = line[...]
        let name = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" || $0 == ":" }
        guard !name.isEmpty, !(name.first!.isNumber) else { return nil }
        rest = rest.dropFirst(name.count)
        var labels: [String: String] = [:]
        if rest.first == "{" {
            rest = rest.dropFirst()
            while true {
                rest = rest.drop { $0 == " " }
                if rest.first == "}" { rest = rest.dropFirst(); break }
                let label = rest.prefix { $0.isLetter || $0.isNumber || $0 == "_" }
                guard !label.isEmpty else { return nil }
                rest = rest.dropFirst(label.count)
                guard rest.hasPrefix("=\"") else { return nil }
                rest = rest.dropFirst(2)
                var value = ""
                var closed = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\"" { closed = true; break }
                    if character == "\\" {
                        guard let escaped = rest.first else { return nil }
                        rest = rest.dropFirst()
                        switch escaped {
                        case "n": value.append("\n")
                        case "\\": value.append("\\")
                        case "\"": value.append("\"")
                        default: return nil
                        }
                    } else {
                        value.append(character)
                    }
                }
                guard closed else { return nil }
                labels[String(label)] = value
                rest = rest.drop { $0 == " " }
                if rest.first == "," { rest = rest.dropFirst() } else if rest.first != "}" { return nil }
            }
        }
        let fields = rest.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count == 1 || fields.count == 2, let value = number(fields[0]) else { return nil }
        if fields.count == 2, Int64(fields[1]) == nil { return nil }
        return ExpositionSample(name: String(name), labels: labels, value: value)
    }
}
