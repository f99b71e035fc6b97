#if canImport(Glibc)
import Glibc
#endif

/// Prometheus' standard process metrics, read from `/proc` at scrape time
/// (the names and meanings of the official client libraries).
enum ProcessMetrics {
    static let cpu = MetricFamily("process_cpu_seconds_total", .counter, "Total user and system CPU time spent in seconds.")
    static let resident = MetricFamily("process_resident_memory_bytes", .gauge, "Resident memory size in bytes.")
    static let openFDs = MetricFamily("process_open_fds", .gauge, "Number of open file descriptors.")
    static let maxFDs = MetricFamily("process_max_fds", .gauge, "Maximum number of open file descriptors.")
    static let startTime = MetricFamily("process_start_time_seconds", .gauge, "Start time of the process since unix epoch in seconds.")

    static func append(to snapshot: inout MetricsSnapshot) {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        if let stat = statFields() {
            if let user = Double(stat[11]), let system = Double(stat[12]) {
                snapshot.append(cpu, Sample(labels: [], value: (user + system) / ticks))
            }
            if let pages = Double(stat[21]) {
                snapshot.append(resident, Sample(labels: [], value: pages * Double(sysconf(Int32(_SC_PAGESIZE)))))
            }
            if let started = Double(stat[19]), let boot = bootTime() {
                snapshot.append(startTime, Sample(labels: [], value: boot + started / ticks))
            }
        }
        if let open = openDescriptors() {
            snapshot.append(openFDs, Sample(labels: [], value: Double(open)))
        }
        var limit = rlimit()
        if getrlimit(RLIMIT_NOFILE_VALUE, &limit) == 0 {
            snapshot.append(maxFDs, Sample(labels: [], value: Double(limit.rlim_cur)))
        }
    }

    /// `/proc/self/stat` from field 3 on (after the command name, which may
    /// hold spaces and parentheses): index 0 is field 3.
    private static func statFields() -> [Substring]? {
        guard let text = readSmallFile("/proc/self/stat"), let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        return fields.count > 21 ? fields : nil
    }

    /// When the machine booted, in seconds since the epoch (`btime`).
    private static func bootTime() -> Double? {
        guard let text = readSmallFile("/proc/stat") else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("btime ") {
            return Double(line.dropFirst("btime ".count))
        }
        return nil
    }

    /// Entries of `/proc/self/fd`, less the one `opendir` itself holds.
    private static func openDescriptors() -> Int? {
        guard let directory = opendir("/proc/self/fd") else { return nil }
        defer { closedir(directory) }
        var count = 0
        while let entry = readdir(directory) {
            let first = entry.pointee.d_name.0
            if first != UInt8(ascii: ".") { count += 1 }
        }
        return max(0, count - 1)
    }
}

private let RLIMIT_NOFILE_VALUE = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)

/// A small file's text (`/proc` files report size 0, so read until EOF).
func readSmallFile(_ path: String, limit: Int = 1 << 16) -> String? {
    let fd = open(path, O_RDONLY | O_CLOEXEC)
    guard fd >= 0 else { return nil }
    defer { close(fd) }
    var bytes: [UInt8] = []
    var chunk = [UInt8](repeating: 0, count: 4096)
    while bytes.count < limit {
        let n = read(fd, &chunk, chunk.count)
        if n < 0 && errno == EINTR { continue }
        if n <= 0 { break }
        bytes += chunk[..<n]
    }
    return String(decoding: bytes, as: UTF8.self)
}
