import ArgumentParser
import Logging
import Reactor
import SixteenServer

// Every value the command line takes is checked here, by kind, with its
// range stated once: in the check and in the error that names it. Options
// parse `-1` as a value (`parsing: .unconditional`), so a negative number
// is an invalid value, not a missing one.

/// Why a value was refused; ArgumentParser prints it after the value and option.
struct InvalidValue: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// The longest duration any option takes: a year.
let longestSeconds = 86_400.0 * 365

/// A duration given in (possibly fractional) seconds on the command line.
struct Seconds: CustomStringConvertible, Sendable {
    let duration: Duration
    let text: String

    init(_ seconds: Int) {
        duration = .seconds(seconds)
        text = "\(seconds)"
    }

    /// More than 0 and at most a year.
    static func positive(_ text: String) throws -> Seconds {
        try parse(text, allowZero: false)
    }

    /// 0 up to a year.
    static func zeroOrMore(_ text: String) throws -> Seconds {
        try parse(text, allowZero: true)
    }

    /// From 0.1 s to an hour: the length of `sixteen load --interval`.
    static func interval(_ text: String) throws -> Seconds {
        guard let value = decimal(text), value >= 0.1, value <= 3600 else {
            throw InvalidValue("seconds must be a number from 0.1 to 3600 (an hour)")
        }
        return Seconds(duration: .nanoseconds(Int64(value * 1e9)), text: text)
    }

    private static func parse(_ text: String, allowZero: Bool) throws -> Seconds {
        let range = allowZero ? "from 0 to 31536000 (a year)" : "more than 0 and at most 31536000 (a year)"
        guard let value = decimal(text), allowZero ? value >= 0 : value > 0, value <= longestSeconds else {
            throw InvalidValue("seconds must be a number \(range)")
        }
        return Seconds(duration: .nanoseconds(Int64(value * 1e9)), text: text)
    }

    /// Decimal digits and one point only: Double() would also take hex
    /// (`0x10`), exponents and `nan`.
    private static func decimal(_ text: String) -> Double? {
        guard !text.isEmpty, text.allSatisfy({ $0.isASCIIDigit || $0 == "." }), text.filter({ $0 == "." }).count <= 1,
              let value = Double(text), value.isFinite else { return nil }
        return value
    }

    private init(duration: Duration, text: String) {
        self.duration = duration
        self.text = text
    }

    var description: String { text }
}

/// A size in octets: a whole number, optionally with a binary suffix
/// (`K`/`KiB`, `M`/`MiB`, `G`/`GiB`).
struct ByteCount: CustomStringConvertible, Sendable {
    let value: Int
    let text: String

    init(_ value: Int, _ text: String) {
        self.value = value
        self.text = text
    }

    /// A size from `minimum` to `maximum` octets.
    static func parser(minimum: Int = 0, maximum: Int = 1 << 40) -> @Sendable (String) throws -> ByteCount {
        { text in
            let rule = "a whole number of octets from \(describe(minimum)) to \(describe(maximum)), optionally with K, M or G (KiB, MiB, GiB)"
            let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)]
            var digits = Substring(text)
            var multiplier = 1
            for (suffix, factor) in units where text.hasSuffix(suffix) {
                digits = text.dropLast(suffix.count)
                multiplier = factor
                break
            }
            guard !digits.isEmpty, digits.allSatisfy(\.isASCIIDigit), let number = Int(digits) else {
                throw InvalidValue("sizes are \(rule)")
            }
            let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
            guard !overflow, product >= minimum, product <= maximum else { throw InvalidValue("the size must be \(rule)") }
            return ByteCount(product, text)
        }
    }

    /// `1K`, `2G`, or the number.
    static func describe(_ value: Int) -> String {
        for (unit, shift) in [("G", 30), ("M", 20), ("K", 10)] where value >= 1 << shift && value % (1 << shift) == 0 {
            return "\(value >> shift)\(unit)"
        }
        return "\(value)"
    }

    var description: String { text }
}

/// A whole number in `range` (a count: connections, threads, sessions).
func wholeNumber(in range: ClosedRange<Int>) -> @Sendable (String) throws -> Int {
    { text in
        guard let value = Int(text), range.contains(value) else {
            throw InvalidValue("must be a whole number from \(range.lowerBound) to \(range.upperBound)")
        }
        return value
    }
}

/// A TCP port to listen on (0 takes a free one).
let listeningPort = wholeNumber(in: 0...65535)
/// A TCP port to connect to.
let connectingPort = wholeNumber(in: 1...65535)

extension Character {
    var isASCIIDigit: Bool { ("0"..."9").contains(self) }
}

/// The log levels offered: `trace` is not, since nothing logs more than `debug`.
enum LogLevel: String, ExpressibleByArgument, CaseIterable {
    case debug, info, notice, warning, error, critical

    var level: Logger.Level {
        switch self {
        case .debug: .debug
        case .info: .info
        case .notice: .notice
        case .warning: .warning
        case .error: .error
        case .critical: .critical
        }
    }
}

extension LogFormat: ExpressibleByArgument {}

/// Sends swift-log's output to stderr, at `level`, as text or JSON lines.
func makeLogger(level: Logger.Level, format: LogFormat = .text) -> Logger {
    LoggingSystem.bootstrap { label in
        SixteenLogHandler(label: label, level: level, format: format)
    }
    var logger = Logger(label: "sixteen")
    logger.logLevel = level
    return logger
}

/// `HOST:PORT`, as `--admin` and `sixteen stats` take it: an IPv4 address or
/// a name, or an IPv6 address in brackets (`[::1]:9100`).
struct HostAndPort: CustomStringConvertible, Sendable {
    let host: String
    let port: Int

    /// A port from `ports`.
    static func parser(ports: ClosedRange<Int>) -> @Sendable (String) throws -> HostAndPort {
        { text in
            let rule = "give HOST:PORT, with a port from \(ports.lowerBound) to \(ports.upperBound) ([::1]:PORT for IPv6)"
            guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), ports.contains(port) else {
                throw InvalidValue(rule)
            }
            var host = String(text[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            guard !host.isEmpty, !host.contains(" "), !host.contains("[") else { throw InvalidValue(rule) }
            return HostAndPort(host: host, port: port)
        }
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Where a client connects: `HOST [-p PORT]`, shared by every client command.
struct ServerAddress: ParsableArguments {
    @Argument(help: "The server's host name or address.")
    var host: String

    @Option(name: .short, parsing: .unconditional, help: ArgumentHelp("The server's TCP port (default: 1060).", valueName: "port"),
            transform: connectingPort)
    var port: Int = 1060
}

/// `n thing` or `n things`.
func count(_ value: Int, _ thing: String, _ things: String? = nil) -> String {
    "\(value) \(value == 1 ? thing : (things ?? thing + "s"))"
}
