import Reactor

/// What a reactor does besides serving connections: its heartbeat, giving
/// memory back after a flood, and stopping, by a drain (stop accepting, let
/// sessions in flight finish within the shutdown timeout) or an abort (close
/// everything now). Both ways end by stopping the reactor's own watchers and
/// breaking its loop.
extension ServerReactor {
    /// Once a second, whatever else happens: the loop turns (so a health
    /// check can tell a stalled loop from an idle one), and rate-limited
    /// warnings say what they held back.
    func heartbeat() {
        warnings.tick(now: now.nanoseconds)
        handler.heartbeat(now: now.nanoseconds)
        giveBackMemoryAfterAFlood()
    }

    /// Heartbeats a chunk of the connection table must stay empty before it
    /// is given back: long enough that a table breathing with the load keeps
    /// its chunks (and serving allocates nothing), short enough that memory
    /// comes back soon after a flood.
    static var emptyBeatsBeforeRelease: Int { 5 }

    /// Chunks of the connection table empty for a while go back to the
    /// allocator, the deadline heap and side tables shrink to match, and the
    /// allocator hands free pages back to the kernel.
    private func giveBackMemoryAfterAFlood() {
        guard table.shrink(afterEmptyBeats: Self.emptyBeatsBeforeRelease) else { return }
        deadlines.shrink(slotCapacity: table.capacity)
        if let keys = addressKeys, addressKeyCapacity > table.capacity {
            let smaller = UnsafeMutablePointer<UInt64>.allocate(capacity: table.capacity)
            smaller.moveInitialize(from: keys, count: table.capacity)
            keys.deallocate()
            addressKeys = smaller
            addressKeyCapacity = table.capacity
        }
        returnFreeMemoryToTheSystem()
    }

    // MARK: Stopping

    /// Stops accepting; sessions in flight get `shutdownTimeout` to finish.
    func beginDrain() {
        guard !draining else { return }
        draining = true
        acceptWhatWaits()
        closeListener()
        if table.activeCount == 0 {
            endDrain()
        } else {
            drainDeadline.start(after: Double(settings.shutdownTimeout.nanoseconds) / 1e9)
        }
    }

    /// Closes every session at once and stops.
    func abortNow() {
        draining = true
        closeListener()
        abortRemaining()
    }

    func abortRemaining() {
        table.forEachActive { slot in
            let entry = table[slot]
            if debugEnabled { logger.debug("Session \(ConnectionInfo(fd: entry.pointee.fd).peer) aborted at shutdown") }
            finish(slot, entry, .aborted)
        }
        endDrain()
    }

    func endDrain() {
        drainDeadline.stop()
        drainWatcher.stop()
        abortWatcher.stop()
        resumeWatcher.stop()
        heartbeatTimer.stop()
        let time = MonotonicClock.nanoseconds()
        warnings.flush(now: time)
        handler.stopping(now: time)
        loop.breakAll()
    }
}
