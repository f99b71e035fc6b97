#if canImport(Glibc)
import Glibc
#endif
import SixteenProtocol

// The PROXY header from its rules alone (ProxyHeaderParser.swift's header,
// and HAProxy's doc/proxy-protocol.txt), written to be obviously right
// rather than fast: arrays, `split`, and the C library's `inet_pton` for
// addresses. The target compares the parser with it on every input.
//
// It also says where each outcome is decided: the shortest prefix of the
// input that decides it. The parser's header promises "a refusal comes at
// the first octet that breaks a rule", so a prefix is decided as soon as it
// cannot begin any header: a wrong signature or `PROXY ` octet, a v2
// version, command, family or length that cannot be right; a v1 line only
// at its end (the line is the unit of rule 2) or at 107 octets.

/// What the reference says of a whole input.
enum ReferenceOutcome: Equatable {
    case incomplete
    case rejected
    case complete(ProxyHeader, consumed: Int)
}

enum ProxyReference {
    static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix = Array("PROXY ".utf8)
    static let v1MaxLength = 107
    static let v2MaxBody = 536

    static func parse(_ octets: [UInt8]) -> ReferenceOutcome {
        guard let first = octets.first else { return .incomplete }
        return first == UInt8(ascii: "P") ? versionOne(octets) : versionTwo(octets)
    }

    private static func versionOne(_ octets: [UInt8]) -> ReferenceOutcome {
        guard octets.starts(with: v1Prefix.prefix(octets.count)) else { return .rejected }
        let window = octets.prefix(v1MaxLength)
        guard let lineFeed = window.firstIndex(of: 0x0A) else {
            return octets.count >= v1MaxLength ? .rejected : .incomplete
        }
        guard lineFeed > v1Prefix.count, octets[lineFeed - 1] == 0x0D else { return .rejected }
        let fields = octets[v1Prefix.count..<(lineFeed - 1)].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        let consumed = lineFeed + 1
        if fields[0].elementsEqual("UNKNOWN".utf8) { return .complete(.unknown, consumed: consumed) }
        guard fields.count == 5 else { return .rejected }
        let family: Int32
        switch String(decoding: fields[0], as: UTF8.self) {
        case "TCP4": family = AF_INET
        case "TCP6": family = AF_INET6
        default: return .rejected
        }
        guard let source = address(Array(fields[1]), family: family, port: Array(fields[3])),
              let destination = address(Array(fields[2]), family: family, port: Array(fields[4])) else {
            return .rejected
        }
        return .complete(.proxied(source: source, destination: destination), consumed: consumed)
    }

    /// `inet_pton`'s reading of `text`, and a decimal port of 1-5 digits with
    /// no leading zero (but "0"), at most 65 535.
    static func address(_ text: [UInt8], family: Int32, port text2: [UInt8]) -> ProxyAddress? {
        guard !text2.isEmpty, text2.count <= 5, text2.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }),
              text2.count == 1 || text2[0] != 0x30 else { return nil }
        let port = text2.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        guard port <= 65_535, !text.contains(0) else { return nil }
        var buffer = [UInt8](repeating: 0, count: 16)
        let converted = (text.map { CChar(bitPattern: $0) } + [0]).withUnsafeBufferPointer { string in
            buffer.withUnsafeMutableBytes { inet_pton(family, string.baseAddress!, $0.baseAddress!) }
        }
        guard converted == 1 else { return nil }
        return ProxyAddress(octets: Array(buffer.prefix(family == AF_INET ? 4 : 16)), port: UInt16(port))
    }

    private static func versionTwo(_ octets: [UInt8]) -> ReferenceOutcome {
        guard octets.starts(with: signature.prefix(octets.count)) else { return .rejected }
        guard octets.count > 12 else { return .incomplete }
        let version = octets[12] >> 4, command = octets[12] & 0x0F
        guard version == 2, command == 0 || command == 1 else { return .rejected }
        guard octets.count > 13 else { return .incomplete }
        let family = octets[13]
        // LOCAL ignores the family; PROXY needs TCP over IPv4 or IPv6, or UNSPEC.
        let addressLength: Int
        switch family {
        case 0x11: addressLength = 12
        case 0x21: addressLength = 36
        case 0x00: addressLength = 0
        default:
            guard command == 0 else { return .rejected }
            addressLength = 0
        }
        guard octets.count >= 16 else { return .incomplete }
        let length = Int(octets[14]) << 8 | Int(octets[15])
        guard length <= v2MaxBody else { return .rejected }
        if command == 1, length < addressLength { return .rejected }
        guard octets.count >= 16 + length else { return .incomplete }
        let consumed = 16 + length
        if command == 0 { return .complete(.local, consumed: consumed) }
        if family == 0 { return .complete(.unknown, consumed: consumed) }
        let size = family == 0x11 ? 4 : 16
        let body = Array(octets[16..<consumed])
        func port(_ at: Int) -> UInt16 { UInt16(body[at]) << 8 | UInt16(body[at + 1]) }
        let source = ProxyAddress(octets: Array(body[0..<size]), port: port(2 * size))
        let destination = ProxyAddress(octets: Array(body[size..<(2 * size)]), port: port(2 * size + 2))
        return .complete(.proxied(source: source, destination: destination), consumed: consumed)
    }
}
