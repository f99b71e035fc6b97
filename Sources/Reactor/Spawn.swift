#if canImport(Glibc)
import Glibc
#endif

/// Starting another program without `fork` (unsafe in a threaded process):
/// `posix_spawn`, handing it chosen descriptors at chosen numbers.
public enum Spawn {
    /// Starts `executable` with `arguments` (argv[0] included) and
    /// `environment`, giving it `handed[i]` as descriptor `3 + i` (and no
    /// other of ours: ours are close-on-exec). Returns the child's pid.
    public static func start(
        _ executable: String, arguments: [String], environment: [String], handing handed: [Int32]
    ) -> Result<pid_t, Errno> {
        // Copies above every target number first, so that moving one into
        // place never overwrites another still to be moved.
        var sources: [Int32] = []
        defer { sources.forEach { Glibc.close($0) } }
        for fd in handed {
            let copy = fcntl(fd, F_DUPFD_CLOEXEC, 3 + Int32(handed.count) + 16)
            guard copy >= 0 else { return .failure(.current) }
            sources.append(copy)
        }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        for (index, source) in sources.enumerated() {
            // dup2 clears close-on-exec on the copy it makes.
            posix_spawn_file_actions_adddup2(&actions, source, 3 + Int32(index))
        }
        var pid = pid_t()
        let status = withCStrings(arguments) { argv in
            withCStrings(environment) { envp in
                posix_spawn(&pid, executable, &actions, nil, argv, envp)
            }
        }
        return status == 0 ? .success(pid) : .failure(Errno(status))
    }

    /// A pipe whose ends are close-on-exec: (read, write).
    public static func pipe() -> Result<(Int32, Int32), Errno> {
        var ends: [Int32] = [0, 0]
        guard Glibc.pipe(&ends) == 0 else { return .failure(.current) }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        return .success((ends[0], ends[1]))
    }

    /// The path of the running executable, as it is on disk now: after a
    /// package upgrade replaced it, the new file at the same path.
    public static var executablePath: String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let length = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard length > 0 else { return nil }
        var path = String(decoding: buffer[..<length].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if path.hasSuffix(" (deleted)") { path.removeLast(" (deleted)".count) }
        return path
    }

    /// The environment of this process, as `NAME=value` strings.
    public static var currentEnvironment: [String] {
        var result: [String] = []
        var entry = environ
        while let pointer = entry.pointee {
            result.append(String(cString: pointer))
            entry += 1
        }
        return result
    }

    /// How a child ended, without waiting: nil while it runs.
    public static func reap(_ pid: pid_t) -> Int32? {
        var status: Int32 = 0
        guard waitpid(pid, &status, WNOHANG) == pid else { return nil }
        if status & 0x7f == 0 { return (status >> 8) & 0xff }
        return 128 + (status & 0x7f)
    }

    private static func withCStrings<R>(_ strings: [String], _ body: ([UnsafeMutablePointer<CChar>?]) -> R) -> R {
        let pointers = strings.map { strdup($0) } + [nil]
        defer { pointers.forEach { free($0) } }
        return body(pointers)
    }
}
