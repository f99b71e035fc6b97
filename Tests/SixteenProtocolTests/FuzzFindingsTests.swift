import SixteenProtocol
import XCTest

/// Regression tests for what the fuzz targets (Fuzz/, see Fuzz/README.md)
/// found, one per finding, each named after the invariant it broke.
final class FuzzFindingsTests: XCTestCase {
    /// Fuzz/HTTPRequestParser, "work is linear in the head": every header
    /// line copied all the headers before it (the head was copied out of
    /// the parser, appended to, and stored back while the parser still held
    /// it), so a head of many short headers cost time and memory quadratic
    /// in its length: 175 MB allocated for an 8 KiB head of 2 700 `a:`
    /// lines. Ten times the headers must now take about ten times as long,
    /// not a hundred (the best of five runs each, so a busy machine does
    /// not make it flaky).
    func testManyShortHeadersParseInLinearTime() {
        func head(_ headers: Int) -> [UInt8] {
            Array(("GET / HTTP/1.1\r\nHost: a\r\n" + String(repeating: "a:\n", count: headers) + "\r\n").utf8)
        }
        func bestTime(_ octets: [UInt8], headers: Int) -> Duration {
            (0..<5).map { _ in
                ContinuousClock().measure {
                    var parser = HTTPRequestParser()
                    guard case .complete(let parsed) = parser.consume(octets) else {
                        return XCTFail("\(headers) headers: \(parser.result)")
                    }
                    XCTAssertEqual(parsed.headers.count, headers + 1)
                }
            }.min()!
        }
        let few = bestTime(head(256), headers: 256)
        let many = bestTime(head(2_560), headers: 2_560)
        XCTAssertLessThan(many, few * 30, "2 560 headers took \(many), 256 took \(few)")
    }
}
