import PropertyBased
import TestSupport
import XCTest

/// The property driver itself (`checkProperty` in TestSupport): a property
/// test that cannot fail proves nothing, so these check that false laws are
/// caught, that shrinking ends at a minimal counterexample with the
/// library's sequences, and that a failing case's seed regenerates it.
final class PropertyDriverTests: XCTestCase {

    /// "No array of small numbers sums to 250 or more" is false; shrinking
    /// must keep it false while cutting the array, and end where no single
    /// element can drop or shrink: the sum is exactly 250.
    func testAFalseLawIsCaughtAndShrunkToTheEdge() throws {
        let domain = Arbitrary<Int>.integer(in: 0...100).array(of: 1...10)
        let found = try XCTUnwrap(findCounterexample(key: "sum", count: 200, domain) { numbers in
            try require(numbers.reduce(0, +) < 250, "sum \(numbers.reduce(0, +))")
        })
        XCTAssertEqual(found.value.reduce(0, +), 250, "\(found.value)")
        XCTAssertGreaterThanOrEqual(found.original.reduce(0, +), 250)
        XCTAssertLessThanOrEqual(found.value.count, found.original.count)
    }

    /// Octet arrays containing a `z` shrink to exactly `[z]`, and a pair
    /// shrinks each side: the other side goes to its simplest value.
    func testShrinkingReachesTheSmallestCase() throws {
        let octets = Arbitrary<UInt8>.integer(in: 0...255).array(of: 0...64)
        let found = try XCTUnwrap(findCounterexample(key: "z", count: 500, zip(octets, Arbitrary<Int>.integer(in: 0...1_000))) {
            try require(!$0.0.contains(UInt8(ascii: "z")), "a z")
        })
        XCTAssertEqual(found.value.0, [UInt8(ascii: "z")])
        XCTAssertEqual(found.value.1, 0)
    }

    /// The seed a failure reports (for `PROPERTY_SEED`) regenerates the
    /// failing case exactly, before shrinking.
    func testAFailingCasesSeedRegeneratesIt() throws {
        let domain = Arbitrary<UInt8>.integer(in: 0...255).array(of: 0...20)
        let found = try XCTUnwrap(findCounterexample(key: "seed", count: 100, domain) { try require($0.count < 15, "long") })
        var rng = try XCTUnwrap(Xoshiro(seed: found.seed))
        XCTAssertEqual(domain.generate(&rng), found.original)
        XCTAssertEqual(found.value.count, 15)
    }

    /// A true law holds on every case: no counterexample.
    func testATrueLawHasNoCounterexample() {
        let domain = zip(Arbitrary<Int>.integer(in: -1_000...1_000), Arbitrary<Bool>.bool())
        XCTAssertNil(findCounterexample(key: "true", count: 300, domain) { pair in
            try requireEqual(pair.0 + pair.0, 2 * pair.0, "doubling")
        })
    }

    /// The same key gives the same cases (CI is reproducible); another key
    /// gives others; `element(of:)` shrinks toward its first choice.
    func testCasesAreFixedByTheKeyAndElementsShrinkToTheFirst() throws {
        let domain = Arbitrary<String>.element(of: ["a", "b", "c", "d"]).array(of: 3...3)
        func first(_ key: String) -> [String]? {
            findCounterexample(key: key, count: 50, domain, maxShrinkRuns: 0) { _ in throw PropertyFailure("always") }?.value
        }
        XCTAssertEqual(first("k1"), first("k1"))
        let keys = (0..<8).map { "k\($0)" }
        XCTAssertGreaterThan(Set(keys.compactMap(first)).count, 1, "every key gave the same case")
        let shrunk = try XCTUnwrap(findCounterexample(key: "k1", count: 1, domain) { _ in throw PropertyFailure("always") })
        XCTAssertEqual(shrunk.value, ["a", "a", "a"])
    }
}
