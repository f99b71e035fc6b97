#if canImport(Glibc)
import Glibc
#endif
import Reactor
import SixteenProtocol

/// Why `sixteen stats` could not read a daemon's metrics.
public enum StatsError: Error, Equatable, CustomStringConvertible {
    case connection(ClientError)
    case notHTTP(String)
    case status(String)
    case notMetrics(ExpositionError)

    public var description: String {
        switch self {
        case .connection(let error): error.description
        case .notHTTP(let detail): "not an admin listener: the answer is not HTTP (\(detail))"
        case .status(let line): "the admin listener answered \(line) (is this a sixteen --admin address?)"
        case .notMetrics(let error): "cannot read the metrics: \(error)"
        }
    }
}

/// Reads `GET /metrics` from a daemon's admin listener and parses it.
public func fetchMetrics(host: String, port: Int, timeout: Duration) throws(StatsError) -> ExpositionDocument {
    let body: [UInt8]
    do {
        let connection = try DeadlineConnection(host: host, port: port, timeout: timeout)
        let authority = host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)"
        try connection.sendAll(Array("GET /metrics HTTP/1.1\r\nHost: \(authority)\r\nUser-Agent: sixteen-stats\r\nAccept: text/plain\r\nConnection: close\r\n\r\n".utf8))
        body = try connection.receiveUntilEnd(limit: 16 << 20)
    } catch {
        throw .connection(error)
    }
    guard let headEnd = body.firstRange(of: Array("\r\n\r\n".utf8)) else {
        throw .notHTTP(body.isEmpty ? "the connection closed with no answer" : "it sent \(pythonBytesLiteral(body.prefix(40)))")
    }
    let head = String(decoding: body[..<headEnd.lowerBound], as: UTF8.self)
    let statusLine = head.split(separator: "\r\n").first.map(String.init) ?? ""
    guard statusLine.hasPrefix("HTTP/1.") else { throw .notHTTP(String(statusLine.prefix(60))) }
    let status = statusLine.split(separator: " ", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
    guard status.hasPrefix("200") else { throw .status(status) }
    do {
        return try ExpositionParser.parse(String(decoding: body[headEnd.upperBound...], as: UTF8.self))
    } catch {
        throw .notMetrics(error)
    }
}

/// What an operator reads at a glance, from one scrape.
public struct DaemonStats: Sendable {
    /// One protocol's sessions: counts by outcome, and duration percentiles.
    public struct ProtocolStats: Sendable {
        public var name: String
        public var outcomes: [(label: String, count: Double)]
        public var sessions: Double { outcomes.reduce(0) { $0 + $1.count } }
        /// Seconds, by percentile (50, 90, 99, 99.9); nil with no sessions.
        public var durations: [(percentile: Double, seconds: Double)]
        public var durationCount: Double
    }

    public var version: String?
    public var libev: String?
    public var accepting: Bool
    public var uptimeSeconds: Double?
    public var accepted: Double
    public var active: Double
    public var shed: Double
    public var acceptErrors: Double
    public var octetsReceived: Double
    public var octetsSent: Double
    public var protocols: [ProtocolStats]
    public var pendingInMemory: Double?
    public var pendingInSpill: Double?
    public var spillFiles: Double?
    public var cpuSeconds: Double?
    public var residentBytes: Double?
    public var openFDs: Double?
    public var maxFDs: Double?

    public static let percentiles: [Double] = [50, 90, 99, 99.9]

    public init(_ document: ExpositionDocument, now: Double) {
        let build = document.samples.first { $0.name == "sixteen_build_info" }
        version = build?.labels["version"]
        libev = build?.labels["libev"]
        accepting = document.value("sixteen_accepting") == 1
        uptimeSeconds = document.value("process_start_time_seconds").map { max(0, now - $0) }
        accepted = document.value("sixteen_connections_accepted_total") ?? 0
        active = document.value("sixteen_connections_active") ?? 0
        shed = document.value("sixteen_accept_shed_total") ?? 0
        acceptErrors = document.value("sixteen_accept_errors_total") ?? 0
        octetsReceived = document.value("sixteen_octets_received_total") ?? 0
        octetsSent = document.value("sixteen_octets_sent_total") ?? 0
        protocols = document.labelValues("protocol", of: "sixteen_sessions_total").map { name in
            let outcomes = document.samples.filter { $0.name == "sixteen_sessions_total" && $0.labels["protocol"] == name }
                .map { (label: $0.labels["outcome"] ?? "?", count: $0.value) }
            let durations = Self.percentiles.compactMap { percentile in
                document.quantile(percentile / 100, of: "sixteen_session_duration_seconds", ["protocol": name]).map { (percentile, $0) }
            }
            let count = document.value("sixteen_session_duration_seconds_count", ["protocol": name]) ?? 0
            return ProtocolStats(name: name, outcomes: outcomes, durations: durations, durationCount: count)
        }
        pendingInMemory = document.value("sixteen_pending_output_bytes", ["store": "memory"])
        pendingInSpill = document.value("sixteen_pending_output_bytes", ["store": "spill"])
        spillFiles = document.value("sixteen_spill_files")
        cpuSeconds = document.value("process_cpu_seconds_total")
        residentBytes = document.value("process_resident_memory_bytes")
        openFDs = document.value("process_open_fds")
        maxFDs = document.value("process_max_fds")
    }

    /// The table. With `previous` and the seconds between the two scrapes,
    /// counters also show their rate per second (`--watch`).
    public func table(address: String, previous: DaemonStats? = nil, interval: Double = 0) -> String {
        func rate(_ now: Double, _ before: Double?, bytes: Bool = false) -> String {
            guard let before, interval > 0 else { return "" }
            let perSecond = max(0, now - before) / interval
            return " (\(bytes ? formatBytes(perSecond) : format(perSecond))/s)"
        }
        var lines: [String] = []
        let build = version.map { "sixteen \($0)" + (libev.map { " (libev \($0))" } ?? "") } ?? "sixteen"
        let up = uptimeSeconds.map { ", up \(formatDuration($0))" } ?? ""
        lines.append("\(build) at \(address): \(accepting ? "accepting" : "NOT accepting")\(up)")
        lines.append(row("connections", [
            "accepted \(format(accepted))\(rate(accepted, previous?.accepted))", "active \(format(active))",
            "shed \(format(shed))", "accept errors \(format(acceptErrors))",
        ]))
        lines.append(row("octets", [
            "received \(formatBytes(octetsReceived))\(rate(octetsReceived, previous?.octetsReceived, bytes: true))",
            "sent \(formatBytes(octetsSent))\(rate(octetsSent, previous?.octetsSent, bytes: true))",
        ]))
        for stats in protocols {
            let before = previous?.protocols.first { $0.name == stats.name }
            lines.append(row(stats.name, ["sessions \(format(stats.sessions))\(rate(stats.sessions, before?.sessions))"]
                + stats.outcomes.map { "\($0.label) \(format($0.count))" }))
            let durations = stats.durations.isEmpty ? ["no sessions yet"]
                : stats.durations.map { "p\(formatPercentile($0.percentile)) \(formatSeconds($0.seconds))" }
            lines.append(row("", ["duration"] + durations))
        }
        if pendingInMemory != nil || spillFiles != nil {
            lines.append(row("pending", [
                "memory \(formatBytes(pendingInMemory ?? 0))", "spill \(formatBytes(pendingInSpill ?? 0))",
                "spill files \(format(spillFiles ?? 0))",
            ]))
        }
        var process: [String] = []
        if let cpuSeconds { process.append("cpu \(String(format2: cpuSeconds)) s\(rate(cpuSeconds, previous?.cpuSeconds))") }
        if let residentBytes { process.append("memory \(formatBytes(residentBytes))") }
        if let openFDs { process.append("descriptors \(format(openFDs))" + (maxFDs.map { " of \(format($0))" } ?? "")) }
        if !process.isEmpty { lines.append(row("process", process)) }
        return lines.joined(separator: "\n")
    }

    /// One JSON object (a line); with `previous`, a `rates` object too.
    public func json(address: String, previous: DaemonStats? = nil, interval: Double = 0) -> String {
        var fields: [String] = [
            "\"address\":\(JSONText.string(address))",
            "\"accepting\":\(accepting)",
        ]
        if let version { fields.append("\"version\":\(JSONText.string(version))") }
        if let libev { fields.append("\"libev\":\(JSONText.string(libev))") }
        if let uptimeSeconds { fields.append("\"uptime_seconds\":\(JSONText.number(uptimeSeconds))") }
        fields.append("\"connections\":{\"accepted\":\(JSONText.number(accepted)),\"active\":\(JSONText.number(active)),\"shed\":\(JSONText.number(shed)),\"accept_errors\":\(JSONText.number(acceptErrors))}")
        fields.append("\"octets\":{\"received\":\(JSONText.number(octetsReceived)),\"sent\":\(JSONText.number(octetsSent))}")
        let sessions = protocols.map { stats in
            "\(JSONText.string(stats.name)):{" + stats.outcomes.map { "\(JSONText.string($0.label)):\(JSONText.number($0.count))" }.joined(separator: ",") + "}"
        }
        fields.append("\"sessions\":{\(sessions.joined(separator: ","))}")
        let durations = protocols.map { stats in
            "\(JSONText.string(stats.name)):{\"count\":\(JSONText.number(stats.durationCount))"
                + stats.durations.map { ",\"p\(formatPercentile($0.percentile))\":\(JSONText.number($0.seconds))" }.joined() + "}"
        }
        fields.append("\"duration_seconds\":{\(durations.joined(separator: ","))}")
        if let pendingInMemory { fields.append("\"pending_output_bytes\":{\"memory\":\(JSONText.number(pendingInMemory)),\"spill\":\(JSONText.number(pendingInSpill ?? 0))}") }
        if let spillFiles { fields.append("\"spill_files\":\(JSONText.number(spillFiles))") }
        var process: [String] = []
        if let cpuSeconds { process.append("\"cpu_seconds\":\(JSONText.number(cpuSeconds))") }
        if let residentBytes { process.append("\"resident_memory_bytes\":\(JSONText.number(residentBytes))") }
        if let openFDs { process.append("\"open_fds\":\(JSONText.number(openFDs))") }
        if let maxFDs { process.append("\"max_fds\":\(JSONText.number(maxFDs))") }
        fields.append("\"process\":{\(process.joined(separator: ","))}")
        if let previous, interval > 0 {
            func perSecond(_ now: Double, _ before: Double) -> String { JSONText.number(max(0, now - before) / interval) }
            var rates = [
                "\"accepted\":\(perSecond(accepted, previous.accepted))",
                "\"octets_received\":\(perSecond(octetsReceived, previous.octetsReceived))",
                "\"octets_sent\":\(perSecond(octetsSent, previous.octetsSent))",
            ]
            for stats in protocols {
                let before = previous.protocols.first { $0.name == stats.name }?.sessions ?? 0
                rates.append("\"sessions_\(stats.name)\":\(perSecond(stats.sessions, before))")
            }
            fields.append("\"rates_per_second\":{\(rates.joined(separator: ","))}")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    private func row(_ title: String, _ cells: [String]) -> String {
        title.padding(toLength: 12) + cells.joined(separator: "   ")
    }
}

// MARK: Formatting

/// 12,345 (whole numbers with thousands separators); fractions to one place.
func format(_ value: Double) -> String {
    guard value.isFinite else { return "\(value)" }
    if value != value.rounded() { return String(format1: value) }
    let digits = String(Int64(value).magnitude)
    var grouped = ""
    for (index, digit) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { grouped.append(",") }
        grouped.append(digit)
    }
    return (value < 0 ? "-" : "") + grouped
}

func formatBytes(_ value: Double) -> String {
    let units = ["B", "KiB", "MiB", "GiB", "TiB"]
    var scaled = value
    var unit = 0
    while scaled >= 1024 && unit < units.count - 1 {
        scaled /= 1024
        unit += 1
    }
    return unit == 0 ? "\(Int64(scaled)) B" : "\(String(format1: scaled)) \(units[unit])"
}

func formatSeconds(_ seconds: Double) -> String {
    seconds < 1 ? "\(String(format2: seconds * 1000)) ms" : "\(String(format2: seconds)) s"
}

func formatDuration(_ seconds: Double) -> String {
    let whole = Int(seconds)
    let (hours, minutes, rest) = (whole / 3600, whole / 60 % 60, whole % 60)
    if hours > 0 { return "\(hours)h \(minutes)m \(rest)s" }
    if minutes > 0 { return "\(minutes)m \(rest)s" }
    return "\(rest)s"
}

func formatPercentile(_ percentile: Double) -> String {
    percentile == percentile.rounded() ? "\(Int(percentile))" : "\(percentile)"
}

extension String {
    /// One decimal place, without Foundation.
    init(format1 value: Double) {
        let tenths = (value * 10).rounded()
        self = "\(Int64(tenths) / 10).\(abs(Int64(tenths) % 10))"
    }

    /// Two decimal places, without Foundation.
    init(format2 value: Double) {
        let hundredths = Int64((value * 100).rounded())
        let fraction = abs(hundredths % 100)
        self = "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }

    func padding(toLength length: Int) -> String {
        count >= length ? self + " " : self + String(repeating: " ", count: length - count)
    }
}
