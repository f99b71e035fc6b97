import SixteenProtocol
import XCTest

/// `uppercaseASCII` works eight octets at a time; these check the word path
/// against the one-octet rule at every length and alignment.
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
        for length in 0...64 {
            for offset in 0..<8 {
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

    func testEveryOctetValueInEveryLaneOfAWord() {
        for lane in 0..<8 {
            for value in 0...255 {
                var word = [UInt8](repeating: 0x61, count: 8)
                word[lane] = UInt8(value)
                word.withUnsafeMutableBytes { uppercaseASCII($0) }
                for index in 0..<8 {
                    XCTAssertEqual(word[index], index == lane ? reference(UInt8(value)) : 0x41)
                }
            }
        }
    }
}
