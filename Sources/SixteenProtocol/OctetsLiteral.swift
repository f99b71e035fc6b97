/// Octets written as a Python `bytes` literal, the way the book's programs
/// print them: `b'Hi there, server'`, with escapes for quotes, backslashes
/// and anything outside printable ASCII. Called only for log and console
/// lines, never on the hot path at the default log level.
public func pythonBytesLiteral<Octets: Sequence<UInt8>>(_ octets: Octets) -> String {
    let octets = Array(octets)  // read once: the input may be a single-pass sequence
    let hasSingle = octets.contains(UInt8(ascii: "'"))
    let hasDouble = octets.contains(UInt8(ascii: "\""))
    let quote: Character = hasSingle && !hasDouble ? "\"" : "'"
    var text = "b"
    text.append(quote)
    let hexDigits = Array("0123456789abcdef")
    for octet in octets {
        switch octet {
        case UInt8(ascii: "\\"): text += "\\\\"
        case UInt8(ascii: "\t"): text += "\\t"
        case UInt8(ascii: "\n"): text += "\\n"
        case UInt8(ascii: "\r"): text += "\\r"
        case UInt8(ascii: "'") where quote == "'": text += "\\'"
        case 0x20...0x7e: text.append(Character(Unicode.Scalar(octet)))
        default:
            text += "\\x"
            text.append(hexDigits[Int(octet >> 4)])
            text.append(hexDigits[Int(octet & 0xf)])
        }
    }
    text.append(quote)
    return text
}
