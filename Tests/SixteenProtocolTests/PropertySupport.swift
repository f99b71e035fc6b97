import SixteenProtocol
import TestSupport

// Shapes the protocol properties share: how an input is cut into reads, and
// inputs made of tokens (so that random inputs look like the protocol, and
// shrink to a few whole tokens rather than to arbitrary octets).

/// Read sizes: each read takes the next size, the last read the rest. No
/// sizes is one read of everything: shrinking heads there.
var readSizes: Arbitrary<[Int]> { Arbitrary<Int>.integer(in: 1...24).array(of: 0...12) }

/// `octets` cut into consecutive reads of `sizes` (each at least 1), the
/// last read taking what is left; no reads for no octets.
func split(_ octets: [UInt8], _ sizes: [Int]) -> [ArraySlice<UInt8>] {
    var reads: [ArraySlice<UInt8>] = []
    var start = 0
    for size in sizes where start < octets.count {
        let end = min(octets.count, start + max(size, 1))
        reads.append(octets[start..<end])
        start = end
    }
    if start < octets.count { reads.append(octets[start...]) }
    return reads
}

/// Inputs made of `vocabulary`'s tokens (the simplest first), at most `count` of them.
func tokens(_ vocabulary: [[UInt8]], count: ClosedRange<Int>) -> Arbitrary<[Int]> {
    Arbitrary<Int>.integer(in: 0...(vocabulary.count - 1)).array(of: count)
}

/// The octets of the tokens at `indexes`.
func joined(_ vocabulary: [[UInt8]], _ indexes: [Int]) -> [UInt8] {
    indexes.flatMap { vocabulary[$0] }
}

/// Where a parser with an `incomplete` state decides, fed one read at a
/// time: the result, the read that gave it, and what each read returned.
struct SplitFeeding<Result: Equatable> {
    var results: [Result] = []
    /// The index of the first read whose result is not `incomplete`.
    var decidingRead: Int?

    /// Feeds `reads` through `consume`; `incomplete` is the undecided result.
    init(_ reads: [ArraySlice<UInt8>], incomplete: Result, consume: (ArraySlice<UInt8>) -> Result) {
        for read in reads {
            let result = consume(read)
            if decidingRead == nil, result != incomplete { decidingRead = results.count }
            results.append(result)
        }
    }
}

/// The index of the octet at which feeding one octet at a time decides
/// (`nil` if it never does), and the result then.
func decidingOctet<Result: Equatable>(
    _ octets: [UInt8], incomplete: Result, consume: (ArraySlice<UInt8>) -> Result
) -> (index: Int?, result: Result) {
    for index in octets.indices {
        let result = consume(octets[index...index])
        if result != incomplete { return (index, result) }
    }
    return (nil, incomplete)
}

/// Which read holds octet `index` when `octets` are cut by `sizes`.
func readHolding(_ index: Int, _ reads: [ArraySlice<UInt8>]) -> Int? {
    reads.firstIndex { $0.indices.contains(index) }
}

/// A case's octets as a Python literal, as the logs show them.
func literal(_ octets: [UInt8]) -> String {
    octets.count > 300 ? "\(pythonBytesLiteral(octets.prefix(300)))… (\(octets.count) octets)" : pythonBytesLiteral(octets)
}
