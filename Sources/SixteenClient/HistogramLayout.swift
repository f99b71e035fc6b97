import Histogram

/// Where each value lives in an HdrHistogram's counts array, computed from
/// the histogram's settings exactly as HdrHistogram (Java, C, Python and
/// hdrhistogram-swift alike) computes it. hdrhistogram-swift keeps its own
/// copy of these figures internal; the codec needs them to walk the counts
/// array by index, so they are derived here once, from the public settings.
struct HistogramLayout: Equatable {
    let unitMagnitude: Int
    let subBucketHalfCountMagnitude: Int
    let subBucketCountMagnitude: Int
    let bucketCount: Int

    var subBucketHalfCount: Int { 1 << subBucketHalfCountMagnitude }
    var subBucketCount: Int { 1 << (subBucketHalfCountMagnitude + 1) }
    /// The length of the counts array (the last index is one less).
    var countsLength: Int { (bucketCount + 1) * subBucketHalfCount }

    /// Nil for settings no HdrHistogram can have (the rules of
    /// hdrhistogram-swift's initializer, which traps on them instead), and
    /// for a lowest discernible value of 2^48 or more, where that library's
    /// floating-point log2 and this integer one could disagree.
    init?(lowest: UInt64, highest: UInt64, digits: Int) {
        guard (0...5).contains(digits), lowest >= 1, lowest < 1 << 48, lowest * 2 <= highest else { return nil }
        var magnitude = 0
        while lowest >> UInt64(magnitude + 1) != 0 { magnitude += 1 }  // floor(log2(lowest))
        var largestSingleUnit: UInt64 = 2
        for _ in 0..<digits { largestSingleUnit *= 10 }
        var countMagnitude = 0
        while UInt64(1) << UInt64(countMagnitude) < largestSingleUnit { countMagnitude += 1 }  // ceil(log2(...))
        unitMagnitude = magnitude
        subBucketCountMagnitude = countMagnitude
        subBucketHalfCountMagnitude = (countMagnitude > 1 ? countMagnitude : 1) - 1
        guard unitMagnitude + subBucketHalfCountMagnitude <= 61 else { return nil }
        // Buckets needed to cover `highest` (HdrHistogram's getBucketsNeededToCoverValue).
        var smallestUntrackable = UInt64(1 << (subBucketHalfCountMagnitude + 1)) << UInt64(unitMagnitude)
        var buckets = 1
        while smallestUntrackable <= highest {
            if smallestUntrackable > UInt64.max / 2 {
                buckets += 1
                break
            }
            smallestUntrackable <<= 1
            buckets += 1
        }
        bucketCount = buckets
    }

    /// The layout of `histogram`.
    init(_ histogram: Histogram<UInt64>) {
        self.init(lowest: histogram.lowestDiscernibleValue, highest: histogram.highestTrackableValue,
                  digits: Int(histogram.numberOfSignificantValueDigits.rawValue))!
    }

    /// The counts index of `value` (HdrHistogram's countsArrayIndex).
    func index(of value: UInt64) -> Int {
        let subBucketMask = UInt64(subBucketCount - 1) << UInt64(unitMagnitude)
        let leadingZeroCountBase = 64 - unitMagnitude - subBucketCountMagnitude
        let bucket = leadingZeroCountBase - (value | subBucketMask).leadingZeroBitCount
        let subBucket = Int(value >> UInt64(bucket + unitMagnitude))
        return ((bucket + 1) << subBucketHalfCountMagnitude) + subBucket - subBucketHalfCount
    }

    /// The lowest value counted at `index` (HdrHistogram's valueFromIndex).
    func value(at index: Int) -> UInt64 {
        var bucket = (index >> subBucketHalfCountMagnitude) - 1
        var subBucket = (index & (subBucketHalfCount - 1)) + subBucketHalfCount
        if bucket < 0 {
            subBucket -= subBucketHalfCount
            bucket = 0
        }
        return UInt64(subBucket) << UInt64(bucket + unitMagnitude)
    }
}

extension Histogram where Count == UInt64 {
    /// The nonzero counts by index, in index order.
    func nonzeroCounts(layout: HistogramLayout) -> [(index: Int, count: UInt64)] {
        recordedValues().map { (layout.index(of: $0.value), $0.count) }
    }
}
