import FuzzSupport
import SixteenProtocol

// The admin listener's `HTTPRequestParser`, fed one payload whole and split
// where the fuzzer says. Invariants, checked after every chunk:
//
//  - any split gives the result of the whole input, decided in the chunk
//    that holds the deciding octet, and never changes after (rule 6);
//    rejections are stable: the same status for every split;
//  - the head limit (rule 2): nothing is undecided past `maxHeadLength`
//    octets, and 431 comes exactly at the octet after it;
//  - what is accepted follows the rules (HeadRules.swift): the head ends
//    at an empty line, has no control octets but in line ends and tabs in
//    values, a token method, an origin-form target, HTTP/1.0 or 1.1, token
//    names in lowercase, trimmed values, one Host for HTTP/1.1; and it
//    survives a round trip (written out again, it parses to the same head);
//  - 505 only for a request line that is well formed but for its version;
//  - bounded memory: what the parser holds grows at most linearly with the
//    octets of the head read so far, not at all once it is decided, and
//    the bytes it allocates over a whole parse are linear in the head (a
//    parser that copied its headers at every line would be quadratic).
enum HTTPRequestTarget {
    /// Live bytes a parser may hold per head octet read, and in all besides.
    static let liveBytesPerOctet = 64
    static let liveBytesBase = 8 << 10
    /// Bytes a whole parse may allocate per head octet, and in all besides.
    static let allocatedBytesPerOctet = 256
    static let allocatedBytesBase = 64 << 10

    static func run(_ input: inout FuzzInput) {
        let split = SplitInput(&input)
        let payload = split.payload
        let whole = parseWhole(payload)
        let decidingPrefix = decidingOctetCount(payload)
        trace("payload \(payload.count) octets, decided at \(decidingPrefix.map(String.init) ?? "none"): \(whole)")
        let limit = HTTPRequestParser.maxHeadLength
        if let decidingPrefix {
            invariant(decidingPrefix <= limit + 1, "nothing is buffered past the head limit: decided by its next octet (rule 2)")
            invariant((whole == .rejected(.headersTooLarge)) == (decidingPrefix == limit + 1),
                      "431 exactly when the head limit is passed (rule 2)", "\(whole) at \(decidingPrefix) octets")
        } else {
            invariant(payload.count <= limit, "an input past the head limit is decided (rule 2)")
        }
        switch whole {
        case .incomplete:
            invariant(decidingPrefix == nil, "an undecided input has no deciding octet")
        case .complete(let head):
            HeadRules.check(head, octets: UnsafeRawBufferPointer(rebasing: payload[..<decidingPrefix!]))
        case .rejected(let status):
            invariant([.badRequest, .headersTooLarge, .versionNotSupported].contains(status),
                      "a parser refuses with 400, 431 or 505", "\(status)")
            if status == .versionNotSupported {
                HeadRules.checkVersionRefusal(UnsafeRawBufferPointer(rebasing: payload[..<decidingPrefix!]))
            }
        }
        checkSplit(split, whole: whole, decidingPrefix: decidingPrefix)
    }

    /// How many octets a parser fed one octet at a time takes to decide, or
    /// nil if the whole payload leaves it undecided: the deciding octet that
    /// the whole parse and the fuzzer's split are checked against. (One pass:
    /// bisecting over fresh parsers of prefixes took thirteen parses of an
    /// 8 KiB head, and most of the target's time.)
    static func decidingOctetCount(_ payload: UnsafeRawBufferPointer) -> Int? {
        var parser = HTTPRequestParser()
        for index in payload.indices {
            let result = parser.consume(UnsafeRawBufferPointer(rebasing: payload[index..<(index + 1)]))
            if result != .incomplete { return index + 1 }
        }
        return nil
    }

    /// Parses a head with a header once per process, before anything is
    /// measured, so that what the parser initializes once per process is
    /// not counted against the first input.
    static let warmedUp: Bool = {
        var parser = HTTPRequestParser()
        let head = Array("GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n".utf8)
        return head.withUnsafeBytes { parser.consume($0) } != .incomplete
    }()

    /// A fresh parser fed the whole payload at once, allocating at most
    /// linearly in the head's octets.
    static func parseWhole(_ payload: UnsafeRawBufferPointer) -> HTTPParseResult {
        invariant(warmedUp, "the warm-up head parses")
        var parser = HTTPRequestParser()
        let before = AllocationMeter.totalBytes
        let result = parser.consume(payload)
        let allocated = AllocationMeter.totalBytes - before
        let headOctets = min(payload.count, HTTPRequestParser.maxHeadLength + 1)
        trace("whole parse: \(allocated) bytes allocated for \(headOctets) head octets")
        invariant(allocated <= allocatedBytesPerOctet * headOctets + allocatedBytesBase,
                  "work is linear in the head: a parse allocates at most allocatedBytesPerOctet bytes an octet",
                  "\(allocated) bytes allocated for \(headOctets) octets")
        invariant(parser.result == result, "result is what consume returned")
        return result
    }

    /// Feeds the chunks, checking after each that the parser is undecided
    /// exactly until the chunk holding the deciding octet, then agrees with
    /// the whole parse and never changes; and what it holds meanwhile.
    static func checkSplit(_ split: SplitInput, whole: HTTPParseResult, decidingPrefix: Int?) {
        let liveBefore = AllocationMeter.liveBytes
        var parser = HTTPRequestParser()
        var liveAtDecision: Int?
        var last = HTTPParseResult.incomplete
        for (offset, chunk) in split.chunks {
            let result = parser.consume(chunk)
            last = result
            let end = offset + chunk.count
            let live = AllocationMeter.liveBytes - liveBefore
            trace("chunk \(offset)..<\(end): \(live) bytes held")
            if let liveAtDecision {
                // Chunks after the decision: the same kind of result, the
                // same header count; the whole of it is compared after the
                // last chunk (comparing every header at every chunk was a
                // third of the target's time).
                invariant(sameShape(result, whole) && sameShape(parser.result, result),
                          "once decided, the result never changes (rule 6)", "\(whole) became \(result)")
                invariant(live <= liveAtDecision, "octets after the head cost no memory (rule 6)",
                          "\(live) bytes held, \(liveAtDecision) at the decision")
                continue
            }
            invariant(parser.result == result, "result is what consume returned")
            let headOctets = min(end, HTTPRequestParser.maxHeadLength + 1)
            invariant(live <= liveBytesPerOctet * headOctets + liveBytesBase,
                      "bounded memory: a parser holds at most liveBytesPerOctet bytes an octet of head read",
                      "\(live) bytes held after \(end) octets")
            guard let decidingPrefix, decidingPrefix <= end else {
                invariant(result == .incomplete, "undecided until the deciding octet arrives", "decided after \(end) octets: \(result)")
                continue
            }
            trace("chunk \(offset)..<\(end) decides: \(result)")
            invariant(result == whole, "any split gives the result of the whole input; rejections are stable",
                      "split \(result), whole \(whole)")
            liveAtDecision = live
        }
        invariant(last == whole && parser.result == whole, "once decided, the result never changes (rule 6)",
                  "\(whole) became \(last)")
    }

    /// The same case, and for a complete head the same number of headers.
    static func sameShape(_ a: HTTPParseResult, _ b: HTTPParseResult) -> Bool {
        switch (a, b) {
        case (.incomplete, .incomplete): true
        case (.complete(let x), .complete(let y)): x.headers.count == y.headers.count
        case (.rejected(let x), .rejected(let y)): x == y
        default: false
        }
    }
}
