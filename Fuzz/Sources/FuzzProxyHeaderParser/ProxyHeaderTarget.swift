import FuzzSupport
import SixteenProtocol

// `ProxyHeaderParser` fed one payload whole and split where the fuzzer says.
// Invariants, checked after every chunk:
//
//  - agreement with the reference model (ProxyReference.swift, rules 2-4):
//    the same header, addresses and ports, or a refusal where it refuses;
//  - any split gives the result of the whole input, decided in the chunk
//    that holds the deciding octet ("a refusal comes at the first octet
//    that breaks a rule"), and rejections carry the same reason;
//  - `consumed` is the header's length counted from the last chunk's start
//    (rule 5): a v1 line up to its CRLF, or 16 + the v2 length;
//  - once decided, the result never changes, whatever follows (rule 1);
//  - bounded memory: a split header holds at most about `maxV2Length`
//    octets; a header that arrives whole allocates nothing.
enum ProxyHeaderTarget {
    /// Live bytes a parser may hold between chunks: its gathered octets
    /// (`maxV2Length`) with an array's spare capacity, and a header.
    static let memoryBound = 2 * ProxyHeaderParser.maxV2Length + 128

    static func run(_ input: inout FuzzInput) {
        let split = SplitInput(&input)
        let payload = split.payload
        let reference = ProxyReference.parse(Array(payload))
        let whole = parseWhole(payload)
        trace("payload \(payload.count) octets; whole: \(whole); reference: \(reference)")
        checkAgainstReference(whole, reference, payload)
        let decidingPrefix = shortestDecidingPrefix(count: payload.count) { count in
            var parser = ProxyHeaderParser()
            return parser.consume(prefix(count, of: payload)) != .incomplete
        }
        if let decidingPrefix {
            invariant(decidingPrefix > 0, "an empty input decides nothing")
            let referenceAtPrefix = ProxyReference.parse(Array(payload.prefix(decidingPrefix - 1)))
            invariant(referenceAtPrefix == .incomplete, "decided no later than the reference: a refusal comes at the first octet that breaks a rule",
                      "the parser decides at \(decidingPrefix) octets, the reference already at fewer")
            invariant(ProxyReference.parse(Array(payload.prefix(decidingPrefix))) != .incomplete,
                      "decided no earlier than the reference: never before the octet that settles it",
                      "the parser decides at \(decidingPrefix) octets, the reference later")
        }
        checkSplit(split, whole: whole, decidingPrefix: decidingPrefix)
    }

    /// A fresh parser fed the whole payload at once; a complete header must
    /// cost no allocation. (Measured on a second parse: the first use of a
    /// path may initialize the parser's constants, once per process.)
    static func parseWhole(_ payload: UnsafeRawBufferPointer) -> ProxyParseResult {
        var warmUp = ProxyHeaderParser()
        _ = warmUp.consume(payload)
        var parser = ProxyHeaderParser()
        let before = AllocationMeter.totalBytes
        let result = parser.consume(payload)
        let allocated = AllocationMeter.totalBytes - before
        if case .complete = result {
            invariant(allocated == 0, "a header that arrives whole is parsed where it lies, with no allocation",
                      "\(allocated) bytes allocated")
        }
        invariant(parser.result == result, "result is what consume returned")
        return result
    }

    static func checkAgainstReference(_ whole: ProxyParseResult, _ reference: ReferenceOutcome, _ payload: UnsafeRawBufferPointer) {
        switch (whole, reference) {
        case (.incomplete, .incomplete), (.rejected, .rejected):
            break
        case (.complete(let header, let consumed), .complete(let expected, let expectedConsumed)):
            invariant(header == expected, "the header's addresses and ports are the ones sent (rules 2, 3)",
                      "parsed \(header), reference \(expected)")
            invariant(consumed == expectedConsumed, "consumed is exactly the header's octets (rule 5)",
                      "consumed \(consumed), header \(expectedConsumed)")
            invariant(consumed > 0 && consumed <= payload.count, "consumed lies within the input")
            if payload[0] == UInt8(ascii: "P") {
                invariant(consumed <= ProxyHeaderParser.maxV1Length && payload[consumed - 2] == 0x0D && payload[consumed - 1] == 0x0A,
                          "a v1 header ends at its CRLF, within 107 octets (rule 2)")
            }
        default:
            invariantBroken("the parser agrees with the reference model (rules 2-4)", "parser \(whole), reference \(reference)")
        }
    }

    /// Feeds the chunks, checking after each that the parser is undecided
    /// exactly until the chunk holding the deciding octet, then agrees with
    /// the whole parse, and then never changes.
    static func checkSplit(_ split: SplitInput, whole: ProxyParseResult, decidingPrefix: Int?) {
        var parser = ProxyHeaderParser()
        var decidedBy: ProxyParseResult?
        let liveBefore = AllocationMeter.liveBytes
        for (offset, chunk) in split.chunks {
            let result = parser.consume(chunk)
            let end = offset + chunk.count
            invariant(parser.result == result, "result is what consume returned")
            invariant(AllocationMeter.liveBytes - liveBefore <= memoryBound, "bounded memory: a split header is gathered up to maxV2Length octets",
                      "\(AllocationMeter.liveBytes - liveBefore) bytes held after \(end) octets")
            if let decidedBy {
                invariant(result == decidedBy, "once decided, the result never changes (rule 1)", "\(decidedBy) became \(result)")
                continue
            }
            guard let decidingPrefix, decidingPrefix <= end else {
                invariant(result == .incomplete, "undecided until the deciding octet arrives",
                          "decided after \(end) octets: \(result)")
                continue
            }
            trace("chunk \(offset)..<\(end) decides: \(result)")
            switch (result, whole) {
            case (.complete(let header, let consumed), .complete(let wholeHeader, let wholeConsumed)):
                invariant(header == wholeHeader, "any split gives the header of the whole input")
                invariant(consumed == wholeConsumed - offset, "consumed counts from the start of the last chunk (rule 5)",
                          "consumed \(consumed) of the chunk at \(offset); whole \(wholeConsumed)")
                invariant(consumed >= 1 && consumed <= chunk.count, "consumed lies within the last chunk")
            case (.rejected(let reason), .rejected(let wholeReason)):
                invariant(reason == wholeReason, "rejections are stable: any split gives the same reason",
                          "\"\(reason)\" split, \"\(wholeReason)\" whole")
            default:
                invariantBroken("any split gives the result of the whole input", "split \(result), whole \(whole)")
            }
            decidedBy = result
        }
        if decidingPrefix == nil {
            invariant(parser.result == .incomplete, "an undecided input leaves the parser undecided")
        }
    }

    static func prefix(_ count: Int, of payload: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(rebasing: payload[..<count])
    }
}
