import SixteenProtocol
import TestSupport
import XCTest

/// The PROXY header parser (rules in `ProxyHeaderParser.swift`), as
/// properties over headers a proxy writes (v1 TCP4, TCP6 with and without
/// "::", UNKNOWN; v2 over IPv4 and IPv6 with TLVs, LOCAL, UNSPEC), followed
/// by protocol octets: read back as written with exactly the header's octets
/// taken, in any split; and, with one octet changed or the input cut short,
/// the same result decided at the same octet in any split.
final class ProxyHeaderParserProperties: XCTestCase {
    private let cases = 1_000

    /// Written headers and their protocol octets, with the octet at
    /// `position` (if any) XORed with `flip`, cut short by `cut` - 100
    /// octets (if positive), in reads of the sizes given.
    static var changedHeaders: Arbitrary<ChangedHeader> {
        let change = zip(Arbitrary<Int>.integer(in: 0...120), Arbitrary<UInt8>.integer(in: 0...255), Arbitrary<Int>.integer(in: 0...150))
        return zip(writtenHeaders, change, readSizes)
    }

    static func changed(_ input: ChangedHeader) -> [UInt8] {
        var octets = proxyCase(input.0).encoded.0 + input.0.1.3
        let (position, flip, cut) = input.1
        if position < octets.count { octets[position] ^= flip }
        // Two cases in three keep every octet; the third loses up to 50.
        octets.removeLast(min(max(0, cut - 100), octets.count))
        return octets
    }

    /// Rules 2, 3, 5: a header a proxy writes parses to what it says, in any
    /// split, taking exactly its own octets: the read that completes it says
    /// how many of that read's octets were the header's, and the protocol
    /// octets after it are left untouched.
    func testWrittenHeadersAreReadBackTakingExactlyTheirOctets() {
        checkProperty(count: cases, zip(writtenHeaders, readSizes), describe: { "\(proxyCase($0.0)) in reads of \($0.1)" }) { input in
            let (header, expected) = proxyCase(input.0).encoded
            let payload = input.0.1.3
            let octets = header + payload
            let reads = split(octets, input.1)
            var parser = ProxyHeaderParser()
            let feeding = SplitFeeding(reads, incomplete: ProxyParseResult.incomplete) { read in read.withUnsafeBytes { parser.consume($0) } }
            guard let deciding = feeding.decidingRead else { throw PropertyFailure("\(literal(octets)): never complete") }
            try requireEqual(absolute(feeding.results[deciding], from: reads[deciding].startIndex), .complete(expected, end: header.count), literal(octets))
            try requireEqual(deciding, readHolding(header.count - 1, reads), "the read that completes \(literal(header))")
        }
    }

    /// "Feed it octets in any split; the result is the same, and a refusal
    /// comes at the first octet that breaks a rule": with an octet of a
    /// written header changed and the input cut anywhere, the result (and
    /// where the header ends) is the one the whole input gives, decided in
    /// the read holding the octet at which octet-by-octet feeding decides,
    /// `.incomplete` before it and unchanged after it.
    func testAnySplitGivesTheSameResultAtTheSameOctet() {
        checkProperty(count: cases, Self.changedHeaders, describe: { "\(proxyCase($0.0)) changed \($0.1) in reads of \($0.2)" }) { input in
            let octets = Self.changed(input)

            var whole = ProxyHeaderParser()
            let wholeResult = absolute(octets.withUnsafeBytes { whole.consume($0) }, from: 0)
            var single = ProxyHeaderParser()
            let decided = decidingOctet(octets, incomplete: ProxyParseResult.incomplete) { read in
                read.withUnsafeBytes { single.consume($0) }
            }
            let reads = split(octets, input.2)
            var parser = ProxyHeaderParser()
            let feeding = SplitFeeding(reads, incomplete: ProxyParseResult.incomplete) { read in read.withUnsafeBytes { parser.consume($0) } }
            let what = literal(octets)
            try requireEqual(absolute(decided.result, from: decided.index ?? 0), wholeResult, "octet by octet vs whole, \(what)")
            try requireEqual(feeding.decidingRead, decided.index.flatMap { readHolding($0, reads) }, "the deciding read of \(what)")
            for (index, result) in feeding.results.enumerated() {
                guard let deciding = feeding.decidingRead, index >= deciding else {
                    try requireEqual(result, .incomplete, "read \(index) of \(what)")
                    continue
                }
                try requireEqual(absolute(result, from: reads[deciding].startIndex), wholeResult, "read \(index) of \(what)")
            }
            try requireEqual(absolute(parser.result, from: feeding.decidingRead.map { reads[$0].startIndex } ?? 0), wholeResult, "the final result of \(what)")
        }
    }

    /// The changed headers reach every result: complete, rejected at
    /// various octets, incomplete; and every kind of header.
    func testChangedHeadersReachEveryResult() {
        var seen: Set<String> = []
        _ = findCounterexample(key: "proxy coverage", count: cases, Self.changedHeaders) { input in
            var parser = ProxyHeaderParser()
            let result = Self.changed(input).withUnsafeBytes { parser.consume($0) }
            switch result {
            case .incomplete: seen.insert("incomplete")
            case .complete: seen.insert("complete")
            case .rejected: seen.insert("rejected")
            }
            seen.insert("kind \(input.0.0.0)")
        }
        XCTAssertEqual(seen, Set(["incomplete", "complete", "rejected"] + (0...6).map { "kind \($0)" }))
    }
}

/// A written header, a change to it (position, flip, cut), and read sizes.
typealias ChangedHeader = (ProxyCase, (Int, UInt8, Int), [Int])

/// A result with `consumed` counted from the input's first octet: where the
/// deciding read starts, plus what it took of it.
enum AbsoluteProxyResult: Equatable {
    case incomplete
    case complete(ProxyHeader, end: Int)
    case rejected(String)
}

func absolute(_ result: ProxyParseResult, from start: Int) -> AbsoluteProxyResult {
    switch result {
    case .incomplete: .incomplete
    case .complete(let header, let consumed): .complete(header, end: start + consumed)
    case .rejected(let reason): .rejected(reason)
    }
}

// MARK: - Written headers

/// (kind, address octets, zero groups, ports), (compress, uppercase, TLVs
/// or UNKNOWN's text, protocol octets after the header).
typealias ProxyCase = ((Int, [UInt8], UInt16, UInt16), (Bool, Bool, [UInt8], [UInt8]))

/// Kinds: 0 v1 TCP4, 1 v1 TCP6, 2 v1 UNKNOWN, 3 v2 IPv4, 4 v2 IPv6, 5 v2 LOCAL, 6 v2 UNSPEC.
var writtenHeaders: Arbitrary<ProxyCase> {
    let octets = Arbitrary<UInt8>.integer(in: 0...255)
    return zip(
        zip(
            Arbitrary<Int>.integer(in: 0...6), octets.array(of: 32...32), Arbitrary<UInt16>.integer(in: 0...0xffff),
            Arbitrary<UInt16>.integer(in: 0...0xffff)),
        zip(Arbitrary<Bool>.bool(), Arbitrary<Bool>.bool(), octets.array(of: 0...12), octets.array(of: 0...12)))
}

struct ProxyCaseView: CustomStringConvertible {
    let kind: Int
    let source: [UInt8]
    let destination: [UInt8]
    let sourcePort: UInt16
    let destinationPort: UInt16
    let compress: Bool
    let uppercase: Bool
    let extra: [UInt8]

    /// The header's octets, and what it must parse to.
    var encoded: ([UInt8], ProxyHeader) {
        let v6 = kind == 1 || kind == 4
        let source = ProxyAddress(octets: v6 ? self.source : Array(self.source.prefix(4)), port: sourcePort)
        let destination = ProxyAddress(octets: v6 ? self.destination : Array(self.destination.prefix(4)), port: destinationPort)
        let proxied = ProxyHeader.proxied(source: source, destination: destination)
        switch kind {
        case 0, 1:
            let text = { (address: ProxyAddress) in v6 ? ipv6Text(address.octets, compress: compress, uppercase: uppercase) : address.octets.map(String.init).joined(separator: ".") }
            let line = "PROXY TCP\(v6 ? 6 : 4) \(text(source)) \(text(destination)) \(sourcePort) \(destinationPort)\r\n"
            return (Array(line.utf8), proxied)
        case 2:
            // Anything but CR and LF may follow UNKNOWN: here, printable ASCII.
            let rest = extra.isEmpty ? "" : " " + String(decoding: extra.map { 0x20 + $0 % 0x5f }, as: UTF8.self)
            return (Array("PROXY UNKNOWN\(rest)\r\n".utf8), .unknown)
        default:
            let command: UInt8 = kind == 5 ? 0x20 : 0x21
            let family: UInt8 = kind == 4 ? 0x21 : kind == 6 ? 0x00 : 0x11
            let ports = [UInt8(sourcePort >> 8), UInt8(sourcePort & 0xff), UInt8(destinationPort >> 8), UInt8(destinationPort & 0xff)]
            let addresses = kind == 6 ? [] : source.octets + destination.octets + ports
            let body = addresses + extra
            let header = ProxyHeaderParser.signature + [command, family, UInt8(body.count >> 8), UInt8(body.count & 0xff)] + body
            return (header, kind == 5 ? .local : kind == 6 ? .unknown : proxied)
        }
    }

    var description: String {
        let (header, _) = encoded
        return "header \(literal(header))"
    }
}

func proxyCase(_ value: ProxyCase) -> ProxyCaseView {
    let ((kind, octets, zeros, port), (compress, uppercase, extra, _)) = value
    // Zero groups (bit i: group i of the 16 over both addresses) give "::" something to stand for.
    var masked = octets
    for group in 0..<16 where zeros & (1 << group) != 0 { masked[2 * group] = 0; masked[2 * group + 1] = 0 }
    return ProxyCaseView(
        kind: kind, source: Array(masked[0..<16]), destination: Array(masked[16..<32]), sourcePort: port,
        destinationPort: port &* 31 &+ 7, compress: compress, uppercase: uppercase, extra: extra)
}

/// Textual IPv6: eight hex groups, the longest run of zero groups written as "::" when `compress`.
func ipv6Text(_ octets: [UInt8], compress: Bool, uppercase: Bool) -> String {
    let groups = (0..<8).map { UInt16(octets[2 * $0]) << 8 | UInt16(octets[2 * $0 + 1]) }
    let hex = groups.map { String($0, radix: 16, uppercase: uppercase) }
    var best = (start: 0, count: 0)
    var run = (start: 0, count: 0)
    for (index, group) in groups.enumerated() {
        run = group == 0 ? (run.count == 0 ? (index, 1) : (run.start, run.count + 1)) : (index + 1, 0)
        if run.count > best.count { best = run }
    }
    guard compress, best.count > 0 else { return hex.joined(separator: ":") }
    return hex[..<best.start].joined(separator: ":") + "::" + hex[(best.start + best.count)...].joined(separator: ":")
}
