import SixteenProtocol
import XCTest

/// The admin listener's request-head parser, rule by rule (see the header of
/// `HTTPRequestParser.swift`), and `AdminRequest.routing` over the heads it
/// produces. Pure: every input is a hand-made octet string.
final class HTTPRequestParserTests: XCTestCase {

    /// A valid HTTP/1.1 head with a query, odd header-name case, and values
    /// with spaces and tabs around them.
    static let validHead = Array(
        "GET /metrics?x=1&y=2 HTTP/1.1\r\nHost:  example.com:9090 \t\r\nUser-Agent: probe/1.0\r\nACCEPT:*/*\r\nX-Empty: \t \r\n\r\n".utf8)

    /// The head `validHead` must parse to, field by field.
    func assertIsValidHead(_ result: HTTPParseResult, file: StaticString = #filePath, line: UInt = #line) {
        guard case .complete(let head) = result else {
            return XCTFail("expected a complete head, got \(result)", file: file, line: line)
        }
        XCTAssertEqual(head.method, "GET", file: file, line: line)
        XCTAssertEqual(head.target, "/metrics?x=1&y=2", file: file, line: line)
        XCTAssertEqual(head.path, "/metrics", file: file, line: line)
        XCTAssertEqual(head.minorVersion, 1, file: file, line: line)
        XCTAssertEqual(head.headers.map(\.name), ["host", "user-agent", "accept", "x-empty"], file: file, line: line)
        XCTAssertEqual(head.headers.map(\.value), ["example.com:9090", "probe/1.0", "*/*", ""], file: file, line: line)
    }

    // MARK: Rule 1: request line, header lines, empty line

    func testValidHeadInOneRead() {
        var parser = HTTPRequestParser()
        XCTAssertEqual(parser.result, .incomplete)
        let result = parser.consume(Self.validHead)
        assertIsValidHead(result)
        XCTAssertEqual(parser.result, result)
    }

    func testEverySplitIntoTwoReadsGivesTheSameHead() {
        let octets = Self.validHead
        guard case .complete(let expected) = parse(octets) else { return XCTFail("the valid head must parse") }
        for cut in 0...octets.count {
            var parser = HTTPRequestParser()
            let first = parser.consume(Array(octets[..<cut]))
            XCTAssertEqual(first, cut == octets.count ? .complete(expected) : .incomplete, "cut \(cut)")
            XCTAssertEqual(parser.result, first, "cut \(cut)")
            let second = parser.consume(Array(octets[cut...]))
            XCTAssertEqual(second, .complete(expected), "cut \(cut)")
            assertIsValidHead(second)
            XCTAssertEqual(parser.result, .complete(expected), "cut \(cut)")
        }
    }

    func testOneOctetAtATimeGivesTheSameHead() {
        let octets = Self.validHead
        var parser = HTTPRequestParser()
        for (index, octet) in octets.enumerated() {
            let result = parser.consume([octet])
            if index < octets.count - 1 {
                XCTAssertEqual(result, .incomplete, "octet \(index)")
                XCTAssertEqual(parser.result, .incomplete, "octet \(index)")
            } else {
                assertIsValidHead(result)
                XCTAssertEqual(parser.result, result)
            }
        }
    }

    func testEmptyReadsChangeNothing() {
        var parser = HTTPRequestParser()
        XCTAssertEqual(parser.consume([]), .incomplete)
        XCTAssertEqual(parser.consume(Array(Self.validHead.dropLast())), .incomplete)
        XCTAssertEqual(parser.consume([]), .incomplete)
        assertIsValidHead(parser.consume([0x0a]))
    }

    func testBareLineFeedsAreAccepted() {
        let result = parse("GET /healthz HTTP/1.1\nHost: a\n\n")
        XCTAssertEqual(result.head?.target, "/healthz")
        XCTAssertEqual(result.head?.headers.map(\.name), ["host"])
        XCTAssertEqual(result.head?.headers.map(\.value), ["a"])
        // Mixed endings, too: bare LF on the request line, CRLF after.
        XCTAssertEqual(parse("GET /ready HTTP/1.1\nHost: b\r\n\r\n").head?.headers.map(\.value), ["b"])
        XCTAssertEqual(parse("GET /ready HTTP/1.1\r\nHost: b\n\r\n").head?.target, "/ready")
    }

    func testHeadIsIncompleteUntilTheEmptyLine() {
        XCTAssertEqual(parse("GET / HTTP/1.1"), .incomplete)
        XCTAssertEqual(parse("GET / HTTP/1.1\r\n"), .incomplete)
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\n"), .incomplete)
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\n\r"), .incomplete)
    }

    func testHTTP10WithoutHostIsAccepted() {
        let result = parse("HEAD /ready HTTP/1.0\r\n\r\n")
        XCTAssertEqual(result.head?.method, "HEAD")
        XCTAssertEqual(result.head?.target, "/ready")
        XCTAssertEqual(result.head?.minorVersion, 0)
        XCTAssertEqual(result.head?.headers.count, 0)
        XCTAssertEqual(parse("GET / HTTP/1.0\r\nHost: a\r\n\r\n").head?.minorVersion, 0)
    }

    func testMethodMayUseEveryTokenCharacter() {
        let method = "Az09!#$%&'*+-.^_`|~"
        XCTAssertEqual(parse("\(method) / HTTP/1.1\r\nHost: a\r\n\r\n").head?.method, method)
    }

    func testValuesKeepInnerSpacesAndTabs() {
        let result = parse("GET / HTTP/1.1\r\nHost:a\r\nX-A:\t one \t two\t \r\n\r\n")
        XCTAssertEqual(result.head?.headers.map(\.value), ["a", "one \t two"])
    }

    // MARK: Rule 2: at most 8192 octets

    /// A head of exactly `length` octets: the padding header is sized to fit.
    func paddedHead(length: Int) -> [UInt8] {
        let prefix = Array("GET /metrics HTTP/1.1\r\nHost: a\r\nX-Pad: ".utf8)
        let suffix = Array("\r\n\r\n".utf8)
        let head = prefix + Array(repeating: UInt8(ascii: "p"), count: length - prefix.count - suffix.count) + suffix
        precondition(head.count == length)
        return head
    }

    func testHeadOfExactlyTheLimitIsAccepted() {
        XCTAssertEqual(HTTPRequestParser.maxHeadLength, 8192)
        let head = paddedHead(length: 8192)
        XCTAssertEqual(head.count, 8192)
        let result = parse(head)
        XCTAssertEqual(result.head?.headers.map(\.name), ["host", "x-pad"])
        // 39 octets before the padding, 4 after it.
        XCTAssertEqual(result.head?.headers.last?.value, String(repeating: "p", count: 8192 - 39 - 4))
        // Octets after a head of the limit (in the same read) are not counted.
        XCTAssertEqual(parse(head + Array(repeating: UInt8(ascii: "z"), count: 100)), result)
    }

    func testHeadOneOctetOverTheLimitIsRefusedAtThatOctet() {
        let head = paddedHead(length: 8193)
        XCTAssertEqual(parse(head), .rejected(.headersTooLarge))
        var parser = HTTPRequestParser()
        for index in 0..<8192 {
            XCTAssertEqual(parser.consume([head[index]]), .incomplete, "octet \(index)")
        }
        XCTAssertEqual(parser.consume([head[8192]]), .rejected(.headersTooLarge))
        XCTAssertEqual(parser.result, .rejected(.headersTooLarge))
    }

    func testGiantRequestLineIsRefusedWithoutALineEnd() {
        let line = Array("GET /".utf8) + Array(repeating: UInt8(ascii: "a"), count: 9000)
        var parser = HTTPRequestParser()
        XCTAssertEqual(parser.consume(Array(line[..<8192])), .incomplete)
        XCTAssertEqual(parser.consume(Array(line[8192..<8193])), .rejected(.headersTooLarge))
        // Done: the rest of the line, and a valid request, change nothing.
        XCTAssertEqual(parser.consume(Array(line[8193...]) + Array(" HTTP/1.1\r\n\r\n".utf8)), .rejected(.headersTooLarge))
        XCTAssertEqual(parser.consume(Self.validHead), .rejected(.headersTooLarge))
        XCTAssertEqual(parser.result, .rejected(.headersTooLarge))
        // In one read, too.
        XCTAssertEqual(parse(line + Array(" HTTP/1.1\r\nHost: a\r\n\r\n".utf8)), .rejected(.headersTooLarge))
    }

    // MARK: Rule 3: the request line

    func testOtherHTTPVersionsAre505() {
        for version in ["HTTP/2.0", "HTTP/1.2", "HTTP/0.9", "HTTP/3.0"] {
            // Refused as soon as the request line ends.
            XCTAssertEqual(parse("GET / \(version)\r\n"), .rejected(.versionNotSupported), version)
            XCTAssertEqual(parse("GET / \(version)\r\nHost: a\r\n\r\n"), .rejected(.versionNotSupported), version)
        }
    }

    func testMalformedVersionsAre400() {
        for version in ["HTTX/1.1", "http/1.1", "HTTP/10.1", "HTTP/1.10", "HTTP/1", "HTTP/a.b", "HTTP/1.1 ", ""] {
            XCTAssertEqual(parse("GET / \(version)\r\nHost: a\r\n\r\n"), .rejected(.badRequest), "\(version)|")
        }
        // A future version with a malformed rest of the line is a 400, not a 505.
        XCTAssertEqual(parse("GET metrics HTTP/2.0\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse("G(T / HTTP/2.0\r\n"), .rejected(.badRequest))
    }

    func testTargetMustBeOriginForm() {
        for target in ["http://x/metrics", "*", "metrics", "", "//x\u{7f}", "/a\tb", "/a\u{1}b", "/\u{e9}"] {
            XCTAssertEqual(parse("GET \(target) HTTP/1.1\r\nHost: a\r\n\r\n"), .rejected(.badRequest), target)
        }
        XCTAssertEqual(parse("GET /a b HTTP/1.1\r\nHost: a\r\n\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse([UInt8]("GET /a".utf8) + [0] + Array("b HTTP/1.1\r\nHost: a\r\n\r\n".utf8)), .rejected(.badRequest))
    }

    func testMethodMustBeAToken() {
        for method in ["G(T", "GE\"T", "G,T", "G/T", "G:T", "G\u{1}T", "GÉT", ""] {
            XCTAssertEqual(parse("\(method) / HTTP/1.1\r\nHost: a\r\n\r\n"), .rejected(.badRequest), method)
        }
        XCTAssertEqual(parse(" GET / HTTP/1.1\r\nHost: a\r\n\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse("GET  / HTTP/1.1\r\nHost: a\r\n\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse("GET\t/ HTTP/1.1\r\nHost: a\r\n\r\n"), .rejected(.badRequest))
    }

    func testEmptyOrShortRequestLinesAre400() {
        XCTAssertEqual(parse("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse("GET /\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse("GET / HTTP/1.1\rHost: a\r\n\r\n"), .rejected(.badRequest))
    }

    // MARK: Rule 4: header lines

    func testSpaceOrTabBeforeTheColonIs400() {
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost : a\r\n\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\nX-A\t: b\r\n\r\n"), .rejected(.badRequest))
    }

    func testObsoleteLineFoldingIs400() {
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse("GET / HTTP/1.1\r\n Host: a\r\n\r\n"), .rejected(.badRequest))
        // Refused as soon as the folded line ends.
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\n x: y\r\n"), .rejected(.badRequest))
    }

    func testControlOctetsInAValueAre400() {
        for control: UInt8 in [0x00, 0x01, 0x0b, 0x0d, 0x1f, 0x7f] {
            let head = Array("GET / HTTP/1.1\r\nHost: a\r\nX-A: b".utf8) + [control] + Array("c\r\n\r\n".utf8)
            XCTAssertEqual(parse(head), .rejected(.badRequest), "octet \(control)")
        }
        // A NUL in the Host value itself.
        XCTAssertEqual(parse(Array("GET / HTTP/1.1\r\nHost: a".utf8) + [0] + Array("\r\n\r\n".utf8)), .rejected(.badRequest))
    }

    func testHeaderLineWithoutNameOrColonIs400() {
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\nNoColonHere\r\n\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\n: nameless\r\n\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse([UInt8]("GET / HTTP/1.1\r\nHost: a\r\nX".utf8) + [1] + Array(": b\r\n\r\n".utf8)), .rejected(.badRequest))
    }

    // MARK: Rule 5: exactly one Host in HTTP/1.1

    func testHTTP11WithoutHostIs400() {
        XCTAssertEqual(parse("GET / HTTP/1.1\r\n\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nX-Host: a\r\nHosts: b\r\n\r\n"), .rejected(.badRequest))
    }

    func testHTTP11WithTwoHostsIs400() {
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n"), .rejected(.badRequest))
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nhost: a\r\nX-A: b\r\nHOST: c\r\n\r\n"), .rejected(.badRequest))
    }

    func testHostNameIsMatchedWithoutCase() {
        XCTAssertEqual(parse("GET / HTTP/1.1\r\nhOsT: a\r\n\r\n").head?.headers.map(\.name), ["host"])
    }

    // MARK: Rule 6: done once complete or refused

    func testOctetsAfterACompleteHeadAreIgnored() {
        var parser = HTTPRequestParser()
        let result = parser.consume(Self.validHead + Array("body\u{0}\r\n\r\nPOST /x HTTP/1.1\r\n\r\n".utf8))
        assertIsValidHead(result)
        XCTAssertEqual(parser.result, result)
        for later in ["garbage\r\n\r\n", "", " HTTP/2.0\r\n", String(repeating: "x", count: 9000)] {
            XCTAssertEqual(parser.consume(Array(later.utf8)), result)
            XCTAssertEqual(parser.result, result)
        }
    }

    func testARefusalIsFinal() {
        var parser = HTTPRequestParser()
        XCTAssertEqual(parser.consume(Array("GET / HTTP/2.0\r\n".utf8)), .rejected(.versionNotSupported))
        XCTAssertEqual(parser.consume(Self.validHead), .rejected(.versionNotSupported))
        XCTAssertEqual(parser.consume([]), .rejected(.versionNotSupported))
        XCTAssertEqual(parser.result, .rejected(.versionNotSupported))
    }

    func testStatusCodesAndReasons() {
        XCTAssertEqual(HTTPStatus.allCases.map(\.rawValue), [200, 400, 404, 405, 431, 503, 505])
        XCTAssertEqual(HTTPStatus.allCases.map(\.reason), [
            "OK", "Bad Request", "Not Found", "Method Not Allowed", "Request Header Fields Too Large",
            "Service Unavailable", "HTTP Version Not Supported",
        ])
    }

    // MARK: AdminRequest.routing

    func testGetAndHeadOnKnownRoutes() throws {
        XCTAssertEqual(AdminRoute.allCases.map(\.rawValue), ["/metrics", "/healthz", "/ready"])
        for route in AdminRoute.allCases {
            XCTAssertEqual(AdminRequest.routing(try head("GET", route.rawValue)), .route(route, headOnly: false))
            XCTAssertEqual(AdminRequest.routing(try head("HEAD", route.rawValue)), .route(route, headOnly: true))
            XCTAssertEqual(AdminRequest.routing(try head("GET", route.rawValue + "?verbose=1")), .route(route, headOnly: false))
        }
        XCTAssertEqual(AdminRequest.routing(try head("GET", "/metrics?x=1")), .route(.metrics, headOnly: false))
        XCTAssertEqual(AdminRequest.routing(try head("HEAD", "/metrics?")), .route(.metrics, headOnly: true))
    }

    func testUnknownPathsAre404ForAnyMethod() throws {
        for path in ["/", "/metrics/", "/METRICS", "/metricsx", "/health", "/ready/x", "/x?/metrics"] {
            for method in ["GET", "HEAD", "POST", "DELETE"] {
                XCTAssertEqual(AdminRequest.routing(try head(method, path)), .error(.notFound), "\(method) \(path)")
            }
        }
    }

    func testOtherMethodsOnKnownRoutesAre405() throws {
        for route in AdminRoute.allCases {
            for method in ["POST", "PUT", "DELETE", "OPTIONS", "get", "Head"] {
                XCTAssertEqual(AdminRequest.routing(try head(method, route.rawValue)), .error(.methodNotAllowed), "\(method) \(route)")
            }
        }
    }

    /// Rule 4: octets 0x80-0xFF (obs-text) are allowed in a value; DEL is not.
    func testObsTextInAValueIsAcceptedAndDELIsNot() {
        let obsText = Array("GET / HTTP/1.1\r\nHost: a\r\nX-A: caf".utf8) + [0xe9, 0xff] + Array("\r\n\r\n".utf8)
        XCTAssertEqual(parse(obsText).head?.headers.map(\.name), ["host", "x-a"])
        let del = Array("GET / HTTP/1.1\r\nHost: a\r\nX-A: a".utf8) + [0x7f] + Array("\r\n\r\n".utf8)
        XCTAssertEqual(parse(del), .rejected(.badRequest))
    }

    // MARK: Helpers

    func parse(_ octets: [UInt8]) -> HTTPParseResult {
        var parser = HTTPRequestParser()
        let result = parser.consume(octets)
        XCTAssertEqual(parser.result, result)
        return result
    }

    func parse(_ text: String) -> HTTPParseResult { parse(Array(text.utf8)) }

    /// The head of `method target HTTP/1.1` with a Host header, as parsed.
    func head(_ method: String, _ target: String, file: StaticString = #filePath, line: UInt = #line) throws -> HTTPRequestHead {
        try XCTUnwrap(parse("\(method) \(target) HTTP/1.1\r\nHost: a\r\n\r\n").head, "\(method) \(target)", file: file, line: line)
    }
}

extension HTTPParseResult {
    /// The head, if complete.
    var head: HTTPRequestHead? {
        if case .complete(let head) = self { return head }
        return nil
    }
}
