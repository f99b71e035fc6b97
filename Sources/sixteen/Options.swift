import ArgumentParser
import Logging
import SixteenServer

/// A duration given in (possibly fractional) seconds on the command line.
struct Seconds: ExpressibleByArgument, CustomStringConvertible {
    let duration: Duration
    let text: String

    init?(argument: String) {
        guard let value = Double(argument), value.isFinite, value > 0, value <= 86_400 * 365 else { return nil }
        duration = .nanoseconds(Int64(value * 1e9))
        text = argument
    }

    init(_ seconds: Int) {
        duration = .seconds(seconds)
        text = "\(seconds)"
    }

    var description: String { text }
    var defaultValueDescription: String { text }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
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
struct HostAndPort: ExpressibleByArgument, CustomStringConvertible {
    let host: String
    let port: Int

    init?(argument: String) {
        guard let colon = argument.lastIndex(of: ":"), let port = Int(argument[argument.index(after: colon)...]),
              (0...65535).contains(port) else { return nil }
        var host = String(argument[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard !host.isEmpty, !host.contains(" ") else { return nil }
        self.host = host
        self.port = port
    }

    var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
}

/// Checks a port number given with `-p`.
func validatePort(_ port: Int) throws {
    guard (0...65535).contains(port) else {
        throw ValidationError("port \(port) is out of range (0-65535)")
    }
}

/// A size in octets: a plain number, or with a binary suffix (`K`/`KiB`,
/// `M`/`MiB`, `G`/`GiB`).
struct ByteCount: ExpressibleByArgument, CustomStringConvertible {
    let value: Int
    let text: String

    init?(argument: String) {
        let units: [(String, Int)] = [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10), ("G", 1 << 30), ("M", 1 << 20), ("K", 1 << 10)]
        var digits = Substring(argument)
        var multiplier = 1
        for (suffix, factor) in units where argument.hasSuffix(suffix) {
            digits = argument.dropLast(suffix.count)
            multiplier = factor
            break
        }
        guard let number = Int(digits), number >= 0 else { return nil }
        let (product, overflow) = number.multipliedReportingOverflow(by: multiplier)
        guard !overflow else { return nil }
        value = product
        text = argument
    }

    init(_ value: Int, _ text: String) {
        self.value = value
        self.text = text
    }

    var description: String { text }
    var defaultValueDescription: String { text }
}

/// Where a client connects: `HOST [-p PORT]`, shared by every client command.
struct ServerAddress: ParsableArguments {
    @Argument(help: "The server's host name or address.")
    var host: String

    @Option(name: .short, help: "The server's TCP port.")
    var port: Int = 1060

    func validate() throws {
        try validatePort(port)
        guard port != 0 else { throw ValidationError("port 0 cannot be connected to") }
    }
}
