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

    @Argument(help: "The server's host name or address.")
    var host: String

    @Option(name: .short, help: "The server's TCP port.")
    var port: Int = 1060

    @Option(help: "Seconds the whole exchange may take.")
    var timeout = Seconds(10)

    func validate() throws {
        try validatePort(port)
        guard port != 0 else { throw ValidationError("port 0 cannot be connected to") }
    }

    func run() throws {
        do {
            let reply = try exchangeSixteen(host: host, port: port, timeout: timeout.duration) { local in
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
