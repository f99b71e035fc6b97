#if canImport(Glibc)
import Glibc
#endif
import Reactor
import SixteenClient
import SixteenProtocol
import SixteenServer
import TestSupport
import XCTest

/// Spill files on a small tmpfs that the test mounts (CI runs as root):
/// `--max-spill` is never passed, every client gets all its octets exactly
/// or is closed and counted, and a file system that is full for a moment
/// costs a pause, not a session.
final class SpillFilesystemTests: ServerTestCase {
    private var mountPoint = ""

    override func setUpWithError() throws {
        try super.setUpWithError()
        mountPoint = try makeTemporaryDirectory(prefix: "sixteen-tmpfs")
    }

    override func tearDown() {
        super.tearDown()  // the servers first: their spill files live on the mount
        if !mountPoint.isEmpty {
            _ = try? runToCompletion(URL(fileURLWithPath: "/bin/umount"), [mountPoint])
            rmdir(mountPoint)
        }
    }

    private func mountTmpfs(megabytes: Int) throws {
        let result = try runToCompletion(URL(fileURLWithPath: "/bin/mount"), ["-t", "tmpfs", "-o", "size=\(megabytes)m", "tmpfs", mountPoint])
        XCTAssertEqual(result.status, 0, "mounting a tmpfs needs root (CI runs as root): \(result.stderr)")
    }

    /// Bytes in use on the file system at `path`.
    private static func used(_ path: String) -> Int {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return -1 }
        return Int(stats.f_blocks - stats.f_bfree) * Int(stats.f_frsize)
    }

    private func startSpilling(maxSpill: Int, retry: Duration) throws -> Server {
        try startServer(ServerConfiguration(
            served: .upper(UpperConfiguration(
                limits: UpperLimits(idle: .seconds(30)),
                output: OutputLimits(highWaterMark: 64 << 10, memoryBudget: 512 << 10, spillDirectory: mountPoint,
                                     maxSpill: maxSpill, spillRetry: retry))),
            host: "127.0.0.1", port: 0, reactors: 2), level: .critical)
    }

    func testAFillingSpillFileSystemNeverPassesTheBudgetAndLosesNoOctet() throws {
        try mountTmpfs(megabytes: 48)
        let budget = 12 << 20
        let server = try startSpilling(maxSpill: budget, retry: .seconds(1))
        let peak = Lock(0)
        let watching = Lock(true)
        let watcher = try ReactorThread(name: "df") { [mountPoint] in
            while watching.withLock({ $0 }) {
                let now = Self.used(mountPoint)
                peak.withLock { $0 = max($0, now) }
                usleep(2_000)
            }
        }
        let outcomes = Tally()
        try onThreads(6) { _ in
            do {
                let result = try runDeadlockStream(host: "127.0.0.1", port: server.address.port, byteCount: 16 << 20, stallTimeout: .seconds(20))
                outcomes.add(result.octets == 16 << 20 ? "all octets" : "wrong count \(result.octets)")
            } catch {
                outcomes.add("closed")
            }
        }
        watching.withLock { $0 = false }
        watcher.join()
        let stats = statsAfter(server, ended: 6)
        XCTAssertEqual((outcomes["all octets"]) + outcomes["closed"], 6, "\(outcomes.all)")
        XCTAssertEqual(stats.streamsCompleted, outcomes["all octets"])
        XCTAssertEqual(stats.storageFailures, outcomes["closed"], "every closed client is counted as storage")
        XCTAssertGreaterThanOrEqual(stats.value("sixteen_spill_stalls_total"), 1, "the budget was reached")
        XCTAssertLessThanOrEqual(peak.withLock { $0 }, budget, "the tmpfs passed --max-spill")
        XCTAssertEqual(stats.value("sixteen_spill_allocated_bytes"), 0)
        XCTAssertEqual(stats.spillFiles, 0)
    }

    /// The file system is full (someone else's file) while a client spills
    /// within budget: the session stops reading, and goes on, whole, once
    /// the space comes back within `--spill-retry`.
    func testATransientlyFullFileSystemPausesTheSessionInsteadOfClosingIt() throws {
        try mountTmpfs(megabytes: 48)
        let filler = mountPoint + "/filler"
        let fd = open(filler, O_CREAT | O_WRONLY, 0o600)
        XCTAssertGreaterThanOrEqual(fd, 0)
        XCTAssertEqual(UnnamedFile.reserve(fd, offset: 0, length: 45 << 20), nil)
        close(fd)
        let server = try startSpilling(maxSpill: 64 << 20, retry: .seconds(10))
        let freeing = try ReactorThread(name: "freeing") {
            XCTAssertTrue(eventually { server.metrics().value("sixteen_spill_stalls_total") >= 1 }, "the session never stalled")
            usleep(300_000)
            unlink(filler)
        }
        let result = try runDeadlockStream(host: "127.0.0.1", port: server.address.port, byteCount: 24 << 20, stallTimeout: .seconds(20))
        freeing.join()
        XCTAssertEqual(result.octets, 24 << 20)
        let stats = statsAfter(server, ended: 1)
        XCTAssertEqual(stats.streamsCompleted, 1)
        XCTAssertEqual(stats.storageFailures, 0)
        XCTAssertEqual(stats.value("sixteen_spill_stalls_total"), 1)
    }

    /// Full for longer than `--spill-retry`: only that session ends.
    func testAFileSystemFullForTooLongEndsOnlyTheSessionThatNeedsTheSpace() throws {
        try mountTmpfs(megabytes: 8)
        let filler = mountPoint + "/filler"
        let fd = open(filler, O_CREAT | O_WRONLY, 0o600)
        XCTAssertEqual(UnnamedFile.reserve(fd, offset: 0, length: 6 << 20), nil)
        close(fd)
        let server = try startSpilling(maxSpill: 64 << 20, retry: .milliseconds(500))
        XCTAssertThrowsError(try runDeadlockStream(host: "127.0.0.1", port: server.address.port, byteCount: 24 << 20, stallTimeout: .seconds(20)))
        // A small stream that fits in memory is served beside it.
        XCTAssertEqual(try runDeadlockStream(host: "127.0.0.1", port: server.address.port, byteCount: 32 << 10, stallTimeout: .seconds(5)).octets, 32 << 10)
        let stats = statsAfter(server, ended: 2)
        XCTAssertEqual(stats.storageFailures, 1)
        XCTAssertEqual(stats.streamsCompleted, 1)
        unlink(filler)
    }
}
