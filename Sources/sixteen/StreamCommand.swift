import ArgumentParser
import SixteenClient
#if canImport(Glibc)
import Glibc
#endif

struct StreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "The book's deadlock client: send BYTECOUNT octets before reading anything, then check the uppercase echo."
    )

    @OptionGroup var server: ServerAddress

    @Argument(help: "Octets to send (rounded up to a multiple of 16); suffixes K, M, G (KiB, MiB, GiB) allowed.")
    var byteCount: ByteCount

    @Option(help: "Seconds without progress in either direction before giving up.")
    var timeout = Seconds(10)

    func run() throws {
        let onTerminal = isatty(1) != 0
        let total = (byteCount.value + 15) / 16 * 16
        print("Sending \(total) bytes of data, in chunks of 16 bytes")
        fflush(nil)
        do {
            let result = try runDeadlockStream(host: server.host, port: server.port, byteCount: total, stallTimeout: timeout.duration) { progress in
                guard onTerminal else { return }
                print("\r  \(progress.sent) bytes sent, \(progress.received) bytes received", terminator: "")
                fflush(nil)
            }
            if onTerminal { print("") }
            let rate = (result.megabytesPerSecond * 10).rounded() / 10
            let seconds = (result.seconds * 1000).rounded() / 1000
            print("Sent \(total) octets and received \(result.octets) correct uppercase octets in \(seconds) s (\(rate) MB/s)")
            fflush(nil)
        } catch {
            if onTerminal { print("") }
            throw CommandFailure(message: error.description)
        }
    }
}
