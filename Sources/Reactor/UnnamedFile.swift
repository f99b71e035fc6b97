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
