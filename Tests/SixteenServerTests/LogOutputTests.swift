import Foundation
import Logging
import XCTest

@testable import SixteenServer

/// `SixteenLogHandler`'s two line formats, text and JSON: the timestamp's
/// shape, the exact rest of each line, metadata, and JSON escaping (checked
/// by hand and by Foundation's JSON parser).
final class LogOutputTests: XCTestCase {

    /// The 24-character timestamp at the start of `line`, and the rest.
    func split(_ line: String, afterPrefix prefix: String = "", file: StaticString = #filePath, line number: UInt = #line)
        -> (timestamp: String, rest: String)
    {
        XCTAssertTrue(line.hasPrefix(prefix), "\(line) should start with \(prefix)", file: file, line: number)
        let body = line.dropFirst(prefix.count)
        return (String(body.prefix(24)), String(body.dropFirst(24)))
    }

    /// `2026-11-26T12:00:00.123Z`, checked position by position.
    func assertTimestampShape(_ timestamp: String, file: StaticString = #filePath, line: UInt = #line) {
        let characters = Array(timestamp)
        XCTAssertEqual(characters.count, 24, timestamp, file: file, line: line)
        guard characters.count == 24 else { return }
        let punctuation: [Int: Character] = [4: "-", 7: "-", 10: "T", 13: ":", 16: ":", 19: ".", 23: "Z"]
        for (index, character) in characters.enumerated() {
            if let expected = punctuation[index] {
                XCTAssertEqual(character, expected, "\(timestamp) at \(index)", file: file, line: line)
            } else {
                XCTAssertTrue(character.isASCII && character.isNumber, "\(timestamp) at \(index)", file: file, line: line)
            }
        }
        XCTAssertTrue(timestamp.hasSuffix("Z"), file: file, line: line)
    }

    /// The timestamp names now, in UTC, to the millisecond (not local time, not another clock).
    func assertTimestampIsNow(_ timestamp: String, before: Date, after: Date, file: StaticString = #filePath, line: UInt = #line) {
        let formatter = ISO8601DateFormatter()
        formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        formatter.timeZone = TimeZone(identifier: "UTC")
        guard let date = formatter.date(from: timestamp) else {
            return XCTFail("\(timestamp) does not parse as ISO 8601", file: file, line: line)
        }
        // Truncated to the millisecond: at most 1 ms before `before`.
        XCTAssertGreaterThanOrEqual(date.timeIntervalSince(before), -0.0015, timestamp, file: file, line: line)
        XCTAssertLessThanOrEqual(date.timeIntervalSince(after), 0.0005, timestamp, file: file, line: line)
    }

    // MARK: Timestamp

    func testTimestampShapeAndValue() {
        for _ in 0..<20 {
            let before = Date()
            let timestamp = SixteenLogHandler.timestamp()
            let after = Date()
            assertTimestampShape(timestamp)
            assertTimestampIsNow(timestamp, before: before, after: after)
        }
    }

    /// Every field zero-padded, whatever the moment.
    func testTimestampOfAFixedMoment() {
        // 2026-01-02T03:04:05.007Z, and a moment of 2026-11-26 with 3-digit milliseconds.
        XCTAssertEqual(SixteenLogHandler.timestamp(timespec(tv_sec: 1_767_323_045, tv_nsec: 7_999_999)), "2026-01-02T03:04:05.007Z")
        XCTAssertEqual(SixteenLogHandler.timestamp(timespec(tv_sec: 1_767_323_045, tv_nsec: 70_000_000)), "2026-01-02T03:04:05.070Z")
        XCTAssertEqual(SixteenLogHandler.timestamp(timespec(tv_sec: 1_795_696_209, tv_nsec: 999_999_999)), "2026-11-26T12:30:09.999Z")
        XCTAssertEqual(SixteenLogHandler.timestamp(timespec(tv_sec: 0, tv_nsec: 0)), "1970-01-01T00:00:00.000Z")
    }

    // MARK: Text

    func testTextLine() {
        let before = Date()
        let line = SixteenLogHandler.line(
            level: .info, label: "sixteen", message: "Listening at 127.0.0.1:1060", metadata: [:], format: .text)
        let after = Date()
        let (timestamp, rest) = split(line)
        assertTimestampShape(timestamp)
        assertTimestampIsNow(timestamp, before: before, after: after)
        XCTAssertEqual(rest, " info sixteen: Listening at 127.0.0.1:1060\n")
    }

    func testTextLineLevels() {
        let expected: [Logger.Level: String] = [
            .trace: "trace", .debug: "debug", .info: "info", .notice: "notice",
            .warning: "warning", .error: "error", .critical: "critical",
        ]
        for level in Logger.Level.allCases {
            let line = SixteenLogHandler.line(level: level, label: "l", message: "m", metadata: [:], format: .text)
            XCTAssertEqual(split(line).rest, " \(expected[level]!) l: m\n")
        }
    }

    func testTextMetadataIsSortedKeyValue() {
        let metadata: Logger.Metadata = [
            "zeta": "last", "alpha": .stringConvertible(42), "mid": "two words", "Beta": .stringConvertible(true),
        ]
        let line = SixteenLogHandler.line(level: .warning, label: "sixteen.reactor", message: "slow", metadata: metadata, format: .text)
        XCTAssertEqual(split(line).rest, " warning sixteen.reactor: slow Beta=true alpha=42 mid=two words zeta=last\n")
    }

    // MARK: JSON

    func testJSONLineWithoutMetadata() {
        let line = SixteenLogHandler.line(level: .notice, label: "sixteen", message: "Stopped", metadata: [:], format: .json)
        let (timestamp, rest) = split(line, afterPrefix: "{\"time\":\"")
        assertTimestampShape(timestamp)
        XCTAssertEqual(rest, "\",\"level\":\"notice\",\"logger\":\"sixteen\",\"message\":\"Stopped\"}\n")
    }

    func testJSONLineFields() {
        let metadata: Logger.Metadata = [
            "count": .stringConvertible(42),
            "big": .stringConvertible(Int64(-9_000_000_000)),
            "ratio": .stringConvertible(0.5),
            "ok": .stringConvertible(false),
            "peer": "127.0.0.1:5000",
            "port": "1060",
            "list": .array(["a", .stringConvertible(1)]),
            "map": .dictionary(["b": "2", "a": .stringConvertible(1)]),
            // The four fixed fields cannot be overwritten by metadata.
            "time": "clash", "level": "clash", "logger": "clash", "message": "clash",
        ]
        let line = SixteenLogHandler.line(
            level: .error, label: "sixteen", message: "Say \"hi\"\tnow", metadata: metadata, format: .json)
        let (timestamp, rest) = split(line, afterPrefix: "{\"time\":\"")
        assertTimestampShape(timestamp)
        XCTAssertEqual(
            rest,
            #"","level":"error","logger":"sixteen","message":"Say \"hi\"\tnow","# + #""big":-9000000000,"count":42,"#
                + #""list":["a",1],"map":{"a":1,"b":"2"},"ok":false,"peer":"127.0.0.1:5000","port":"1060","ratio":0.5}"#
                + "\n")
    }

    func testJSONLineParsesWithFoundation() throws {
        let message = "quote \" backslash \\ newline \n tab \t control \u{1} é 😀"
        let metadata: Logger.Metadata = [
            "count": .stringConvertible(7), "name": "a \"b\"\n", "list": .array(["x", .stringConvertible(2)]),
        ]
        let before = Date()
        let line = SixteenLogHandler.line(level: .warning, label: "sixteen \"x\"", message: message, metadata: metadata, format: .json)
        let after = Date()
        XCTAssertTrue(line.hasSuffix("}\n"))
        XCTAssertEqual(line.filter { $0 == "\n" }.count, 1, "one line: the newlines inside are escaped")
        let object = try XCTUnwrap(
            try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        XCTAssertEqual(Set(object.keys), ["time", "level", "logger", "message", "count", "name", "list"])
        let time = try XCTUnwrap(object["time"] as? String)
        assertTimestampShape(time)
        assertTimestampIsNow(time, before: before, after: after)
        XCTAssertEqual(object["level"] as? String, "warning")
        XCTAssertEqual(object["logger"] as? String, "sixteen \"x\"")
        XCTAssertEqual(object["message"] as? String, message)
        XCTAssertEqual(object["count"] as? Int, 7)
        XCTAssertNil(object["count"] as? String, "integers stay numbers")
        XCTAssertEqual(object["name"] as? String, "a \"b\"\n")
        let list = try XCTUnwrap(object["list"] as? [Any])
        XCTAssertEqual(list.count, 2)
        XCTAssertEqual(list.first as? String, "x")
        XCTAssertEqual(list.last as? Int, 2)
    }

    // MARK: JSON strings

    func testJSONStringEscapes() {
        XCTAssertEqual(SixteenLogHandler.jsonString(""), #""""#)
        XCTAssertEqual(SixteenLogHandler.jsonString("plain text"), #""plain text""#)
        XCTAssertEqual(SixteenLogHandler.jsonString("a\"b"), #""a\"b""#)
        XCTAssertEqual(SixteenLogHandler.jsonString("a\\b"), #""a\\b""#)
        XCTAssertEqual(SixteenLogHandler.jsonString("a\nb"), #""a\nb""#)
        XCTAssertEqual(SixteenLogHandler.jsonString("a\rb"), #""a\rb""#)
        XCTAssertEqual(SixteenLogHandler.jsonString("a\tb"), #""a\tb""#)
        XCTAssertEqual(SixteenLogHandler.jsonString("a\u{1}b"), #""a\u0001b""#)
        XCTAssertEqual(SixteenLogHandler.jsonString("\u{0}\u{8}\u{c}\u{1f}"), #""\u0000\u0008\u000c\u001f""#)
        // DEL and everything above stay as they are (UTF-8 in the line).
        XCTAssertEqual(SixteenLogHandler.jsonString("\u{7f} \u{20} é 😀 /"), "\"\u{7f}   é 😀 /\"")
    }

    func testJSONStringRoundTripsThroughFoundation() throws {
        let text = "\"\\\n\r\t\u{1}\u{0}\u{1f}\u{7f}é😀</script>"
        let json = "[" + SixteenLogHandler.jsonString(text) + "]"
        let parsed = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String])
        XCTAssertEqual(parsed, [text])
    }
}
