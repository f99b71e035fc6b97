// The PROXY protocol header (HAProxy's doc/proxy-protocol.txt), as a
// receiver that requires it reads it. Rules first:
//
//  1. With the header required, it comes first on every connection, before
//     any octet of the protocol; without it, nothing is parsed (a receiver
//     must not guess: section 1).
//  2. Version 1 is one line of text, at most 107 octets with its CRLF:
//     `PROXY TCP4 src dst srcport dstport\r\n` (or TCP6), or `PROXY UNKNOWN`
//     followed by anything up to the CRLF (the proxy does not know the
//     addresses: the connection is served as its own). Addresses are
//     numeric and of the family named; ports are decimal, 0-65535, with no
//     leading zero.
//  3. Version 2 is binary: the 12-octet signature, a version and command
//     octet (0x21 PROXY, 0x20 LOCAL), a family and transport octet (0x11
//     TCP over IPv4, 0x21 TCP over IPv6, 0x00 unspecified), a 16-bit
//     length, then that many octets: the addresses (12 for IPv4, 36 for
//     IPv6), then TLVs, which are skipped. LOCAL means the proxy itself
//     speaks (a health check): addresses, if any, are ignored.
//  4. Anything else, a v1 line past 107 octets, or a v2 header whose
//     length cannot hold its addresses, is refused: the connection closes.
//  5. The parser takes only the header's octets; what follows belongs to
//     the protocol and is handed on untouched.
//
// Pure: no I/O. Feed it octets in any split; the result is the same, and
// a refusal comes at the first octet that breaks a rule. A header that
// arrives whole (as a balancer sends it) is parsed where it lies, with no
// allocation; only a split one is gathered, up to `maxV2Length` octets.

/// What a PROXY header said.
public enum ProxyHeader: Sendable, Equatable {
    /// A client's connection, with its real addresses (source is the client).
    case proxied(source: ProxyAddress, destination: ProxyAddress)
    /// v2 LOCAL: the proxy's own connection (a health check).
    case local
    /// v1 UNKNOWN or v2 UNSPEC: addresses not given; the connection is its own.
    case unknown
}

/// An address from a PROXY header: IPv4 or IPv6, and a port. Kept as two
/// words, so that a header's addresses cost no allocation.
public struct ProxyAddress: Sendable, Equatable {
    public let isIPv6: Bool
    /// The address's first 8 octets as a big-endian number (0 for IPv4).
    public let high: UInt64
    /// Its last 8 octets (an IPv4 address in the low 32 bits).
    public let low: UInt64
    public let port: UInt16

    public init(ipv6: Bool, high: UInt64, low: UInt64, port: UInt16) {
        isIPv6 = ipv6
        self.high = high
        self.low = low
        self.port = port
    }

    /// From 4 or 16 octets in network order.
    public init(octets: [UInt8], port: UInt16) {
        precondition(octets.count == 4 || octets.count == 16, "an IPv4 or IPv6 address")
        let words = octets.reduce(into: (UInt64(0), UInt64(0))) { words, octet in
            words = (words.0 << 8 | words.1 >> 56, words.1 << 8 | UInt64(octet))
        }
        self.init(ipv6: octets.count == 16, high: words.0, low: words.1, port: port)
    }

    /// The address in network order: 4 or 16 octets.
    public var octets: [UInt8] {
        let all = (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
            + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        return isIPv6 ? all : Array(all.suffix(4))
    }
}

/// Where parsing stands.
public enum ProxyParseResult: Sendable, Equatable {
    case incomplete
    /// The header, and how many octets of the last input it took (the rest
    /// belongs to the protocol: rule 5).
    case complete(ProxyHeader, consumed: Int)
    /// The header broke a rule: close the connection (rule 4).
    case rejected(String)
}

public struct ProxyHeaderParser: Sendable {
    public static let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    public static let maxV1Length = 107
    /// v2 length past which a header is refused (16 octets of fixed part,
    /// IPv6 addresses, and room for TLVs): bounded memory per connection.
    public static let maxV2Length = 16 + 536
    private static let versionOnePrefix: [UInt8] = Array("PROXY ".utf8)

    /// The header's octets so far, when it arrived split (empty otherwise).
    private var gathered: [UInt8] = []
    public private(set) var result: ProxyParseResult = .incomplete

    public init() {}

    /// The next octets of the connection. Once complete or rejected, the
    /// result stays as it was.
    public mutating func consume(_ octets: UnsafeRawBufferPointer) -> ProxyParseResult {
        guard result == .incomplete, !octets.isEmpty else { return result }
        if gathered.isEmpty {
            result = Self.parse(octets)
            if result == .incomplete { gathered.append(contentsOf: octets) }
            return result
        }
        let before = gathered.count
        // A prefix of `maxV2Length` octets decides any header.
        gathered.append(contentsOf: octets.prefix(Self.maxV2Length - before))
        let parsed = gathered.withUnsafeBytes { Self.parse($0) }
        switch parsed {
        case .incomplete:
            return .incomplete
        case .complete(let header, let consumed):
            result = .complete(header, consumed: consumed - before)
        case .rejected:
            result = parsed
        }
        gathered = []
        return result
    }

    public mutating func consume(_ octets: [UInt8]) -> ProxyParseResult {
        octets.withUnsafeBytes { consume($0) }
    }

    /// The header at the start of `octets`, as far as they go: `consumed`
    /// counts from their first octet.
    static func parse(_ octets: UnsafeRawBufferPointer) -> ProxyParseResult {
        let count = octets.count
        guard count > 0 else { return .incomplete }
        // Which version: the first octet tells ('P' or '\r').
        if octets[0] == UInt8(ascii: "P") {
            let prefix = versionOnePrefix
            for index in 0..<min(count, prefix.count) where octets[index] != prefix[index] {
                return .rejected("not a PROXY header")
            }
            for index in prefix.count..<max(prefix.count, min(count, maxV1Length)) where octets[index] == 0x0A {
                guard octets[index - 1] == 0x0D else { return .rejected("v1 line not ended by CRLF") }
                return versionOne(UnsafeRawBufferPointer(rebasing: octets[prefix.count..<(index - 1)]), consumed: index + 1)
            }
            return count >= maxV1Length ? .rejected("v1 line longer than 107 octets") : .incomplete
        }
        for index in 0..<min(count, signature.count) where octets[index] != signature[index] {
            return .rejected("not a PROXY header")
        }
        guard count > 12 else { return .incomplete }
        let version = octets[12] >> 4, command = octets[12] & 0x0F
        guard version == 2 else { return .rejected("unknown PROXY version \(version)") }
        guard command <= 1 else { return .rejected("unknown v2 command \(command)") }
        guard count > 13 else { return .incomplete }
        // A PROXY command's family says how long its addresses are: refuse a
        // family that is not TCP, or a length too short for the addresses,
        // as soon as they arrive rather than after the body (rule 4).
        let family = octets[13]
        let addressLength: Int
        switch (command, family) {
        case (0, _), (_, 0x00): addressLength = 0
        case (_, 0x11): addressLength = 12
        case (_, 0x21): addressLength = 36
        default: return .rejected("v2 family \(family) is not TCP")
        }
        guard count >= 16 else { return .incomplete }
        let length = 16 + (Int(octets[14]) << 8 | Int(octets[15]))
        guard length <= maxV2Length else { return .rejected("v2 header of \(length - 16) octets") }
        guard length - 16 >= addressLength else { return .rejected("v2 \(family == 0x11 ? "IPv4" : "IPv6") header too short") }
        guard count >= length else { return .incomplete }
        return versionTwo(command: command, family: octets[13], body: UnsafeRawBufferPointer(rebasing: octets[16..<length]), consumed: length)
    }

    /// `TCP4 src dst sport dport`, `TCP6 …`, or `UNKNOWN…` (rule 2): fields
    /// separated by single spaces.
    static func versionOne(_ line: UnsafeRawBufferPointer, consumed: Int) -> ProxyParseResult {
        var fields: (Slice<UnsafeRawBufferPointer>, Slice<UnsafeRawBufferPointer>, Slice<UnsafeRawBufferPointer>,
                     Slice<UnsafeRawBufferPointer>, Slice<UnsafeRawBufferPointer>)
        let space = UInt8(ascii: " ")
        let firstEnd = line.firstIndex(of: space) ?? line.count
        if line[..<firstEnd].elementsEqual("UNKNOWN".utf8) { return .complete(.unknown, consumed: consumed) }
        // Five fields need exactly four spaces.
        var bounds = (0, 0, 0, 0)
        var spaces = 0
        for index in line.indices where line[index] == space {
            switch spaces {
            case 0: bounds.0 = index
            case 1: bounds.1 = index
            case 2: bounds.2 = index
            case 3: bounds.3 = index
            default: return .rejected("malformed v1 line")
            }
            spaces += 1
        }
        guard spaces == 4 else { return .rejected("malformed v1 line") }
        fields = (line[..<bounds.0], line[(bounds.0 + 1)..<bounds.1], line[(bounds.1 + 1)..<bounds.2],
                  line[(bounds.2 + 1)..<bounds.3], line[(bounds.3 + 1)...])
        let v6: Bool
        if fields.0.elementsEqual("TCP4".utf8) {
            v6 = false
        } else if fields.0.elementsEqual("TCP6".utf8) {
            v6 = true
        } else {
            return .rejected("malformed v1 line")
        }
        guard let source = address(fields.1, v6: v6, port: fields.3),
              let destination = address(fields.2, v6: v6, port: fields.4) else {
            return .rejected("malformed v1 addresses")
        }
        return .complete(.proxied(source: source, destination: destination), consumed: consumed)
    }

    /// The body after the 16-octet fixed part (rule 3).
    static func versionTwo(command: UInt8, family: UInt8, body: UnsafeRawBufferPointer, consumed: Int) -> ProxyParseResult {
        if command == 0 { return .complete(.local, consumed: consumed) }
        func word(_ at: Int, _ size: Int) -> UInt64 {
            (at..<(at + size)).reduce(UInt64(0)) { $0 << 8 | UInt64(body[$1]) }
        }
        func port(_ at: Int) -> UInt16 { UInt16(body[at]) << 8 | UInt16(body[at + 1]) }
        switch family {
        case 0x11:
            guard body.count >= 12 else { return .rejected("v2 IPv4 header too short") }
            return .complete(.proxied(
                source: ProxyAddress(ipv6: false, high: 0, low: word(0, 4), port: port(8)),
                destination: ProxyAddress(ipv6: false, high: 0, low: word(4, 4), port: port(10))), consumed: consumed)
        case 0x21:
            guard body.count >= 36 else { return .rejected("v2 IPv6 header too short") }
            return .complete(.proxied(
                source: ProxyAddress(ipv6: true, high: word(0, 8), low: word(8, 8), port: port(32)),
                destination: ProxyAddress(ipv6: true, high: word(16, 8), low: word(24, 8), port: port(34))), consumed: consumed)
        case 0x00:
            return .complete(.unknown, consumed: consumed)
        default:
            return .rejected("v2 family \(family) is not TCP")
        }
    }

    /// A numeric address of the family named, and a port (rule 2).
    static func address(_ text: Slice<UnsafeRawBufferPointer>, v6: Bool, port portText: Slice<UnsafeRawBufferPointer>) -> ProxyAddress? {
        guard let port = decimal(portText, max: 65535) else { return nil }
        if v6 {
            guard let (high, low) = ipv6(text) else { return nil }
            return ProxyAddress(ipv6: true, high: high, low: low, port: UInt16(port))
        }
        guard let v4 = ipv4(text) else { return nil }
        return ProxyAddress(ipv6: false, high: 0, low: UInt64(v4), port: UInt16(port))
    }

    /// Decimal digits, no leading zero (but "0"), at most `max`.
    static func decimal(_ text: Slice<UnsafeRawBufferPointer>, max: Int) -> Int? {
        guard !text.isEmpty, text.count <= 5, text.count == 1 || text.first != UInt8(ascii: "0") else { return nil }
        var value = 0
        for octet in text {
            guard octet >= UInt8(ascii: "0"), octet <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(octet - UInt8(ascii: "0"))
        }
        return value <= max ? value : nil
    }

    /// Dotted IPv4, four decimal parts (no leading zeros: they read as octal elsewhere).
    static func ipv4(_ text: Slice<UnsafeRawBufferPointer>) -> UInt32? {
        var value: UInt32 = 0
        var parts = 0
        var start = text.startIndex
        for index in text.startIndex...text.endIndex where index == text.endIndex || text[index] == UInt8(ascii: ".") {
            guard parts < 4, index - start <= 3, let part = decimal(text[start..<index], max: 255) else { return nil }
            value = value << 8 | UInt32(part)
            parts += 1
            start = index + 1
        }
        return parts == 4 ? value : nil
    }

    /// Textual IPv6 (RFC 4291 2.2): eight groups of 1-4 hex digits, one
    /// "::" standing for one or more zero groups, an IPv4 address only as
    /// the last 32 bits. Parsed by hand (no `inet_pton`: pure).
    static func ipv6(_ text: Slice<UnsafeRawBufferPointer>) -> (UInt64, UInt64)? {
        var groups: UInt128 = 0  // the groups so far, shifted in
        var count = 0
        var gapAt = -1
        var index = text.startIndex
        let end = text.endIndex
        if end - index >= 2, text[index] == UInt8(ascii: ":"), text[index + 1] == UInt8(ascii: ":") {
            gapAt = 0
            index += 2
        }
        while index < end {
            let start = index
            var group: UInt128 = 0
            while index < end, index - start < 5, let digit = hexDigit(text[index]) {
                group = group << 4 | UInt128(digit)
                index += 1
            }
            if index < end, text[index] == UInt8(ascii: ".") {
                // The last 32 bits as IPv4: only at the very end.
                guard count <= 6, let v4 = ipv4(text[start..<end]) else { return nil }
                groups = groups << 32 | UInt128(v4)
                count += 2
                break
            }
            guard index > start, index - start <= 4, count < 8 else { return nil }
            groups = groups << 16 | group
            count += 1
            guard index < end else { break }
            guard text[index] == UInt8(ascii: ":") else { return nil }
            index += 1
            if index < end, text[index] == UInt8(ascii: ":") {
                guard gapAt < 0 else { return nil }
                gapAt = count
                index += 1
            } else if index == end {
                return nil
            }
        }
        if gapAt < 0 {
            guard count == 8 else { return nil }
        } else {
            guard count < 8 else { return nil }
            // The zero groups go where the "::" was: the groups before it move up.
            let tailBits = 16 * (count - gapAt)
            let tail = tailBits == 0 ? 0 : groups & (UInt128.max >> (128 - tailBits))
            let head = tailBits == 128 ? 0 : groups >> tailBits
            groups = (head << (16 * (8 - gapAt)) | tail)
        }
        return (UInt64(truncatingIfNeeded: groups >> 64), UInt64(truncatingIfNeeded: groups))
    }

    private static func hexDigit(_ octet: UInt8) -> UInt64? {
        switch octet {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): UInt64(octet - UInt8(ascii: "0"))
        case UInt8(ascii: "a")...UInt8(ascii: "f"): UInt64(octet - UInt8(ascii: "a") + 10)
        case UInt8(ascii: "A")...UInt8(ascii: "F"): UInt64(octet - UInt8(ascii: "A") + 10)
        default: nil
        }
    }
}
