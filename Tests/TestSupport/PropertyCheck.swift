import Foundation
import PropertyBased
import XCTest

// Property tests under XCTest, with swift-property-based's generators and
// shrinking.
//
// The library's own driver, `propertyCheck`, runs only inside a Swift
// Testing test: it asserts `Test.Case.current` and reports through Swift
// Testing's issues. This suite runs under XCTest (`swift test
// --disable-swift-testing`, scripts/test). Its generators (`Gen`,
// `Generator.run(using:)`), its seeded generator (`Xoshiro`, with base64
// seeds) and its shrinking sequences (`Shrink.shrinkArray`, `shrinkTuple`,
// `FixedWidthInteger.shrink(within:towards:)`) are public and need no test
// runner, so `checkProperty` below does what `propertyCheck` does (random
// cases from a seed, then greedy shrinking of the first failure: the first
// smaller candidate that still fails replaces it, until none does) and
// reports with `XCTFail`.
//
// A generator's own shrinker is internal to the library, so each domain here
// pairs the library's generator with the library's shrinking sequence for
// the same shape (`Arbitrary`). Properties take plain shapes (integers,
// arrays, tuples) and interpret them, so that every part of a case shrinks.
//
// Runs are reproducible: each property's seed is fixed (from its file and
// name), so CI sees the same cases every time. A failure names the seed of
// the failing case; `PROPERTY_SEED=<seed>` runs that case alone.
// `PROPERTY_SEED=random` explores fresh seeds; `PROPERTY_SCALE=N` runs N
// times as many cases.

/// A property's input domain: the library's generator for random values and
/// the library's shrinking sequence (smaller values first) for a failing one.
public struct Arbitrary<Value> {
    public let generate: (inout Xoshiro) -> Value
    public let shrink: (Value) -> AnySequence<Value>

    public init(generate: @escaping (inout Xoshiro) -> Value, shrink: @escaping (Value) -> AnySequence<Value>) {
        self.generate = generate
        self.shrink = shrink
    }
}

extension Arbitrary where Value: FixedWidthInteger & Sendable {
    /// `Gen.value(in:)`; shrinks toward `bound`, or the end of `range` nearest it.
    public static func integer(in range: ClosedRange<Value>, shrinkingToward bound: Value = 0) -> Arbitrary {
        let generator = Gen<Value>.value(in: range)
        return Arbitrary(
            generate: { generator.run(using: &$0) },
            shrink: { AnySequence($0.shrink(within: range, towards: bound)) })
    }
}

extension Arbitrary where Value == Bool {
    /// `Gen.bool(rate)`: `true` with probability `rate`; shrinks to `false`.
    public static func bool(_ rate: Float = 0.5) -> Arbitrary {
        let generator = Gen.bool(rate)
        return Arbitrary(
            generate: { generator.run(using: &$0) },
            shrink: { AnySequence(repeatElement(false, count: $0 ? 1 : 0)) })
    }
}

extension Arbitrary where Value: Equatable {
    /// One of `choices`; shrinks toward the first (list the simplest first).
    public static func element(of choices: [Value]) -> Arbitrary {
        precondition(!choices.isEmpty, "nothing to choose from")
        let index = Arbitrary<Int>.integer(in: 0...(choices.count - 1))
        return Arbitrary(
            generate: { choices[index.generate(&$0)] },
            shrink: { value in
                let at = choices.firstIndex(of: value) ?? 0
                return AnySequence(index.shrink(at).map { choices[$0] })
            })
    }
}

extension Arbitrary {
    /// Arrays of `count` elements (`Gen.int(in:)` picks the length): shrinks
    /// by `Shrink.shrinkArray`, dropping one element, then shrinking one.
    public func array(of count: ClosedRange<Int>) -> Arbitrary<[Value]> {
        let length = Gen.int(in: count)
        let element = self
        return Arbitrary<[Value]>(
            generate: { rng in
                var values: [Value] = []
                for _ in 0..<length.run(using: &rng) { values.append(element.generate(&rng)) }
                return values
            },
            shrink: { AnySequence(Shrink.shrinkArray($0, shrinker: element.shrink, lowerBound: count.lowerBound)) })
    }
}

/// Pairs, shrinking one side at a time (`Shrink.shrinkTuple`).
public func zip<A, B>(_ a: Arbitrary<A>, _ b: Arbitrary<B>) -> Arbitrary<(A, B)> {
    Arbitrary(
        generate: { rng in
            let first = a.generate(&rng)
            return (first, b.generate(&rng))
        },
        shrink: { AnySequence(Shrink.shrinkTuple($0, shrinkers: a.shrink, b.shrink)) })
}

/// Triples, shrinking one part at a time (`Shrink.shrinkTuple`).
public func zip<A, B, C>(_ a: Arbitrary<A>, _ b: Arbitrary<B>, _ c: Arbitrary<C>) -> Arbitrary<(A, B, C)> {
    Arbitrary(
        generate: { rng in
            let first = a.generate(&rng)
            let second = b.generate(&rng)
            return (first, second, c.generate(&rng))
        },
        shrink: { AnySequence(Shrink.shrinkTuple($0, shrinkers: a.shrink, b.shrink, c.shrink)) })
}

/// Quadruples, shrinking one part at a time (`Shrink.shrinkTuple`).
public func zip<A, B, C, D>(
    _ a: Arbitrary<A>, _ b: Arbitrary<B>, _ c: Arbitrary<C>, _ d: Arbitrary<D>
) -> Arbitrary<(A, B, C, D)> {
    Arbitrary(
        generate: { rng in
            let first = a.generate(&rng)
            let second = b.generate(&rng)
            let third = c.generate(&rng)
            return (first, second, third, d.generate(&rng))
        },
        shrink: { AnySequence(Shrink.shrinkTuple($0, shrinkers: a.shrink, b.shrink, c.shrink, d.shrink)) })
}

/// A broken law, thrown from a property's body.
public struct PropertyFailure: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Breaks the property with `message` unless `condition` holds.
public func require(_ condition: Bool, _ message: @autoclosure () -> String) throws {
    if !condition { throw PropertyFailure(message()) }
}

/// Breaks the property unless `actual == expected`.
public func requireEqual<T: Equatable>(_ actual: T, _ expected: T, _ what: @autoclosure () -> String) throws {
    if actual != expected { throw PropertyFailure("\(what()): got \(actual), expected \(expected)") }
}

/// A property's first failing case, shrunk.
public struct Counterexample<Value> {
    public let value: Value
    public let failure: String
    public let original: Value
    public let originalFailure: String
    /// The seed that generates `original` (`PROPERTY_SEED`).
    public let seed: String
    /// The case's number among those run, from 0.
    public let index: Int
    /// Shrinking steps taken, and property runs spent shrinking.
    public let steps: Int
    public let runs: Int
}

/// Runs `property` on `count` cases from `domain` (times `PROPERTY_SCALE`)
/// and returns the first failure, shrunk; nil if every case holds. The
/// seed is fixed by `key`, or taken from `PROPERTY_SEED`. Shrinking stops
/// after `maxShrinkRuns` runs, keeping the smallest failure found.
public func findCounterexample<Value>(
    key: String, count: Int, _ domain: Arbitrary<Value>, maxShrinkRuns: Int = 20_000,
    _ property: (Value) throws -> Void
) -> Counterexample<Value>? {
    func failure(_ value: Value) -> String? {
        do {
            try property(value)
            return nil
        } catch {
            return "\(error)"
        }
    }
    let environment = ProcessInfo.processInfo.environment
    var seeds = Xoshiro(seed: fixedSeed(key))
    var cases = count * max(1, Int(environment["PROPERTY_SCALE"] ?? "") ?? 1)
    var only: Xoshiro?
    if let text = environment["PROPERTY_SEED"] {
        if text == "random" {
            seeds = Xoshiro()
        } else {
            only = Xoshiro(seed: text)
            precondition(only != nil, "PROPERTY_SEED=\(text) is not a seed from a failure report")
            cases = 1
        }
    }
    for index in 0..<cases {
        var rng = only ?? Xoshiro(seed: (seeds.next(), seeds.next(), seeds.next(), seeds.next()))
        let seed = rng.currentSeed
        let original = domain.generate(&rng)
        guard let originalFailure = failure(original) else { continue }
        var smallest = original
        var smallestFailure = originalFailure
        var steps = 0
        var runs = 0
        shrinking: while runs < maxShrinkRuns {
            for candidate in domain.shrink(smallest) {
                runs += 1
                if let candidateFailure = failure(candidate) {
                    smallest = candidate
                    smallestFailure = candidateFailure
                    steps += 1
                    continue shrinking
                }
                if runs >= maxShrinkRuns { break shrinking }
            }
            break
        }
        return Counterexample(
            value: smallest, failure: smallestFailure, original: original, originalFailure: originalFailure,
            seed: seed, index: index, steps: steps, runs: runs)
    }
    return nil
}

/// Checks `property` on `count` random cases of `domain` and fails the test
/// with the smallest counterexample shrinking finds, the failing case's
/// seed, and how to run that case again. `describe` renders a case.
public func checkProperty<Value>(
    _ name: String = #function, count: Int, _ domain: Arbitrary<Value>,
    describe: (Value) -> String = { String(describing: $0) },
    file: StaticString = #filePath, line: UInt = #line,
    _ property: (Value) throws -> Void
) {
    let fileName = "\(file)".split(separator: "/").last.map(String.init) ?? "\(file)"
    guard let found = findCounterexample(key: "\(fileName):\(name)", count: count, domain, property) else { return }
    let test = name.split(separator: "(").first.map(String.init) ?? name
    XCTFail(
        """
        Property \(test) failed on case \(found.index): \(found.failure)
          shrunk (\(found.steps) steps, \(found.runs) runs): \(describe(found.value))
          from: \(describe(found.original))
          which failed with: \(found.originalFailure)
          run it again: PROPERTY_SEED=\(found.seed) swift test --filter \(test)
        """, file: file, line: line)
}

/// A seed for the key: FNV-1a of its octets, spread over the four words by SplitMix64.
private func fixedSeed(_ key: String) -> (UInt64, UInt64, UInt64, UInt64) {
    var hash: UInt64 = 0xcbf2_9ce4_8422_2325
    for octet in key.utf8 { hash = (hash ^ UInt64(octet)) &* 0x0000_0100_0000_01b3 }
    var mix = SplitMix64(seed: hash)
    return (mix.next(), mix.next(), mix.next(), mix.next())
}
