import ArgumentParser
import Reactor
import SixteenServer
#if canImport(Glibc)
import Glibc
#endif

/// `sixteen`: the daemon, and the clients that talk to it.
struct Sixteen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sixteen",
        abstract: "An event-driven, nonblocking TCP server (and its clients) for the protocols of Foundations of Python Network Programming, chapter 3.",
        version: BuildInfo.versionLine,
        subcommands: [ServerCommand.self, ClientCommand.self, StreamCommand.self, LoadCommand.self, ReportCommand.self, StatsCommand.self]
    )

    static var commandNames: [String] { configuration.subcommands.map { $0.configuration.commandName ?? "" } }
}

/// A failure at run time (not a usage error): one line on stderr, exit 1.
struct CommandFailure: Error {
    let message: String
    var exitCode: Int32 = 1
}

/// Exit codes: 0 success, 1 a run-time failure, 2 a usage error (bad flag or
/// value). Every failure is one line on stderr; nothing prints a stack trace.
@main
enum Entry {
    static func main() {
        let arguments = Array(CommandLine.arguments.dropFirst())
        let subcommand = arguments.first.flatMap { Sixteen.commandNames.contains($0) ? $0 : nil }
        let helpPointer = "(see 'sixteen \(subcommand.map { "\($0) " } ?? "")--help')"
        if arguments.first == "help", arguments.count > 1, !Sixteen.commandNames.contains(arguments[1]) {
            fail("unknown command '\(arguments[1])': the commands are \(Sixteen.commandNames.joined(separator: ", ")) (see 'sixteen --help')", code: 2)
        }
        if let first = arguments.first, !first.hasPrefix("-"), first != "help", subcommand == nil {
            fail("unknown command '\(first)': the commands are \(Sixteen.commandNames.joined(separator: ", ")) (see 'sixteen --help')", code: 2)
        }
        let command: ParsableCommand
        do {
            command = try Sixteen.parseAsRoot(arguments)
        } catch {
            if Sixteen.exitCode(for: error) == .success {
                Sixteen.exit(withError: error)  // --help, --version
            }
            fail("\(usageMessage(for: error, arguments: arguments)) \(helpPointer)", code: 2)
        }
        do {
            var command = command
            try command.run()
        } catch let failure as CommandFailure {
            fail(failure.message, code: failure.exitCode)
        } catch {
            // `--help` parses into ArgumentParser's help command, whose run()
            // throws the help request: print it and exit 0 like the others.
            switch Sixteen.exitCode(for: error) {
            case .success: Sixteen.exit(withError: error)
            case .validationFailure: fail("\(usageMessage(for: error, arguments: arguments)) \(helpPointer)", code: 2)
            default: fail(Sixteen.message(for: error), code: 1)
            }
        }
    }

    /// ArgumentParser's message, with a negative number where an argument
    /// was expected (which it takes for an unknown option, `-1`) said for
    /// what it is.
    static func usageMessage(for error: Error, arguments: [String]) -> String {
        let message = Sixteen.message(for: error)
        if message.hasPrefix("Unknown option '-") || message.hasPrefix("Missing expected argument"),
           let negative = arguments.first(where: { $0.hasPrefix("-") && Double($0.dropFirst()) != nil }) {
            return "invalid value '\(negative)': negative numbers are never valid here"
        }
        return message
    }

    /// Writes `sixteen: message` as one line (a list of `- item` lines, as
    /// ArgumentParser writes choices, becomes `item, item`) and exits.
    static func fail(_ message: String, code: Int32) -> Never {
        fflush(nil)
        var parts: [String] = []
        var items: [String] = []
        for line in message.split(separator: "\n", omittingEmptySubsequences: true) {
            let text = line.trimmingSpaces()
            if text.hasPrefix("- ") {
                items.append(String(text.dropFirst(2)))
                continue
            }
            if !items.isEmpty { parts.append(items.joined(separator: ", ")); items = [] }
            parts.append(text)
        }
        if !items.isEmpty { parts.append(items.joined(separator: ", ")) }
        let line = "sixteen: " + parts.joined(separator: " ") + "\n"
        var bytes = Array(line.utf8)
        _ = write(2, &bytes, bytes.count)
        exit(code)
    }
}

extension Substring {
    func trimmingSpaces() -> String {
        String(drop { $0 == " " }.reversed().drop { $0 == " " }.reversed())
    }
}
