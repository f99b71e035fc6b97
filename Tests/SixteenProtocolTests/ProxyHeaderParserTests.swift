import SixteenProtocol
import XCTest

/// The PROXY protocol header parser, rule by rule (see the header of
/// `ProxyHeaderParser.swift`), against HAProxy's doc/proxy-protocol.txt.
/// Pure: every input is a hand-made octet string, fed whole, split in two at
/// every position, and one octet at a time.
final class ProxyHeaderParserTests: XCTestCase {

    /// Protocol octets that follow a header: never the parser's (rule 5).
    static let protocolOctets = Array("Hi there, server".utf8)
    /// The v2 signature, written out from the spec (not taken from the parser).
    static let signature = Array("\r\n\r\n\0\r\nQUIT\n".utf8)

    static let v6Full: [UInt8] = [0x20, 0x01, 0x0D, 0xB8, 0x85, 0xA3, 0, 0, 0, 0, 0x8A, 0x2E, 0x03, 0x70, 0x73, 0x34]
    static let v6DocOne: [UInt8] = [0x20, 0x01, 0x0D, 0xB8] + Array(repeating: 0, count: 11) + [1]
    static let v6Loopback: [UInt8] = Array(repeating: 0, count: 15) + [1]
    static let v6Mapped: [UInt8] = Array(repeating: 0, count: 10) + [0xFF, 0xFF, 1, 2, 3, 4]
    static let v6LinkLocal: [UInt8] = [0xFE, 0x80] + Array(repeating: 0, count: 14)
    static let v6AllOnes = [UInt8](repeating: 0xFF, count: 16)

    // MARK: Rule 2: version 1

    func testV1TCP4() {
        assertParses("PROXY TCP4 192.168.0.1 10.0.0.255 56324 443\r\n",
                     as: proxied([192, 168, 0, 1], 56324, [10, 0, 0, 255], 443))
        assertParses("PROXY TCP4 0.0.0.0 255.255.255.255 0 65535\r\n",
                     as: proxied([0, 0, 0, 0], 0, [255, 255, 255, 255], 65535))
    }

    func testV1TCP6FullAndCompressed() {
        assertParses("PROXY TCP6 2001:0db8:85a3:0000:0000:8a2e:0370:7334 2001:db8::1 1 65535\r\n",
                     as: proxied(Self.v6Full, 1, Self.v6DocOne, 65535))
        assertParses("PROXY TCP6 ::1 ::ffff:1.2.3.4 0 8080\r\n",
                     as: proxied(Self.v6Loopback, 0, Self.v6Mapped, 8080))
        assertParses("PROXY TCP6 FE80:: :: 443 10\r\n",
                     as: proxied(Self.v6LinkLocal, 443, [UInt8](repeating: 0, count: 16), 10))
    }

    func testV1Unknown() {
        assertParses("PROXY UNKNOWN\r\n", as: .unknown)
        assertParses("PROXY UNKNOWN ffff:f::ffff 1.2.3.4 whatever you like\r\n", as: .unknown)
    }

    func testLongestLinesParse() {
        let ones = Array(repeating: "ffff", count: 8).joined(separator: ":")
        // The spec's worst case for TCP6: 104 octets.
        let tcp6 = "PROXY TCP6 \(ones) \(ones) 65535 65535\r\n"
        XCTAssertEqual(tcp6.utf8.count, 104)
        assertParses(tcp6, as: proxied(Self.v6AllOnes, 65535, Self.v6AllOnes, 65535))
        // The spec's worst case of all (UNKNOWN with addresses): 107 octets, the limit.
        let unknown = "PROXY UNKNOWN \(ones) \(ones) 65535 65535\r\n"
        XCTAssertEqual(unknown.utf8.count, ProxyHeaderParser.maxV1Length)
        XCTAssertEqual(ProxyHeaderParser.maxV1Length, 107)
        assertParses(unknown, as: .unknown)
    }

    // MARK: Rule 3: version 2

    func testSignatureIsTheSpecs() {
        XCTAssertEqual(ProxyHeaderParser.signature, Self.signature)
        XCTAssertEqual(Self.signature.count, 12)
    }

    func testV2ProxyOverIPv4() {
        let body: [UInt8] = [192, 168, 0, 1, 10, 0, 0, 255, 0xDC, 0x04, 0x01, 0xBB]
        assertParses(v2(0x21, 0x11, body), as: proxied([192, 168, 0, 1], 56324, [10, 0, 0, 255], 443))
    }

    func testV2ProxyOverIPv6() {
        let body = Self.v6Full + Self.v6Loopback + [0x00, 0x50, 0xFF, 0xFE]
        assertParses(v2(0x21, 0x21, body), as: proxied(Self.v6Full, 80, Self.v6Loopback, 65534))
    }

    func testV2TLVsAreSkippedAndCounted() {
        // ALPN "h2", AUTHORITY "example.com", NOOP of three octets.
        let tlvs: [UInt8] = [0x01, 0x00, 0x02] + Array("h2".utf8) + [0x02, 0x00, 0x0B] + Array("example.com".utf8)
            + [0x04, 0x00, 0x03, 0, 0, 0]
        assertParses(v2(0x21, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0x12, 0x34, 0x56, 0x78] + tlvs),
                     as: proxied([1, 2, 3, 4], 0x1234, [5, 6, 7, 8], 0x5678))
        assertParses(v2(0x21, 0x21, Self.v6DocOne + Self.v6Mapped + [0, 1, 0, 2] + tlvs),
                     as: proxied(Self.v6DocOne, 1, Self.v6Mapped, 2))
        // The largest length allowed: 536, a fixed part of 16, 552 in all.
        XCTAssertEqual(ProxyHeaderParser.maxV2Length, 552)
        let padding: [UInt8] = [0x04, 0x01, 0xF1] + Array(repeating: 0xAA, count: 497)
        let largest = v2(0x21, 0x21, Self.v6AllOnes + Self.v6DocOne + [0, 7, 0, 9] + padding)
        XCTAssertEqual(largest.count, 552)
        assertParses(largest, as: proxied(Self.v6AllOnes, 7, Self.v6DocOne, 9))
    }

    func testV2Local() {
        assertParses(v2(0x20, 0x00, []), as: .local)
        assertParses(v2(0x20, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]), as: .local)
        assertParses(v2(0x20, 0x21, Self.v6Full + Self.v6Full + [0, 1, 0, 2, 0x04, 0x00, 0x00]), as: .local)
    }

    func testV2Unspec() {
        assertParses(v2(0x21, 0x00, []), as: .unknown)
        assertParses(v2(0x21, 0x00, [9, 9, 9, 9]), as: .unknown)
    }

    // MARK: Rule 5: only the header, and done once done

    func testEmptyReadsChangeNothing() {
        var parser = ProxyHeaderParser()
        XCTAssertEqual(parser.result, .incomplete)
        XCTAssertEqual(parser.consume([]), .incomplete)
        XCTAssertEqual(parser.consume(Array("PROXY UNKNOWN\r".utf8)), .incomplete)
        XCTAssertEqual(parser.consume([]), .incomplete)
        XCTAssertEqual(parser.consume([0x0A, 0x0A]), .complete(.unknown, consumed: 1))
        XCTAssertEqual(parser.consume([]), .complete(.unknown, consumed: 1))
        XCTAssertEqual(parser.consume(Array("PROXY UNKNOWN\r\n".utf8)), .complete(.unknown, consumed: 1))
        XCTAssertEqual(parser.result, .complete(.unknown, consumed: 1))
    }

    // MARK: Rule 4: refusals

    func testNonProxyFirstOctetsAreRefusedAtOnce() {
        assertRejected([0x16, 0x03, 0x01, 0x00], "not a PROXY header", at: 1)
        assertRejected(Array("GET / HTTP/1.1\r\n".utf8), "not a PROXY header", at: 1)
        assertRejected(Array("proxy TCP4".utf8), "not a PROXY header", at: 1)
        assertRejected([0x00], "not a PROXY header", at: 1)
    }

    func testWrongV1PrefixIsRefusedAtTheFirstWrongOctet() {
        assertRejected(Array("PROXX TCP4".utf8), "not a PROXY header", at: 5)
        assertRejected(Array("PROXYTCP4".utf8), "not a PROXY header", at: 6)
        assertRejected(Array("PRO".utf8) + [0x0A], "not a PROXY header", at: 4)
    }

    func testV1LineLengthBoundary() {
        // 107 octets with the CRLF: accepted (the LF is the 107th).
        let fits = "PROXY UNKNOWN " + String(repeating: "x", count: 91) + "\r\n"
        XCTAssertEqual(fits.utf8.count, 107)
        assertParses(fits, as: .unknown)
        // 108 octets with no line end: refused when the 107th arrives.
        let long = Array(("PROXY UNKNOWN " + String(repeating: "x", count: 94)).utf8)
        XCTAssertEqual(long.count, 108)
        assertRejected(long, "v1 line longer than 107 octets", at: 107)
        // 108 with its CRLF: the CR is the 107th, the LF would be past the limit.
        let crAt107 = Array(("PROXY UNKNOWN " + String(repeating: "x", count: 92) + "\r\n").utf8)
        XCTAssertEqual(crAt107.count, 108)
        assertRejected(crAt107, "v1 line longer than 107 octets", at: 107)
    }

    func testLineFeedWithoutCarriageReturnIsRefused() {
        assertRejected(Array("PROXY UNKNOWN\n".utf8), "v1 line not ended by CRLF", at: 14)
        assertRejected(Array("PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n".utf8), "v1 line not ended by CRLF", at: 31)
        assertRejected(Array("PROXY \n".utf8), "v1 line not ended by CRLF", at: 7)
    }

    func testMalformedV1Lines() {
        for line in ["PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
                     "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
                     "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n", "PROXY tcp4 1.2.3.4 5.6.7.8 1 2\r\n",
                     "PROXY \r\n", "PROXY  UNKNOWN\r\n"] {
            assertRejected(Array(line.utf8), "malformed v1 line", at: line.utf8.count)
        }
    }

    func testMalformedV1Addresses() {
        for line in [
            "PROXY TCP4 ::1 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4 2001:db8::1 1 2\r\n",  // wrong family
            "PROXY TCP6 1.2.3.4 ::1 1 2\r\n", "PROXY TCP6 ::1 5.6.7.8 1 2\r\n",
            "PROXY TCP4 01.2.3.4 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",  // IPv4
            "PROXY TCP4 1.2.3 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.4.5 5.6.7.8 1 2\r\n",
            "PROXY TCP4 1.2..4 5.6.7.8 1 2\r\n", "PROXY TCP4 1.2.3.a 5.6.7.8 1 2\r\n",
            "PROXY TCP4 localhost 5.6.7.8 1 2\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 1 080\r\n",  // ports
            "PROXY TCP4 1.2.3.4 5.6.7.8 00 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 +80 2\r\n", "PROXY TCP4 1.2.3.4 5.6.7.8 100000 2\r\n",
            "PROXY TCP4 1.2.3.4 5.6.7.8 http 2\r\n",
            "PROXY TCP6 2001:db8:::1 ::1 1 2\r\n", "PROXY TCP6 1::2::3 ::1 1 2\r\n",  // IPv6
            "PROXY TCP6 1:2:3:4:5:6:7:8:9 ::1 1 2\r\n", "PROXY TCP6 1:2:3:4:5:6:7 ::1 1 2\r\n",
            "PROXY TCP6 12345::1 ::1 1 2\r\n", "PROXY TCP6 ::g ::1 1 2\r\n",
            "PROXY TCP6 1:2:3:4:5:6:7:8:: ::1 1 2\r\n", "PROXY TCP6 :1:2:3:4:5:6:7 ::1 1 2\r\n",
            "PROXY TCP6 ::ffff:01.2.3.4 ::1 1 2\r\n", "PROXY TCP6 ::1.2.3.4:5 ::1 1 2\r\n",
            "PROXY TCP6 ::1%eth0 ::1 1 2\r\n",
        ] {
            assertRejected(Array(line.utf8), "malformed v1 addresses", at: line.utf8.count)
        }
    }

    func testV2VersionAndCommandAreCheckedAtTheThirteenthOctet() {
        let body: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]
        assertRejected(v2(0x11, 0x11, body), "unknown PROXY version 1", at: 13)
        assertRejected(v2(0x31, 0x11, body), "unknown PROXY version 3", at: 13)
        assertRejected(v2(0x01, 0x11, body), "unknown PROXY version 0", at: 13)
        assertRejected(v2(0x22, 0x11, body), "unknown v2 command 2", at: 13)
        assertRejected(v2(0x2F, 0x11, body), "unknown v2 command 15", at: 13)
    }

    /// Refused at the family octet (the 14th), not after the body: found by
    /// Fuzz/ProxyHeaderParser, whose reference refuses at the first octet
    /// that breaks a rule, as the parser's header promises. A UNIX family
    /// with a 216-octet body was refused only at its 232nd octet.
    func testV2NonTCPFamiliesAreRefused() {
        let body: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]
        assertRejected(v2(0x21, 0x12, body), "v2 family 18 is not TCP", at: 14)  // UDP over IPv4
        assertRejected(v2(0x21, 0x22, Self.v6Full + Self.v6Full + [0, 1, 0, 2]), "v2 family 34 is not TCP", at: 14)
        assertRejected(v2(0x21, 0x31, [UInt8](repeating: 0x61, count: 216)), "v2 family 49 is not TCP", at: 14)
        assertRejected(v2(0x21, 0x08, []), "v2 family 8 is not TCP", at: 14)  // the fuzzer's input, less its request
        // LOCAL ignores the family (a health check's addresses, if any, are not used).
        assertParses(v2(0x20, 0x31, [UInt8](repeating: 0x61, count: 216)), as: .local)
    }

    /// Refused at the length's last octet (the 16th), not after the body
    /// (found by Fuzz/ProxyHeaderParser, as above).
    func testV2LengthTooShortForTheAddressesIsRefused() {
        assertRejected(v2(0x21, 0x11, [1, 2, 3, 4, 5, 6, 7, 8]), "v2 IPv4 header too short", at: 16)
        assertRejected(v2(0x21, 0x11, []), "v2 IPv4 header too short", at: 16)
        assertRejected(v2(0x21, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0]), "v2 IPv4 header too short", at: 16)
        assertRejected(v2(0x21, 0x21, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2]), "v2 IPv6 header too short", at: 16)
        assertRejected(v2(0x21, 0x21, Self.v6Full + Self.v6Full + [0, 1, 0]), "v2 IPv6 header too short", at: 16)
    }

    func testV2LengthPastTheMaximumIsRefusedAtTheLengthOctets() {
        let body = Self.v6Full + Self.v6Full + [0, 1, 0, 2]
        assertRejected(v2(0x21, 0x21, body, length: 537), "v2 header of 537 octets", at: 16)
        assertRejected(v2(0x21, 0x21, body, length: 0xFFFF), "v2 header of 65535 octets", at: 16)
        assertRejected(v2(0x20, 0x00, [], length: 0x0300), "v2 header of 768 octets", at: 16)
    }

    func testWrongSignatureOctetIsRefusedWhereItIs() {
        let good = v2(0x21, 0x11, [1, 2, 3, 4, 5, 6, 7, 8, 0, 1, 0, 2])
        var fifth = good
        fifth[4] = 0x01
        assertRejected(fifth, "not a PROXY header", at: 5)
        for position in 0..<12 {
            var bad = good
            bad[position] ^= 0x20
            assertRejected(bad, "not a PROXY header", at: position + 1)
        }
    }

    // MARK: Address grammar (bugs a first version had)

    /// Rule 2: addresses are numeric. `UInt16(_:radix:)` takes a sign, so
    /// "+1" and "-0" passed as IPv6 groups; inet_pton refuses both.
    func testSignedIPv6GroupsAreRefused() {
        for line in ["PROXY TCP6 ::+1 ::1 1 2\r\n", "PROXY TCP6 ::1 2001:db8::-0 1 2\r\n"] {
            XCTAssertEqual(parse(Array(line.utf8)), .rejected("malformed v1 addresses"), line)
        }
    }

    /// Rule 2: an embedded IPv4 address may only end an IPv6 address
    /// (RFC 4291 2.2); before "::" it was taken as two groups. inet_pton refuses.
    func testIPv4BeforeTheDoubleColonIsRefused() {
        for line in ["PROXY TCP6 1.2.3.4::1 ::1 1 2\r\n", "PROXY TCP6 ::1 1.2.3.4:: 1 2\r\n"] {
            XCTAssertEqual(parse(Array(line.utf8)), .rejected("malformed v1 addresses"), line)
        }
    }

    // MARK: Helpers

    func parse(_ octets: [UInt8]) -> ProxyParseResult {
        var parser = ProxyHeaderParser()
        let result = parser.consume(octets)
        XCTAssertEqual(parser.result, result)
        return result
    }

    func proxied(_ source: [UInt8], _ sourcePort: UInt16, _ destination: [UInt8], _ destinationPort: UInt16) -> ProxyHeader {
        .proxied(source: ProxyAddress(octets: source, port: sourcePort),
                 destination: ProxyAddress(octets: destination, port: destinationPort))
    }

    /// A v2 header: signature, version/command, family, big-endian length
    /// (the body's own unless given), body.
    func v2(_ versionCommand: UInt8, _ family: UInt8, _ body: [UInt8], length: Int? = nil) -> [UInt8] {
        let length = length ?? body.count
        return Self.signature + [versionCommand, family, UInt8(length >> 8), UInt8(length & 0xFF)] + body
    }

    func assertParses(_ header: String, as expected: ProxyHeader, file: StaticString = #filePath, line: UInt = #line) {
        assertParses(Array(header.utf8), as: expected, file: file, line: line)
    }

    /// `header` followed by protocol octets parses to `expected` taking
    /// exactly the header's octets: whole, split in two at every position,
    /// and one octet at a time; later reads give the same result.
    func assertParses(_ header: [UInt8], as expected: ProxyHeader, file: StaticString = #filePath, line: UInt = #line) {
        let input = header + Self.protocolOctets
        XCTAssertEqual(parse(header), .complete(expected, consumed: header.count), "header alone", file: file, line: line)
        XCTAssertEqual(parse(input), .complete(expected, consumed: header.count), "header and more", file: file, line: line)
        for cut in 0...input.count {
            feed([Array(input[..<cut]), Array(input[cut...])], header.count, expected, "cut \(cut)", file, line)
        }
        feed(input.map { [$0] }, header.count, expected, "one at a time", file, line)
    }

    func feed(_ parts: [[UInt8]], _ headerLength: Int, _ expected: ProxyHeader, _ label: String,
              _ file: StaticString, _ line: UInt) {
        var parser = ProxyHeaderParser()
        var offset = 0
        var done: ProxyParseResult?
        for part in parts {
            let result = parser.consume(part)
            XCTAssertEqual(parser.result, result, label, file: file, line: line)
            if let done {
                XCTAssertEqual(result, done, "\(label): after completion", file: file, line: line)
            } else if offset + part.count < headerLength {
                XCTAssertEqual(result, .incomplete, "\(label) at \(offset)", file: file, line: line)
            } else {
                // Taken in all: the earlier parts plus `consumed` of this one.
                XCTAssertEqual(result, .complete(expected, consumed: headerLength - offset), label, file: file, line: line)
                done = result
            }
            offset += part.count
        }
        XCTAssertNotNil(done, "\(label): never completed", file: file, line: line)
        XCTAssertEqual(parser.consume(Self.protocolOctets), done, "\(label): a later read", file: file, line: line)
    }

    /// `input` (and protocol octets after it) is refused for `reason` when
    /// its `at`-th octet arrives, in any split, and stays refused.
    func assertRejected(_ input: [UInt8], _ reason: String, at position: Int,
                        file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertLessThanOrEqual(position, input.count, "refusal point inside the input", file: file, line: line)
        let all = input + Self.protocolOctets
        XCTAssertEqual(parse(all), .rejected(reason), "whole", file: file, line: line)
        XCTAssertEqual(parse(Array(input[..<(position - 1)])), .incomplete, "up to the octet before", file: file, line: line)
        for cut in 0...all.count {
            var parser = ProxyHeaderParser()
            XCTAssertEqual(parser.consume(Array(all[..<cut])), cut >= position ? .rejected(reason) : .incomplete,
                           "cut \(cut)", file: file, line: line)
            XCTAssertEqual(parser.consume(Array(all[cut...])), .rejected(reason), "cut \(cut)", file: file, line: line)
            XCTAssertEqual(parser.result, .rejected(reason), "cut \(cut)", file: file, line: line)
        }
        var parser = ProxyHeaderParser()
        for (index, octet) in all.enumerated() {
            let expected: ProxyParseResult = index + 1 < position ? .incomplete : .rejected(reason)
            XCTAssertEqual(parser.consume([octet]), expected, "octet \(index + 1)", file: file, line: line)
            XCTAssertEqual(parser.result, expected, "octet \(index + 1)", file: file, line: line)
        }
    }
}
