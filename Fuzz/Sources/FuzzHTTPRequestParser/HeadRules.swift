import FuzzSupport
import SixteenProtocol

// What an accepted head must be, from the rules of HTTPRequestParser.swift
// (RFC 9112 as the admin listener keeps it), checked against the octets
// that were read and the head that was returned.
enum HeadRules {
    static let lineFeed: UInt8 = 0x0A
    static let carriageReturn: UInt8 = 0x0D
    static let tab: UInt8 = 0x09

    static func check(_ head: HTTPRequestHead, octets: UnsafeRawBufferPointer) {
        invariant(octets.last == lineFeed, "a head is complete at the line feed of its empty line (rule 1)")
        for (index, octet) in octets.enumerated() where octet < 0x20 || octet == 0x7F {
            switch octet {
            case lineFeed: break
            case carriageReturn:
                invariant(index + 1 < octets.count && octets[index + 1] == lineFeed, "a CR only ends a line (rules 1, 4)", "CR at \(index)")
            case tab: break
            default: invariantBroken("no control octet anywhere in an accepted head (rule 4)", "0x\(String(octet, radix: 16)) at \(index)")
            }
        }
        // Lines without their CR; the last is the empty line.
        let lines = octets.dropLast().split(separator: lineFeed, omittingEmptySubsequences: false).map { line in
            line.last == carriageReturn ? line.dropLast() : line
        }
        invariant(lines.count >= 2 && lines.last!.isEmpty, "a head is a request line, header lines, and an empty line (rule 1)")
        invariant(lines.dropLast().allSatisfy { !$0.isEmpty }, "only the last line of a head is empty (rule 1)")
        let requestLine = Array("\(head.method) \(head.target) HTTP/1.\(head.minorVersion)".utf8)
        invariant(lines[0].elementsEqual(requestLine), "the request line is the method, the target and the version as sent (rule 3)",
                  "read \(Array(lines[0])), returned \(head)")
        invariant(!lines[0].contains(tab), "no tab in the request line (rule 3)")
        invariant(!head.method.isEmpty && head.method.utf8.allSatisfy(isToken), "the method is a token (rule 3)")
        invariant(head.target.utf8.first == UInt8(ascii: "/") && head.target.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F },
                  "the target is origin-form: a slash, then visible ASCII (rule 3)")
        invariant(head.minorVersion == 0 || head.minorVersion == 1, "the version is HTTP/1.0 or HTTP/1.1 (rule 3)")
        invariant(head.headers.count == lines.count - 2, "every header line is a header, in order (rule 4)",
                  "\(lines.count - 2) lines, \(head.headers.count) headers")
        for (line, header) in zip(lines.dropFirst(), head.headers) {
            invariant(!header.name.isEmpty && header.name.utf8.allSatisfy { isToken($0) && !(0x41...0x5A).contains($0) },
                      "a header name is a token, in lowercase (rule 4)", header.name)
            invariant(line.first != 0x20 && line.first != tab, "no obsolete line folding (rule 4)")
            let trimmed = [0x20, tab]
            invariant(!trimmed.contains(header.value.utf8.first ?? 0) && !trimmed.contains(header.value.utf8.last ?? 0),
                      "a header value has no leading or trailing spaces or tabs (rule 4)", header.value)
            let colon = line.firstIndex(of: UInt8(ascii: ":"))!
            invariant(line[line.startIndex..<colon].elementsEqual(header.name.utf8.map { $0 }, by: { lowercase($0) == $1 }),
                      "the header name is the line's, before its colon (rule 4)")
        }
        if head.minorVersion == 1 {
            invariant(head.headers.filter { $0.name == "host" }.count == 1, "an HTTP/1.1 head has exactly one Host (rule 5)")
        }
        checkRoundTrip(head)
    }

    /// Written out again in canonical form, the head parses to itself.
    static func checkRoundTrip(_ head: HTTPRequestHead) {
        var text = "\(head.method) \(head.target) HTTP/1.\(head.minorVersion)\r\n"
        for header in head.headers { text += "\(header.name): \(header.value)\r\n" }
        text += "\r\n"
        guard text.utf8.count <= HTTPRequestParser.maxHeadLength else { return }
        var parser = HTTPRequestParser()
        let again = parser.consume(Array(text.utf8))
        invariant(again == .complete(head), "a head written out again parses to the same head", "\(again)")
    }

    /// 505 only for `METHOD SP /target SP HTTP/d.d` with another version,
    /// decided at the request line's end (rule 3).
    static func checkVersionRefusal(_ octets: UnsafeRawBufferPointer) {
        invariant(octets.last == lineFeed && octets.dropLast().firstIndex(of: lineFeed) == nil,
                  "505 is decided at the end of the request line (rule 3)")
        var line = Array(octets.dropLast())
        if line.last == carriageReturn { line.removeLast() }
        let parts = line.split(separator: 0x20, omittingEmptySubsequences: false)
        let digit: ClosedRange<UInt8> = 0x30...0x39
        invariant(parts.count == 3 && !parts[0].isEmpty && parts[0].allSatisfy(isToken)
                  && parts[1].first == UInt8(ascii: "/") && parts[1].allSatisfy { $0 > 0x20 && $0 < 0x7F },
                  "505 only for a request line well formed but for its version (rule 3)")
        let version = Array(parts[2])
        invariant(version.count == 8 && version.starts(with: "HTTP/".utf8) && digit.contains(version[5])
                  && version[6] == UInt8(ascii: ".") && digit.contains(version[7]) && version != Array("HTTP/1.0".utf8)
                  && version != Array("HTTP/1.1".utf8), "505 only for a version HTTP/d.d other than 1.0 and 1.1 (rule 3)")
    }

    /// RFC 9110 `tchar`, written out again (not taken from the parser).
    static func isToken(_ octet: UInt8) -> Bool {
        switch octet {
        case 0x30...0x39, 0x41...0x5A, 0x61...0x7A: true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"): true
        default: false
        }
    }

    static func lowercase(_ octet: UInt8) -> UInt8 {
        (0x41...0x5A).contains(octet) ? octet | 0x20 : octet
    }
}
