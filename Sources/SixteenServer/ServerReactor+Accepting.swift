#if canImport(Glibc)
import Glibc
#endif
import Logging
import Reactor

/// The kinds of warning a reactor rate-limits, each on its own.
enum ReactorWarning: Int, WarningKind {
    case outOfDescriptors
    case acceptFailed
    case rejectedPerAddress

    var summary: String {
        switch self {
        case .outOfDescriptors: "connections shed for want of descriptors"
        case .acceptFailed: "accept failures"
        case .rejectedPerAddress: "connections rejected by --max-connections-per-ip"
        }
    }
}

extension ServerReactor {
    /// Accepts up to a batch, so a flood of new connections cannot starve
    /// established ones; stops at the reactor's connection cap.
    func acceptBatch() {
        for _ in 0..<settings.acceptBatch {
            guard takePlace() else {
                pauseAtCap()
                return
            }
            let outcome = Socket.accept(listenerFD, peer: settings.addressLimit == nil ? nil : peerStorage)
            if case .accepted = outcome {} else { sharedLimitBorrowed?._withUnsafeGuaranteedRef { $0.release() } }
            switch outcome {
            case .accepted(let fd):
                admit(fd)
            case .wouldBlock:
                return
            case .retry:
                continue
            case .outOfResources(let error):
                shedForDescriptors(error)
                return
            case .failed(let error):
                counts.add(.acceptErrors)
                warnings.warn(.acceptFailed, now: now.nanoseconds, "accept failed on reactor \(index): \(error); pausing accepts for 100 ms")
                pauseAccepting()
                return
            }
        }
    }

    /// Out of descriptors: the pending connection stays in the backlog and
    /// the listener stays readable, so doing nothing would spin at 100% CPU.
    /// Free the spare descriptor, accept and close what waits (the clients
    /// see the connection end at once), and take the spare back. When that
    /// sheds nothing (no spare, another thread took the freed descriptor, or
    /// the kernel is out of memory rather than descriptors), stop watching the
    /// listener for a moment instead.
    private func shedForDescriptors(_ error: Errno) {
        let outOfDescriptors = error.code == EMFILE || error.code == ENFILE
        if outOfDescriptors {
            warnings.warn(.outOfDescriptors, now: now.nanoseconds, "out of descriptors (\(error)) on reactor \(index): shedding new connections; raise the limit (ulimit -n)")
        } else {
            warnings.warn(.acceptFailed, now: now.nanoseconds, "cannot accept on reactor \(index): \(error); pausing accepts for 100 ms")
        }
        guard outOfDescriptors, spareFD >= 0 else {
            pauseAccepting()
            return
        }
        Socket.close(spareFD)
        spareFD = -1
        var shed = 0
        for _ in 0..<settings.acceptBatch {
            guard case .accepted(let fd) = Socket.accept(listenerFD) else { break }
            Socket.abort(fd)
            shed += 1
        }
        counts.add(.acceptShed, shed)
        spareFD = Self.openSpare()
        if spareFD < 0 || shed == 0 { pauseAccepting() }
    }

    private func pauseAccepting() {
        listener.stop()
        acceptPause.start(after: 0.1)
    }

    func resumeAccepting() {
        if spareFD < 0 { spareFD = Self.openSpare() }
        if listenerOpen && !pausedAtCap { listener.start() }
    }

    /// A place under the cap for one more connection: the shared cap's, or
    /// this reactor's own.
    @inline(__always)
    private func takePlace() -> Bool {
        if let limit = sharedLimitBorrowed { return limit._withUnsafeGuaranteedRef { $0.reserve() } }
        if let cap = settings.connectionCap { return table.activeCount < cap }
        return true
    }

    /// Whether a connection could be taken now (without taking it).
    private var belowCap: Bool {
        if let limit = settings.sharedLimit { return limit.current < limit.cap }
        if let cap = settings.connectionCap { return table.activeCount < cap }
        return true
    }

    /// At the cap: stop accepting; new connections wait in the listen queue
    /// until a place frees up (here, or in another reactor, which wakes this one).
    private func pauseAtCap() {
        guard !pausedAtCap else { return }
        pausedAtCap = true
        pausedSince = now
        listener.stop()
        counts.set(.accepting, 0)
        counts.add(.acceptPauses)
        if settings.sharedLimit?.pause(index) == true { resumeBelowCap() }
    }

    /// A place may have freed up: accept again if so.
    func resumeBelowCap() {
        guard pausedAtCap, belowCap else { return }
        pausedAtCap = false
        settings.sharedLimit?.resume(index)
        counts.add(.acceptPausedNanoseconds, Int(max(0, MonotonicClock.nanoseconds() - pausedSince.nanoseconds)))
        guard listenerOpen, !draining else { return }
        counts.set(.accepting, 1)
        if !acceptPause.isActive { listener.start() }
    }

    /// At the start of a drain: everything already in the listen queue has
    /// completed its handshake (and may have sent its request), and closing
    /// the listener would reset it. Take it all first, whatever the cap.
    func acceptWhatWaits() {
        guard listenerOpen else { return }
        while true {
            settings.sharedLimit?.reserveBeyondCap()
            switch Socket.accept(listenerFD, peer: settings.addressLimit == nil ? nil : peerStorage) {
            case .accepted(let fd):
                admit(fd)
                continue
            case .retry:
                settings.sharedLimit?.release()
                continue
            case .outOfResources(let error):
                settings.sharedLimit?.release()
                shedForDescriptors(error)
            case .wouldBlock, .failed:
                settings.sharedLimit?.release()
            }
            return
        }
    }

    /// Stops accepting for good (a drain): the listener is closed.
    func closeListener() {
        counts.set(.accepting, 0)
        if pausedAtCap {
            pausedAtCap = false
            settings.sharedLimit?.resume(index)
        }
        guard listenerOpen else { return }
        listener.stop()
        acceptPause.stop()
        Socket.close(listenerFD)
        listenerOpen = false
    }

    /// Opens the session, unless the client's address holds its
    /// `--max-connections-per-ip` already: then the connection is closed at
    /// once, counted, and warned about (rate-limited).
    @inline(__always)
    private func admit(_ fd: Int32) {
        guard let addressLimit = settings.addressLimit else { return open(fd) }
        let key = addressLimit.key(peerStorage)
        guard addressLimit.admit(key) else {
            counts.add(.rejectedPerAddress)
            warnings.warn(.rejectedPerAddress, now: now.nanoseconds,
                          "Rejected a connection from \(SocketAddress(storage: peerStorage.pointee)?.host ?? "?"): it holds \(addressLimit.cap) already (--max-connections-per-ip)")
            Socket.close(fd)
            settings.sharedLimit?.release()
            return
        }
        open(fd, addressKey: key)
    }

    /// Keeps `key` for `slot`, growing the side table with the connection table.
    func keepAddressKey(_ key: UInt64, for slot: Int) {
        if slot >= addressKeyCapacity {
            let capacity = table.capacity
            let keys = UnsafeMutablePointer<UInt64>.allocate(capacity: capacity)
            if let old = addressKeys {
                keys.moveInitialize(from: old, count: addressKeyCapacity)
                old.deallocate()
            }
            (keys + addressKeyCapacity).initialize(repeating: 0, count: capacity - addressKeyCapacity)
            addressKeys = keys
            addressKeyCapacity = capacity
        }
        addressKeys![slot] = key
    }

    static func openSpare() -> Int32 {
        Glibc.open("/dev/null", O_RDONLY | O_CLOEXEC)
    }
}
