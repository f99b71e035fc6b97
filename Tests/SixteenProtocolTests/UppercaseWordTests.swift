import SixteenProtocol
import XCTest

/// `uppercaseASCII` works sixteen octets at a time (a SIMD vector), the rest
/// one by one; these check the vector path against the one-octet rule at
/// every length and alignment, and every octet value in every lane.
final class UppercaseWordTests: XCTestCase {
    private func reference(_ octet: UInt8) -> UInt8 {
        (0x61...0x7a).contains(octet) ? octet - 0x20 : octet
    }

    func testEveryLengthAndAlignmentMatchesTheOctetRule() {
        var state: UInt64 = 0x9e37_79b9_7f4a_7c15
        func next() -> UInt8 {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return UInt8(truncatingIfNeeded: state >> 56)
        }
        for length in 0...80 {
            for offset in 0..<16 {
                var buffer = (0..<(length + 16)).map { _ in next() }
                let original = buffer
                buffer.withUnsafeMutableBytes { raw in
                    uppercaseASCII(UnsafeMutableRawBufferPointer(rebasing: raw[offset..<(offset + length)]))
                }
                for index in 0..<buffer.count {
                    let inside = index >= offset && index < offset + length
                    XCTAssertEqual(buffer[index], inside ? reference(original[index]) : original[index],
                                   "length \(length), offset \(offset), index \(index)")
                }
            }
        }
    }

    func testEveryOctetValueInEveryLaneOfAVector() {
        for lane in 0..<16 {
            for value in 0...255 {
                var word = [UInt8](repeating: 0x61, count: 16)
                word[lane] = UInt8(value)
                word.withUnsafeMutableBytes { uppercaseASCII($0) }
                for index in 0..<16 {
                    XCTAssertEqual(word[index], index == lane ? reference(UInt8(value)) : 0x41)
                }
            }
        }
    }
}
