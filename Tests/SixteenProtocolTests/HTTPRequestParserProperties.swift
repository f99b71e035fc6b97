import SixteenProtocol
import TestSupport
import XCTest

/// The admin listener's request-head parser (rules in
/// `HTTPRequestParser.swift`), as properties: the parser's promise "feed it
/// octets in any split; the answer is the same", over inputs made of pieces
/// of requests (whole lines, fragments, control octets, obs-text, 505
/// versions, fillers of 4000 and 8190 octets that take heads past the 8 KiB
/// limit), and a round trip: a head written by the rules is read back as
/// written.
final class HTTPRequestParserProperties: XCTestCase {
    private let cases = 1_000

    static let vocabulary: [[UInt8]] = [
        "GET / HTTP/1.1\r\n", "Host: a\r\n", "\r\n", "X-A: b\r\n", "GET /metrics HTTP/1.0\n", "\n",
        "HEAD /ready?x HTTP/1.1\r\n", " ", "GET", "/", "HTTP/1.1", "HTTP/2.0", ":", "\t", "\r", "\0", "\u{7f}",
        "Host: b\r\n", "a", "\u{e9}", "GET / HTTP/2.0\r\n", "X-B: ",
    ].map { Array($0.utf8) } + [[0x80], [UInt8](repeating: UInt8(ascii: "a"), count: 4_000), [UInt8](repeating: 0x62, count: 8_190)]

    static var inputs: Arbitrary<([Int], [Int])> { zip(tokens(vocabulary, count: 0...24), readSizes) }

    /// The tokens of an input (fillers by their length), and its reads.
    static func describe(_ input: ([Int], [Int])) -> String {
        let tokens = input.0.map { vocabulary[$0].count > 100 ? "\(vocabulary[$0].count) x \(literal([vocabulary[$0][0]]))" : literal(vocabulary[$0]) }
        return "[\(tokens.joined(separator: ", "))] in reads of \(input.1)"
    }

    /// Rules 2, 6 and "any split": however the input is cut, the parser
    /// stays `.incomplete` until the read holding the octet at which octet
    /// by octet feeding decides, returns that same result there, and keeps
    /// it for every later read (and in `result`), whatever follows. A head
    /// is decided no later than its 8193rd octet, with 431 exactly there.
    func testAnySplitGivesTheSameResultAtTheSameOctet() {
        checkProperty(count: cases, Self.inputs, describe: Self.describe) { input in
            let octets = joined(Self.vocabulary, input.0)
            var single = HTTPRequestParser()
            let decided = decidingOctet(octets, incomplete: HTTPParseResult.incomplete) { read in read.withUnsafeBytes { single.consume($0) } }
            let reads = split(octets, input.1)
            var parser = HTTPRequestParser()
            let feeding = SplitFeeding(reads, incomplete: HTTPParseResult.incomplete) { read in read.withUnsafeBytes { parser.consume($0) } }
            try requireEqual(parser.result, decided.result, "the result")
            try requireEqual(feeding.decidingRead, decided.index.flatMap { readHolding($0, reads) }, "the deciding read")
            for (index, result) in feeding.results.enumerated() {
                let expected = index < feeding.decidingRead ?? reads.count ? HTTPParseResult.incomplete : decided.result
                try requireEqual(result, expected, "read \(index) of \(reads.count)")
            }
            if let index = decided.index {
                try requireEqual(parser.consume(Array("GET / HTTP/1.1\r\nHost: x\r\n\r\n".utf8)), decided.result, "a read after the decision")
                if decided.result == .rejected(.headersTooLarge) {
                    try requireEqual(index, HTTPRequestParser.maxHeadLength, "the octet 431 comes at")
                } else {
                    try require(index < HTTPRequestParser.maxHeadLength, "\(decided.result) at octet \(index), past the limit")
                }
            } else {
                try require(octets.count <= HTTPRequestParser.maxHeadLength, "undecided after \(octets.count) octets")
            }
        }
    }

    /// The inputs reach every result: complete heads, 400, 505, 431, and
    /// heads still incomplete (else the split law would hold vacuously).
    func testInputsReachEveryResult() {
        var seen: Set<String> = []
        _ = findCounterexample(key: "http coverage", count: cases, Self.inputs) { input in
            var parser = HTTPRequestParser()
            switch parser.consume(joined(Self.vocabulary, input.0)) {
            case .incomplete: seen.insert("incomplete")
            case .complete: seen.insert("complete")
            case .rejected(let status): seen.insert("\(status.rawValue)")
            }
        }
        XCTAssertEqual(seen, ["incomplete", "complete", "400", "505", "431"])
    }

    /// Rules 1, 3-5: a head written by the rules (any token method, an
    /// origin-form target, HTTP/1.0 or 1.1, header names of any case, values
    /// with spaces, tabs and obs-text around and inside, CRLF or bare LF) is
    /// read back as written, names lowercased and values trimmed, in any
    /// split; HTTP/1.1 without exactly one Host is 400.
    func testWrittenHeadsAreReadBackInAnySplit() {
        let methods = ["GET", "HEAD", "POST", "X-1", "!#$%&'*+-.^_`|~"]
        let targets = ["/", "/metrics", "/healthz?x=1", "/a/b?c=d&e=%20", "/~"]
        let names = ["Host", "X-A", "accept", "User-Agent", "x_y", "HOST"]
        let values = ["a", "", " spaced  value ", "\t tab\t", "\u{e9}t\u{e9}", "v:1", "  "]
        let heads = zip(
            zip(
                Arbitrary<Int>.integer(in: 0...(methods.count - 1)), Arbitrary<Int>.integer(in: 0...(targets.count - 1)),
                Arbitrary<Int>.integer(in: 0...1, shrinkingToward: 1), Arbitrary<Bool>.bool()),
            zip(Arbitrary<Int>.integer(in: 0...(names.count - 1)), Arbitrary<Int>.integer(in: 0...(values.count - 1))).array(of: 0...5),
            readSizes)
        checkProperty(count: cases, heads) { input in
            let ((method, target, minor, bareLF), fields, sizes) = input
            let end = bareLF ? "\n" : "\r\n"
            var text = "\(methods[method]) \(targets[target]) HTTP/1.\(minor)\(end)"
            for (name, value) in fields { text += "\(names[name]):\(values[value])\(end)" }
            text += end
            let octets = Array(text.utf8)
            let hosts = fields.filter { names[$0.0].lowercased() == "host" }.count
            var parser = HTTPRequestParser()
            let reads = split(octets, sizes)
            let feeding = SplitFeeding(reads, incomplete: HTTPParseResult.incomplete) { read in read.withUnsafeBytes { parser.consume($0) } }
            let what = "\(literal(octets)) in reads of \(sizes)"
            if minor == 1 && hosts != 1 {
                try requireEqual(parser.result, .rejected(.badRequest), what)
            } else {
                guard case .complete(let head) = parser.result else { throw PropertyFailure("\(what): \(parser.result)") }
                try requireEqual(head.method, methods[method], "the method of \(what)")
                try requireEqual(head.target, targets[target], "the target of \(what)")
                try requireEqual(head.minorVersion, minor, "the version of \(what)")
                try requireEqual(head.headers.map(\.name), fields.map { names[$0.0].lowercased() }, "the names in \(what)")
                try requireEqual(head.headers.map(\.value), fields.map { values[$0.1].trimmingSpacesAndTabs }, "the values in \(what)")
            }
            try requireEqual(feeding.decidingRead, reads.count - 1, "the deciding read")
        }
    }
}

extension String {
    var trimmingSpacesAndTabs: String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}
