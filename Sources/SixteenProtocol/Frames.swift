/// The book's deadlock client sends whole 16-octet frames (`capitalize
/// this!`): a size asked for is rounded up to them. One rule, here.
public enum Frames {
    public static let size = 16

    /// `octets` rounded up to whole frames; nil if that does not fit an `Int`.
    public static func roundUp(_ octets: Int) -> Int? {
        guard octets > 0 else { return 0 }
        let (sum, overflow) = octets.addingReportingOverflow(size - 1)
        return overflow ? nil : sum / size * size
    }
}
