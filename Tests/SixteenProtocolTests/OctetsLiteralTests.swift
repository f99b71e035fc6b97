import SixteenProtocol
import XCTest

/// `pythonBytesLiteral` against what CPython's `repr(bytes)` prints (each
/// expected string below was produced by `python3 -c 'print(repr(...))'`).
final class OctetsLiteralTests: XCTestCase {

    private func literal(_ text: String) -> String { pythonBytesLiteral(Array(text.utf8)) }

    func testTheBooksMessages() {
        XCTAssertEqual(pythonBytesLiteral(sixteenRequest), #"b'Hi there, server'"#)
        XCTAssertEqual(pythonBytesLiteral(sixteenReply), #"b'Farewell, client'"#)
    }

    func testEmpty() {
        XCTAssertEqual(pythonBytesLiteral([UInt8]()), "b''")
    }

    func testQuotes() {
        // A single quote alone: Python switches to double quotes, no escape.
        XCTAssertEqual(literal("it's"), #"b"it's""#)
        XCTAssertEqual(literal("'"), #"b"'""#)
        // Double quotes alone: single quotes, double quotes unescaped.
        XCTAssertEqual(literal(#"say "hi""#), #"b'say "hi"'"#)
        XCTAssertEqual(literal(#"""#), #"b'"'"#)
        // Both: single quotes, the single quote escaped.
        XCTAssertEqual(literal(#"it's "x""#), #"b'it\'s "x"'"#)
    }

    func testBackslash() {
        XCTAssertEqual(literal(#"a\b"#), #"b'a\\b'"#)
        XCTAssertEqual(literal(#"\"#), #"b'\\'"#)
        XCTAssertEqual(literal(#"it's \"#), #"b"it's \\""#)
    }

    func testWhitespaceEscapes() {
        XCTAssertEqual(pythonBytesLiteral([9, 10, 13]), #"b'\t\n\r'"#)
        // Vertical tab and form feed have no short escape in bytes repr.
        XCTAssertEqual(pythonBytesLiteral([11, 12]), #"b'\x0b\x0c'"#)
        XCTAssertEqual(pythonBytesLiteral([32]), "b' '")
    }

    func testHexEscapes() {
        XCTAssertEqual(pythonBytesLiteral([0x00, 0x7f, 0xff]), #"b'\x00\x7f\xff'"#)
        XCTAssertEqual(pythonBytesLiteral([0x20, 0x7e, 0x1f, 0x80, 0x0b, 0x0c, 0x1b]), #"b' ~\x1f\x80\x0b\x0c\x1b'"#)
        XCTAssertEqual(pythonBytesLiteral([0xab, 0xcd, 0xef, 0x0a]), #"b'\xab\xcd\xef\n'"#)
    }

    /// `repr(bytes(range(256)))`.
    func testEveryOctet() {
        let expected =
            ##"b'\x00\x01\x02\x03\x04\x05\x06\x07\x08\t\n\x0b\x0c\r\x0e\x0f\x10\x11\x12\x13\x14\x15\x16\x17\x18\x19\x1a\x1b\x1c\x1d\x1e\x1f !"##
            + ##""#$%&\'()*+,-./0123456789:;<=>?@ABCDEFGHIJKLMNOPQRSTUVWXYZ[\\]^_`abcdefghijklmnopqrstuvwxyz{|}~\x7f"##
            + #"\x80\x81\x82\x83\x84\x85\x86\x87\x88\x89\x8a\x8b\x8c\x8d\x8e\x8f\x90\x91\x92\x93\x94\x95\x96\x97\x98\x99\x9a\x9b\x9c\x9d\x9e\x9f"#
            + #"\xa0\xa1\xa2\xa3\xa4\xa5\xa6\xa7\xa8\xa9\xaa\xab\xac\xad\xae\xaf\xb0\xb1\xb2\xb3\xb4\xb5\xb6\xb7\xb8\xb9\xba\xbb\xbc\xbd\xbe\xbf"#
            + #"\xc0\xc1\xc2\xc3\xc4\xc5\xc6\xc7\xc8\xc9\xca\xcb\xcc\xcd\xce\xcf\xd0\xd1\xd2\xd3\xd4\xd5\xd6\xd7\xd8\xd9\xda\xdb\xdc\xdd\xde\xdf"#
            + #"\xe0\xe1\xe2\xe3\xe4\xe5\xe6\xe7\xe8\xe9\xea\xeb\xec\xed\xee\xef\xf0\xf1\xf2\xf3\xf4\xf5\xf6\xf7\xf8\xf9\xfa\xfb\xfc\xfd\xfe\xff'"#
        XCTAssertEqual(pythonBytesLiteral(Array(0...255)), expected)
    }

    /// Each octet on its own: printable ASCII is itself, the rest two hex digits or a short escape.
    func testEachOctetAlone() {
        for octet in UInt8.min...UInt8.max {
            let body: String
            switch octet {
            case 0x27: XCTAssertEqual(pythonBytesLiteral([octet]), #"b"'""#); continue
            case 0x5c: body = #"\\"#
            case 0x09: body = #"\t"#
            case 0x0a: body = #"\n"#
            case 0x0d: body = #"\r"#
            case 0x20...0x7e: body = String(Unicode.Scalar(octet))
            default:
                let hex = String(octet, radix: 16)
                body = #"\x"# + (hex.count == 1 ? "0" + hex : hex)
            }
            XCTAssertEqual(pythonBytesLiteral([octet]), "b'" + body + "'", "octet \(octet)")
        }
    }

    func testOtherSequences() {
        XCTAssertEqual(pythonBytesLiteral("it's".utf8), #"b"it's""#)
        XCTAssertEqual(pythonBytesLiteral(sixteenRequest[3..<8]), "b'there'")
        XCTAssertEqual(pythonBytesLiteral(sixteenRequest.prefix(2)), "b'Hi'")
        // A lazy (non-Array, multi-pass) sequence.
        XCTAssertEqual(pythonBytesLiteral((0..<2).lazy.map { UInt8(ascii: $0 == 0 ? "H" : "i") }), "b'Hi'")
    }
}
