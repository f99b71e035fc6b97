#if canImport(Glibc)
import Glibc
#endif

/// Giving up root after binding: a daemon serves the network as a user that
/// owns nothing.
public enum Privileges {
    public struct Account: Sendable, Equatable {
        public let name: String
        public let uid: uid_t
        public let gid: gid_t
    }

    public enum Failure: Error, Equatable, CustomStringConvertible {
        case noSuchUser(String)
        case cannot(String, Errno)

        public var description: String {
            switch self {
            case .noSuchUser(let name): "there is no user named '\(name)' (choose another with --user)"
            case .cannot(let step, let error): "cannot \(step): \(error)"
            }
        }
    }

    /// Whether the process runs as root.
    public static var isRoot: Bool { geteuid() == 0 }

    /// The account named `name`, from the password database.
    public static func account(named name: String) -> Account? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16 << 10)
        guard getpwnam_r(name, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return Account(name: name, uid: entry.pw_uid, gid: entry.pw_gid)
    }

    /// Becomes `account`: its group alone as supplementary groups, its gid,
    /// then its uid (in that order: once the uid is gone, so is the right to
    /// change the rest). Call before any thread starts.
    public static func become(_ account: Account) -> Failure? {
        var groups = [account.gid]
        if setgroups(1, &groups) != 0 { return .cannot("set the supplementary groups", .current) }
        if setgid(account.gid) != 0 { return .cannot("set the group to \(account.gid)", .current) }
        if setuid(account.uid) != 0 { return .cannot("set the user to \(account.name)", .current) }
        // A way back would mean the drop did not happen.
        if account.uid != 0, setuid(0) == 0 { return .cannot("give up root for good", Errno(EPERM)) }
        return nil
    }
}
