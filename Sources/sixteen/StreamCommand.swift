import ArgumentParser
import SixteenClient
import SixteenProtocol
#if canImport(Glibc)
import Glibc
#endif

struct StreamCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stream",
        abstract: "The book's deadlock client: send BYTECOUNT octets before reading anything, then check the uppercase echo."
    )

    @OptionGroup var server: ServerAddress

    @Argument(help: ArgumentHelp("Octets to send, rounded up to whole 16-octet frames; suffixes K, M, G (KiB, MiB, GiB) allowed.", valueName: "bytecount"),
              transform: ByteCount.parser(minimum: 1, maximum: 1 << 40))
    var byteCount: ByteCount

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds without progress in either direction before giving up (default: 10).", valueName: "seconds"),
            transform: Seconds.positive)
    var timeout = Seconds(10)

    func run() throws {
        let onTerminal = isatty(1) != 0
        // 1 << 40 rounds up without overflow: the parser keeps it in range.
        let total = Frames.roundUp(byteCount.value)!
        do {
            let result = try runDeadlockStream(
                host: server.host, port: server.port, byteCount: total, stallTimeout: timeout.duration,
                connected: {
                    print("Sending \(total) bytes of data, in chunks of 16 bytes")
                    fflush(nil)
                }
            ) { progress in
                guard onTerminal else { return }
                print("\r  \(progress.sent) bytes sent, \(progress.received) bytes received", terminator: "")
                fflush(nil)
            }
            if onTerminal { print("") }
            print("Sent \(total) octets and received \(result.octets) correct uppercase octets in \(elapsed(result.seconds))\(rate(result))")
            fflush(nil)
        } catch {
            if onTerminal { print("") }
            throw CommandFailure(message: error.description)
        }
    }

    /// `2.736 s`, or `0.214 ms` for what takes less than a millisecond.
    private func elapsed(_ seconds: Double) -> String {
        seconds >= 0.001 ? "\(String(format3: seconds)) s" : "\(String(format3: seconds * 1000)) ms"
    }

    /// ` (392.4 MB/s)`; nothing when the time is too short to say.
    private func rate(_ result: StreamResult) -> String {
        guard result.seconds >= 0.001 else { return "" }
        return " (\(String(format3: result.megabytesPerSecond).dropLast(2)) MB/s)"
    }
}

extension String {
    /// Three decimals, without Foundation.
    init(format3 value: Double) {
        let thousandths = Int64((value * 1000).rounded())
        let fraction = abs(thousandths % 1000)
        self = "\(thousandths / 1000)." + (fraction < 10 ? "00" : fraction < 100 ? "0" : "") + "\(fraction)"
    }
}
