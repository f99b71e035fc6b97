#if canImport(Glibc)
import Glibc
#endif
import CLibEv

/// Files with no name: they vanish with their last descriptor, however the
/// process ends, so nothing is ever left behind on disk.
public enum UnnamedFile {
    /// A new, empty, read-write, close-on-exec file in `directory`, already
    /// unlinked: `O_TMPFILE` where the file system has it, otherwise
    /// `mkstemp` and an immediate `unlink`.
    public static func create(in directory: String) -> Result<Int32, Errno> {
        let fd = open(directory, SIXTEEN_O_TMPFILE | O_RDWR | O_CLOEXEC, 0o600)
        if fd >= 0 { return .success(fd) }
        let openError = Errno.current
        guard openError.code == EOPNOTSUPP || openError.code == EISDIR || openError.code == EINVAL else {
            return .failure(openError)
        }
        var template = Array((directory + "/sixteen-spill-XXXXXX").utf8CString)
        let named = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if named < 0 { return .failure(.current) }
        _ = fcntl(named, F_SETFD, FD_CLOEXEC)
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        return .success(named)
    }

    /// Why files cannot be made in `directory`, in words: whether it exists,
    /// is a directory, is writable, and otherwise what its file system said
    /// to an unnamed file and to a named one (`/proc` refuses both, with
    /// different errors; the second alone would mislead).
    public static func explainFailure(in directory: String) -> String {
        var info = stat()
        guard stat(directory, &info) == 0 else { return "\(Errno.current)" }
        guard info.st_mode & S_IFMT == S_IFDIR else { return "not a directory" }
        guard access(directory, W_OK) == 0 else { return "not writable by this user (uid \(geteuid())): \(Errno.current)" }
        let unnamed = open(directory, SIXTEEN_O_TMPFILE | O_RDWR | O_CLOEXEC, 0o600)
        if unnamed >= 0 {
            close(unnamed)
            return "it takes files now; the failure was passing"
        }
        let unnamedError = Errno.current
        var template = Array((directory + "/sixteen-spill-XXXXXX").utf8CString)
        let named = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        if named >= 0 {
            close(named)
            _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
            return "it takes named files but not unnamed ones (O_TMPFILE: \(unnamedError))"
        }
        return "its file system does not take files (unnamed: \(unnamedError); named: \(Errno.current))"
    }

    /// Reserves `length` bytes of disk for `fd` from `offset`, without
    /// changing its size (`fallocate`, `FALLOC_FL_KEEP_SIZE`): later writes
    /// there cannot fail for want of space. nil, or why not.
    public static func reserve(_ fd: Int32, offset: Int64, length: Int64) -> Errno? {
        while true {
            if fallocate(fd, SIXTEEN_FALLOC_FL_KEEP_SIZE, off_t(offset), off_t(length)) == 0 { return nil }
            if errno != EINTR { return .current }
        }
    }
}
