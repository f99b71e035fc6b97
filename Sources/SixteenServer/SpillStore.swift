#if canImport(Glibc)
import Glibc
#endif
import Reactor
import Synchronization

/// Why output could not be stored.
enum StorageFailure: Error, Equatable, CustomStringConvertible {
    /// `--max-spill` is spent.
    case overBudget(Int)
    /// Every descriptor set aside for spill files is in use.
    case noDescriptor(Int)
    /// The memory budget is spent and the spill file cannot take more yet.
    case noMemory
    /// The file system refused.
    case system(Errno)

    /// Worth retrying for a while: the file system is full now but may not be
    /// in a moment, or others may give budget back.
    var isTransient: Bool {
        switch self {
        case .overBudget, .noDescriptor, .noMemory: true
        case .system(let error): error.code == ENOSPC || error.code == EDQUOT
        }
    }

    var description: String {
        switch self {
        case .overBudget(let budget): "the spill budget (--max-spill \(budget)) is spent"
        case .noDescriptor(let files): "all \(files) descriptors for spill files are in use"
        case .noMemory: "the memory budget is spent and the spill file cannot grow"
        case .system(let error): "\(error)"
        }
    }
}

/// Spill files for every reactor of one service: where they go, and the
/// process-wide budget they share, in bytes (`--max-spill`) and in
/// descriptors (the reserve of `DescriptorPlan`). Space is taken from the
/// file system ahead of need, an extent at a time, with `fallocate`: so
/// every octet read has its place on disk before the next read, and a full
/// file system shows as a refused extent, not as a failed write of octets
/// already read.
final class SpillStore: Sendable {
    let directory: String
    let maxBytes: Int
    let maxFiles: Int
    /// Space taken at a time, and kept ahead of what is written.
    let extent: Int
    private let allocated = Atomic<Int>(0)
    private let files = Atomic<Int>(0)

    static let allocatedSeries = SeriesDeclaration.gauge(
        "sixteen_spill_allocated_bytes", "Disk space taken for spill files now, within --max-spill.")
    static let budgetSeries = SeriesDeclaration.gauge(
        "sixteen_spill_max_bytes", "The spill budget (--max-spill).")

    init(directory: String, maxBytes: Int, maxFiles: Int, extent: Int = 1 << 20) {
        self.directory = directory
        self.maxBytes = maxBytes
        self.maxFiles = maxFiles
        self.extent = extent
    }

    /// Bytes taken from the budget now.
    var allocatedBytes: Int { allocated.load(ordering: .relaxed) }
    var openFiles: Int { files.load(ordering: .relaxed) }

    /// A new unnamed spill file, within the descriptor reserve.
    func makeFile() -> Result<Int32, StorageFailure> {
        guard take(files, 1, within: maxFiles) else { return .failure(.noDescriptor(maxFiles)) }
        switch UnnamedFile.create(in: directory) {
        case .success(let fd):
            return .success(fd)
        case .failure(let error):
            files.subtract(1, ordering: .relaxed)
            return .failure(.system(error))
        }
    }

    /// Closes a spill file and gives back the space it held.
    func closeFile(_ fd: Int32, allocated bytes: Int64) {
        Glibc.close(fd)
        files.subtract(1, ordering: .relaxed)
        release(bytes)
    }

    /// Grows `fd`'s allocation from `current` to `target` bytes: budget
    /// first, then the file system. The new allocation, or why not.
    func allocate(_ fd: Int32, from current: Int64, to target: Int64) -> Result<Int64, StorageFailure> {
        guard target > current else { return .success(current) }
        let more = Int(target - current)
        guard take(allocated, more, within: maxBytes) else { return .failure(.overBudget(maxBytes)) }
        if let error = UnnamedFile.reserve(fd, offset: current, length: Int64(more)) {
            allocated.subtract(more, ordering: .relaxed)
            return .failure(.system(error))
        }
        return .success(target)
    }

    /// Gives back `bytes` of allocation (a file truncated or closed).
    func release(_ bytes: Int64) {
        if bytes > 0 { allocated.subtract(Int(bytes), ordering: .relaxed) }
    }

    /// `extent`-aligned size covering `bytes`.
    func rounded(_ bytes: Int64) -> Int64 {
        let unit = Int64(extent)
        return (bytes + unit - 1) / unit * unit
    }

    private func take(_ counter: borrowing Atomic<Int>, _ amount: Int, within limit: Int) -> Bool {
        var value = counter.load(ordering: .relaxed)
        while value + amount <= limit {
            let (exchanged, original) = counter.compareExchange(expected: value, desired: value + amount, ordering: .relaxed)
            if exchanged { return true }
            value = original
        }
        return false
    }

    /// The default `--max-spill`: half the free space of `directory`'s file
    /// system at start-up, at most 8 GiB. Half, so that spilling alone can
    /// never fill it; 8 GiB, so that it stays a bound and not a habit.
    static func defaultBudget(for directory: String) -> Int {
        var stats = statvfs()
        guard statvfs(directory, &stats) == 0 else { return 1 << 30 }
        let free = Int(stats.f_bavail) &* Int(stats.f_frsize)
        return min(8 << 30, free / 2)
    }
}
