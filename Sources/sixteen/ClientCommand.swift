import ArgumentParser
import SixteenClient
import SixteenProtocol
#if canImport(Glibc)
import Glibc
#endif

struct ClientCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "client",
        abstract: "The book's client: send 'Hi there, server', print the 16-octet reply."
    )

    @OptionGroup var server: ServerAddress

    @Option(parsing: .unconditional, help: ArgumentHelp("Seconds the whole exchange may take (default: 10).", valueName: "seconds"),
            transform: Seconds.positive)
    var timeout = Seconds(10)

    func run() throws {
        do {
            let reply = try exchangeSixteen(host: server.host, port: server.port, timeout: timeout.duration) { local in
                print("Client has been assigned socket name \(local?.pythonDescription ?? "(unknown)")")
                fflush(nil)
            }
            print("The server said \(pythonBytesLiteral(reply))")
            fflush(nil)
        } catch {
            throw CommandFailure(message: error.description)
        }
    }
}
