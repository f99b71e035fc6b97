#if canImport(Glibc)
import Glibc
#endif
import Reactor
import SixteenProtocol

/// `--max-connections-per-ip`: how many connections each client address
/// holds, over every reactor (`SO_REUSEPORT` spreads one address's
/// connections over all of them).
///
/// Off, it does not exist and costs nothing. On, each accept and each close
/// takes one uncontended-in-practice mutex for a dictionary lookup, and the
/// reactor keeps 8 octets per connection slot (the address key) in a side
/// table made only then. Addresses are kept as a keyed 64-bit hash (a random
/// key per process, so no client can aim at collisions); the dictionary
/// grows to the peak number of distinct addresses and never allocates after.
final class AddressLimit: Sendable {
    let cap: Int
    private let seed: UInt64
    private let counts = Lock<[UInt64: Int32]>([:])

    init(cap: Int, expectedAddresses: Int) {
        self.cap = cap
        seed = UInt64.random(in: 1...UInt64.max)
        counts.withLock { $0.reserveCapacity(min(expectedAddresses, 1 << 16)) }
    }

    /// The key of the host part of `address` (IPv4-mapped IPv6 counts as IPv4).
    func key(_ address: UnsafePointer<sockaddr_storage>) -> UInt64 {
        switch Int32(address.pointee.ss_family) {
        case AF_INET:
            let v4 = UnsafeRawPointer(address).load(as: sockaddr_in.self)
            return key(ipv4: UInt32(bigEndian: v4.sin_addr.s_addr))
        case AF_INET6:
            var v6 = UnsafeRawPointer(address).load(as: sockaddr_in6.self)
            return withUnsafeBytes(of: &v6.sin6_addr) { bytes in
                key(ipv6High: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                    low: UInt64(bigEndian: bytes.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
        default:
            return mixed(0)
        }
    }

    /// The key of a client a PROXY header named.
    func key(_ address: ProxyAddress) -> UInt64 {
        address.isIPv6 ? key(ipv6High: address.high, low: address.low) : key(ipv4: UInt32(truncatingIfNeeded: address.low))
    }

    private func key(ipv4: UInt32) -> UInt64 { mixed(UInt64(ipv4)) }

    /// `::ffff:a.b.c.d` is the IPv4 client a.b.c.d.
    private func key(ipv6High high: UInt64, low: UInt64) -> UInt64 {
        if high == 0, low >> 32 == 0xFFFF { return key(ipv4: UInt32(truncatingIfNeeded: low)) }
        return mixed(high, low)
    }

    /// The words mixed under this process's random key (never 0: 0 means none).
    private func mixed(_ first: UInt64, _ second: UInt64? = nil) -> UInt64 {
        func mix(_ hash: UInt64, _ word: UInt64) -> UInt64 {
            let product = (hash ^ word) &* 0x9e37_79b9_7f4a_7c15
            return product ^ product >> 31
        }
        var hash = mix(seed, first)
        if let second { hash = mix(hash, second) }
        return hash | 1
    }

    /// Counts one more connection from `key`; false if it holds `cap` already.
    func admit(_ key: UInt64) -> Bool {
        counts.withLock { counts in
            let held = counts[key, default: 0]
            guard held < cap else { return false }
            counts[key] = held + 1
            return true
        }
    }

    /// One connection from `key` closed.
    func release(_ key: UInt64) {
        counts.withLock { counts in
            guard let held = counts[key] else { return }
            if held <= 1 { counts.removeValue(forKey: key) } else { counts[key] = held - 1 }
        }
    }

    /// Addresses holding connections now.
    var addresses: Int { counts.withLock { $0.count } }
}
