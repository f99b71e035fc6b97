import CZlib
import Histogram

/// Why an encoded histogram could not be read; `description` is one phrase,
/// for `FILE:LINE: the histogram does not decode: …`.
public struct HistogramDecodingError: Error, Equatable, CustomStringConvertible {
    public let description: String
    init(_ description: String) { self.description = description }
}

/// HdrHistogram's V2 encoding, compressed and in base64: what an `.hlog`
/// interval line carries, readable by every HdrHistogram implementation.
/// hdrhistogram-swift has no codec, so it is written here.
///
/// The uncompressed V2 form, big-endian:
///
///     UInt32 cookie 0x1c849313 (V2 base 0x1c849303, word-size nibble 0x10)
///     UInt32 payload length (octets of counts that follow the 40-octet header)
///     UInt32 normalizing index offset (0)
///     UInt32 significant digits
///     UInt64 lowest discernible value
///     UInt64 highest trackable value
///     Float64 integer-to-double conversion ratio (1.0)
///     counts, index 0 up to the last nonzero one, each a ZigZag LEB128
///     number; a run of n zero counts is written as the single number -n
///
/// The compressed form: UInt32 cookie 0x1c849314 (compressed base
/// 0x1c849304 | 0x10), UInt32 length, then the uncompressed form as one zlib
/// stream. HdrHistogram_py and HdrHistogram_c write a single zero as a run
/// of one (-1), Java writes it as the count 0; both read both, and this
/// encoder writes what HdrHistogram_py does, byte for byte (its test checks
/// that). An empty histogram has no counts at all, as in HdrHistogram_py.
public enum HistogramCodec {
    static let encodingCookie: UInt32 = 0x1c84_9303 | 0x10
    static let compressedCookie: UInt32 = 0x1c84_9304 | 0x10
    static let headerLength = 40
    /// The most counts a decoded histogram may have (4M, 32 MiB of UInt64):
    /// a corrupt header cannot make the reader allocate more.
    static let maximumCountsLength = 1 << 22
    /// zlib's best compression, as Java's HistogramLogWriter uses.
    static let compressionLevel: Int32 = 9

    // MARK: Encoding

    /// The uncompressed V2 encoding of `histogram`.
    public static func payload(_ histogram: Histogram<UInt64>) -> [UInt8] {
        let layout = HistogramLayout(histogram)
        var counts: [UInt8] = []
        var next = 0
        for (index, count) in histogram.nonzeroCounts(layout: layout) {
            if index > next { putZigZag(-Int64(index - next), into: &counts) }
            putZigZag(Int64(clamping: count), into: &counts)
            next = index + 1
        }
        var out: [UInt8] = []
        out.reserveCapacity(headerLength + counts.count)
        put(encodingCookie, into: &out)
        put(UInt32(counts.count), into: &out)
        put(UInt32(0), into: &out)
        put(UInt32(histogram.numberOfSignificantValueDigits.rawValue), into: &out)
        put(histogram.lowestDiscernibleValue, into: &out)
        put(histogram.highestTrackableValue, into: &out)
        put(Double(1).bitPattern, into: &out)
        return out + counts
    }

    /// The compressed V2 encoding of `histogram`, in base64: an interval line's last field.
    public static func encode(_ histogram: Histogram<UInt64>) -> String {
        let uncompressed = payload(histogram)
        var compressed = [UInt8](repeating: 0, count: Int(compressBound(uLong(uncompressed.count))))
        var length = uLongf(compressed.count)
        let status = compressed.withUnsafeMutableBufferPointer { target in
            uncompressed.withUnsafeBufferPointer { source in
                compress2(target.baseAddress, &length, source.baseAddress, uLong(source.count), compressionLevel)
            }
        }
        // compress2 into a compressBound-sized buffer fails only without memory.
        precondition(status == Z_OK, "zlib compress2 failed: \(status)")
        var out: [UInt8] = []
        put(compressedCookie, into: &out)
        put(UInt32(length), into: &out)
        out += compressed[..<Int(length)]
        return Base64.encode(out)
    }

    // MARK: Decoding

    /// The histogram an interval line's base64 field holds.
    public static func decode<Text: StringProtocol>(_ text: Text) throws(HistogramDecodingError) -> Histogram<UInt64> {
        guard let bytes = Base64.decode(text) else { throw HistogramDecodingError("not base64") }
        guard bytes.count >= 8 else { throw HistogramDecodingError("\(bytes.count) octets are too few for a compressed histogram") }
        let cookie = readUInt32(bytes, 0)
        guard cookie & ~0xf0 == compressedCookie & ~0xf0 else {
            throw HistogramDecodingError("cookie \(hex(cookie)) is not a V2 compressed histogram's (\(hex(compressedCookie)))")
        }
        let length = Int(readUInt32(bytes, 4))
        guard length == bytes.count - 8 else {
            throw HistogramDecodingError("its header gives \(length) compressed octets, and \(bytes.count - 8) follow")
        }
        return try decodePayload(inflate(Array(bytes[8...])))
    }

    /// The histogram an uncompressed V2 encoding holds.
    public static func decodePayload(_ bytes: [UInt8]) throws(HistogramDecodingError) -> Histogram<UInt64> {
        guard bytes.count >= headerLength else { throw HistogramDecodingError("\(bytes.count) octets are too few for a V2 header") }
        let cookie = readUInt32(bytes, 0)
        guard cookie & ~0xf0 == encodingCookie & ~0xf0 else {
            throw HistogramDecodingError("cookie \(hex(cookie)) is not a V2 histogram's (\(hex(encodingCookie)))")
        }
        let payloadLength = Int(readUInt32(bytes, 4))
        guard payloadLength == bytes.count - headerLength else {
            throw HistogramDecodingError("its header gives \(payloadLength) octets of counts, and \(bytes.count - headerLength) follow")
        }
        let offset = readUInt32(bytes, 8)
        guard offset == 0 else { throw HistogramDecodingError("a normalizing index offset (\(offset)) is not supported") }
        let digits = Int(readUInt32(bytes, 12))
        let lowest = readUInt64(bytes, 16)
        let highest = readUInt64(bytes, 24)
        let ratio = Double(bitPattern: readUInt64(bytes, 32))
        guard ratio == 1 else { throw HistogramDecodingError("a DoubleHistogram (conversion ratio \(ratio)) is not supported") }
        guard let layout = HistogramLayout(lowest: lowest, highest: highest, digits: digits),
              let significant = SignificantDigits(rawValue: Int8(digits)) else {
            throw HistogramDecodingError("impossible settings: lowest \(lowest), highest \(highest), \(digits) significant digits")
        }
        guard layout.countsLength <= maximumCountsLength else {
            throw HistogramDecodingError("\(layout.countsLength) counts are more than the \(maximumCountsLength) allowed")
        }
        var histogram = Histogram<UInt64>(lowestDiscernibleValue: lowest, highestTrackableValue: highest, numberOfSignificantValueDigits: significant)
        var position = headerLength
        var index = 0
        var total: UInt64 = 0
        while position < bytes.count {
            guard let value = readZigZag(bytes, &position) else { throw HistogramDecodingError("a count is cut short") }
            if value < 0 {
                let (next, overflow) = index.addingReportingOverflow(Int(clamping: value.magnitude))
                guard !overflow, next <= layout.countsLength else { throw HistogramDecodingError("a run of zeros goes past the last count") }
                index = next
                continue
            }
            guard index < layout.countsLength else { throw HistogramDecodingError("more counts than the settings allow (\(layout.countsLength))") }
            if value > 0 {
                let (sum, overflow) = total.addingReportingOverflow(UInt64(value))
                guard !overflow, histogram.record(layout.value(at: index), count: UInt64(value)) else {
                    throw HistogramDecodingError("the counts add up past 2^64")
                }
                total = sum
            }
            index += 1
        }
        return histogram
    }

    /// zlib's inflate of one whole stream, at most `limit` octets out.
    static func inflate(_ input: [UInt8], limit: Int = headerLength + 9 * maximumCountsLength) throws(HistogramDecodingError) -> [UInt8] {
        var stream = z_stream()
        guard sixteen_inflate_init(&stream) == Z_OK else { throw HistogramDecodingError("zlib cannot start (out of memory)") }
        defer { inflateEnd(&stream) }
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        var input = input
        let count = input.count
        var status: Int32 = Z_OK
        input.withUnsafeMutableBufferPointer { source in
            stream.next_in = source.baseAddress
            stream.avail_in = uInt(count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { target in
                    stream.next_out = target.baseAddress
                    stream.avail_out = uInt(target.count)
                    status = CZlib.inflate(&stream, Z_NO_FLUSH)
                }
                output += chunk[..<(chunk.count - Int(stream.avail_out))]
            } while status == Z_OK && output.count <= limit
        }
        guard output.count <= limit else { throw HistogramDecodingError("it inflates to more than \(limit) octets") }
        switch status {
        case Z_STREAM_END:
            guard stream.avail_in == 0 else { throw HistogramDecodingError("\(stream.avail_in) octets follow the zlib stream") }
            return output
        case Z_BUF_ERROR: throw HistogramDecodingError("the zlib stream is cut short")
        default: throw HistogramDecodingError("the zlib stream is corrupt")
        }
    }

    // MARK: Numbers

    /// ZigZag, then LEB128 as HdrHistogram writes it: seven bits an octet,
    /// low first, a high bit for "more"; the ninth octet, if reached, holds
    /// the last eight bits whole, so no number takes more than nine.
    static func putZigZag(_ value: Int64, into out: inout [UInt8]) {
        var bits = UInt64(bitPattern: (value << 1) ^ (value >> 63))
        for _ in 0..<8 {
            if bits >> 7 == 0 {
                out.append(UInt8(bits))
                return
            }
            out.append(UInt8(bits & 0x7f) | 0x80)
            bits >>= 7
        }
        out.append(UInt8(truncatingIfNeeded: bits))
    }

    /// The number at `position` (advanced past it), or nil if the octets end first.
    static func readZigZag(_ bytes: [UInt8], _ position: inout Int) -> Int64? {
        var bits: UInt64 = 0
        for octet in 0..<9 {
            guard position < bytes.count else { return nil }
            let byte = bytes[position]
            position += 1
            if octet == 8 {
                bits |= UInt64(byte) << 56
                break
            }
            bits |= UInt64(byte & 0x7f) << UInt64(7 * octet)
            if byte & 0x80 == 0 { break }
        }
        return Int64(bitPattern: bits >> 1) ^ -Int64(bitPattern: bits & 1)
    }

    private static func put<Word: FixedWidthInteger>(_ value: Word, into out: inout [UInt8]) {
        for shift in stride(from: Word.bitWidth - 8, through: 0, by: -8) { out.append(UInt8(truncatingIfNeeded: value >> shift)) }
    }

    private static func readUInt32(_ bytes: [UInt8], _ at: Int) -> UInt32 {
        (0..<4).reduce(0) { $0 << 8 | UInt32(bytes[at + $1]) }
    }

    private static func readUInt64(_ bytes: [UInt8], _ at: Int) -> UInt64 {
        (0..<8).reduce(0) { $0 << 8 | UInt64(bytes[at + $1]) }
    }

    private static func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
}
