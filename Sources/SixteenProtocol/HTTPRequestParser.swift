// The admin listener's HTTP/1.1 request head parser. Rules first (RFC 9112,
// kept to what one request per connection needs):
//
//  1. The head is a request line, then header lines, then an empty line.
//     Lines end in CRLF; a bare LF is accepted too (RFC 9112 section 2.2).
//  2. The whole head, empty line included, is at most `maxHeadLength`
//     octets (8 KiB). A longer one is refused with 431, whatever part of it
//     is long, as soon as the limit is passed: nothing more is buffered.
//  3. Request line: method, one space, target, one space, version. The
//     method is a token; the target is origin-form (starts with `/`, only
//     visible ASCII); the version is `HTTP/1.0` or `HTTP/1.1`. Another
//     `HTTP/x.y` is refused with 505; anything else with 400.
//  4. A header line is a token name, a colon (no space before it), and a
//     value of visible ASCII, spaces, tabs and octets 0x80-0xFF (RFC 9110's
//     obs-text; leading and trailing spaces and tabs are not part of it). A line starting with a space or tab (obsolete line
//     folding), a NUL or other control octet anywhere: 400.
//  5. An HTTP/1.1 request must carry exactly one Host header (RFC 9112
//     section 3.2): without one, or with two, 400.
//  6. Octets after the head (a body, a second request) are not the
//     parser's business: it is done once the head is complete or refused,
//     and ignores every later octet.
//
// Pure: no I/O, no clock. Feed it octets in any split; the answer is the same.

/// An HTTP status the admin listener answers with.
public enum HTTPStatus: Int, Sendable, Equatable, CaseIterable {
    case ok = 200
    case badRequest = 400
    case notFound = 404
    case methodNotAllowed = 405
    case headersTooLarge = 431
    case serviceUnavailable = 503
    case versionNotSupported = 505

    public var reason: String {
        switch self {
        case .ok: "OK"
        case .badRequest: "Bad Request"
        case .notFound: "Not Found"
        case .methodNotAllowed: "Method Not Allowed"
        case .headersTooLarge: "Request Header Fields Too Large"
        case .serviceUnavailable: "Service Unavailable"
        case .versionNotSupported: "HTTP Version Not Supported"
        }
    }
}

/// A request head that followed the rules.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    /// The target as sent: path and query.
    public var target: String
    /// 0 for HTTP/1.0, 1 for HTTP/1.1.
    public var minorVersion: Int
    /// Header names in lowercase, with their values, in order.
    public var headers: [(name: String, value: String)]

    /// The target without its query.
    public var path: String {
        String(target.prefix { $0 != "?" })
    }

    public static func == (lhs: HTTPRequestHead, rhs: HTTPRequestHead) -> Bool {
        lhs.method == rhs.method && lhs.target == rhs.target && lhs.minorVersion == rhs.minorVersion
            && lhs.headers.map(\.name) == rhs.headers.map(\.name) && lhs.headers.map(\.value) == rhs.headers.map(\.value)
    }
}

/// Where parsing stands.
public enum HTTPParseResult: Sendable, Equatable {
    /// More octets are needed.
    case incomplete
    /// The head is complete and valid (rules 1-5).
    case complete(HTTPRequestHead)
    /// The head broke a rule; answer with this status and close.
    case rejected(HTTPStatus)
}

public struct HTTPRequestParser: Sendable {
    public static let maxHeadLength = 8192

    private var line: [UInt8] = []
    private var consumed = 0
    private var head: HTTPRequestHead?
    public private(set) var result: HTTPParseResult = .incomplete

    public init() {}

    /// Feeds octets; returns where parsing stands (rule 6: once it is not
    /// `.incomplete`, it never changes).
    public mutating func consume(_ octets: UnsafeRawBufferPointer) -> HTTPParseResult {
        guard result == .incomplete else { return result }
        for octet in octets {
            consumed += 1
            if consumed > Self.maxHeadLength { return finish(.rejected(.headersTooLarge)) }
            guard octet == UInt8(ascii: "\n") else {
                line.append(octet)
                continue
            }
            if line.last == UInt8(ascii: "\r") { line.removeLast() }
            let outcome = endOfLine()
            line.removeAll(keepingCapacity: true)
            if outcome != .incomplete { return finish(outcome) }
        }
        return .incomplete
    }

    public mutating func consume(_ octets: [UInt8]) -> HTTPParseResult {
        octets.withUnsafeBytes { consume($0) }
    }

    private mutating func finish(_ outcome: HTTPParseResult) -> HTTPParseResult {
        result = outcome
        line = []
        return outcome
    }

    private mutating func endOfLine() -> HTTPParseResult {
        // Taken out, not copied: appending to a copy of the headers the
        // parser still held copied them all at every line (quadratic).
        guard var request = head.take() else {
            guard let parsed = Self.requestLine(line) else {
                return .rejected(Self.looksLikeHTTP(line) ? .versionNotSupported : .badRequest)
            }
            head = parsed
            return .incomplete
        }
        if line.isEmpty {
            if request.minorVersion == 1, request.headers.filter({ $0.name == "host" }).count != 1 {
                return .rejected(.badRequest)
            }
            return .complete(request)
        }
        guard let field = Self.headerField(line) else { return .rejected(.badRequest) }
        request.headers.append(field)
        head = request
        return .incomplete
    }

    /// `METHOD SP /target SP HTTP/1.x` (rule 3).
    static func requestLine(_ line: [UInt8]) -> HTTPRequestHead? {
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3 else { return nil }
        let method = parts[0], target = parts[1], version = parts[2]
        guard !method.isEmpty, method.allSatisfy(isTokenOctet) else { return nil }
        guard target.first == UInt8(ascii: "/"), target.allSatisfy({ $0 > 0x20 && $0 < 0x7f }) else { return nil }
        let minor: Int
        switch String(decoding: version, as: UTF8.self) {
        case "HTTP/1.0": minor = 0
        case "HTTP/1.1": minor = 1
        default: return nil
        }
        return HTTPRequestHead(
            method: String(decoding: method, as: UTF8.self), target: String(decoding: target, as: UTF8.self),
            minorVersion: minor, headers: [])
    }

    /// A well-formed request line but for its version: `HTTP/` and a digit.
    static func looksLikeHTTP(_ line: [UInt8]) -> Bool {
        let parts = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3, requestLine(Array(parts[0]) + Array(" ".utf8) + Array(parts[1]) + Array(" HTTP/1.1".utf8)) != nil else {
            return false
        }
        let version = Array(parts[2])
        return version.count == 8 && version.starts(with: Array("HTTP/".utf8))
            && version[5] >= UInt8(ascii: "0") && version[5] <= UInt8(ascii: "9") && version[6] == UInt8(ascii: ".")
            && version[7] >= UInt8(ascii: "0") && version[7] <= UInt8(ascii: "9")
    }

    /// `name: value` (rule 4).
    static func headerField(_ line: [UInt8]) -> (name: String, value: String)? {
        guard let colon = line.firstIndex(of: UInt8(ascii: ":")), colon > 0 else { return nil }
        let name = line[..<colon]
        guard name.allSatisfy(isTokenOctet) else { return nil }
        var value = line[(colon + 1)...]
        guard value.allSatisfy({ $0 == 0x09 || ($0 >= 0x20 && $0 != 0x7f) }) else { return nil }
        while let first = value.first, first == 0x20 || first == 0x09 { value = value.dropFirst() }
        while let last = value.last, last == 0x20 || last == 0x09 { value = value.dropLast() }
        return (String(decoding: name, as: UTF8.self).lowercased(), String(decoding: value, as: UTF8.self))
    }

    /// RFC 9110 `tchar`.
    static func isTokenOctet(_ octet: UInt8) -> Bool {
        switch octet {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        default:
            return Array("!#$%&'*+-.^_`|~".utf8).contains(octet)
        }
    }
}
