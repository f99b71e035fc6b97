#if canImport(Glibc)
import Glibc
#endif
import Logging
import SixteenProtocol

/// How log lines are written: plain text for people, or JSON lines for
/// journald and log shippers.
public enum LogFormat: String, Sendable, CaseIterable {
    case text
    case json
}

/// A swift-log handler that writes each line to standard error with one
/// `write` call (so lines from reactor threads never interleave), with a
/// UTC timestamp to the millisecond:
///
///     2026-11-26T12:00:00.123Z info sixteen: Listening at 127.0.0.1:1060
///     {"time":"2026-11-26T12:00:00.123Z","level":"info","logger":"sixteen","message":"Listening at 127.0.0.1:1060"}
///
/// Metadata follows the message as `key=value` (text) or as fields (JSON;
/// integers stay numbers).
public struct SixteenLogHandler: LogHandler {
    public var logLevel: Logger.Level
    public var metadata: Logger.Metadata = [:]
    public let label: String
    public let format: LogFormat

    public init(label: String, level: Logger.Level, format: LogFormat) {
        self.label = label
        logLevel = level
        self.format = format
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        var merged = metadata
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        Self.write(Self.line(level: event.level, label: label, message: "\(event.message)", metadata: merged, format: format))
    }

    /// Writes a line whatever the level: for what must always be said (the
    /// totals at exit).
    public static func emit(level: Logger.Level, label: String, message: String, metadata: Logger.Metadata = [:], format: LogFormat) {
        write(line(level: level, label: label, message: message, metadata: metadata, format: format))
    }

    /// One formatted line, newline included.
    public static func line(level: Logger.Level, label: String, message: String, metadata: Logger.Metadata, format: LogFormat) -> String {
        let time = timestamp()
        let keys = metadata.keys.sorted()
        switch format {
        case .text:
            var line = "\(time) \(level) \(label): \(message)"
            for key in keys { line += " \(key)=\(metadata[key]!)" }
            return line + "\n"
        case .json:
            var line = "{\"time\":\"\(time)\",\"level\":\"\(level)\",\"logger\":\(jsonString(label)),\"message\":\(jsonString(message))"
            for key in keys where !["time", "level", "logger", "message"].contains(key) {
                line += ",\(jsonString(key)):\(jsonValue(metadata[key]!))"
            }
            return line + "}\n"
        }
    }

    /// `now` (default: the real-time clock) in UTC, to the millisecond:
    /// `2026-11-26T12:00:00.123Z`.
    static func timestamp(_ time: timespec? = nil) -> String {
        var now = timespec()
        if let time { now = time } else { clock_gettime(CLOCK_REALTIME, &now) }
        var seconds = now.tv_sec
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let millis = Int(now.tv_nsec / 1_000_000)
        let millisText = millis < 10 ? "00\(millis)" : millis < 100 ? "0\(millis)" : "\(millis)"
        return "\(parts.tm_year + 1900)-\(two(parts.tm_mon + 1))-\(two(parts.tm_mday))T\(two(parts.tm_hour)):\(two(parts.tm_min)):\(two(parts.tm_sec)).\(millisText)Z"
    }

    static func jsonValue(_ value: Logger.Metadata.Value) -> String {
        switch value {
        case .string(let text):
            return jsonString(text)
        case .stringConvertible(let convertible):
            if convertible is Int || convertible is Int64 || convertible is UInt64 || convertible is Int32 {
                return "\(convertible)"
            }
            if let double = convertible as? Double, double.isFinite { return "\(double)" }
            if let flag = convertible as? Bool { return flag ? "true" : "false" }
            return jsonString("\(convertible)")
        case .array(let values):
            return "[" + values.map(jsonValue).joined(separator: ",") + "]"
        case .dictionary(let dictionary):
            return "{" + dictionary.keys.sorted().map { "\(jsonString($0)):\(jsonValue(dictionary[$0]!))" }.joined(separator: ",") + "}"
        }
    }

    /// A JSON string literal (RFC 8259 escapes).
    public static func jsonString(_ text: String) -> String {
        JSONText.string(text)
    }

    private static func write(_ line: String) {
        var bytes = Array(line.utf8)
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.write(2, $0.baseAddress! + offset, $0.count - offset) }
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return }
            offset += n
        }
    }
}
