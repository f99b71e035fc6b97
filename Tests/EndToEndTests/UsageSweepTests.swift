import Foundation
import Reactor
import TestSupport
import XCTest

/// Every option of every command (listed by the binary itself, from
/// `--experimental-dump-help`) given bad values: no crash, no hang, no
/// stack trace; a usage error is one line on stderr and exit 2, a run-time
/// error one line and exit 1. Servers bind 192.0.2.1 (TEST-NET-1, never an
/// address of this machine), so a value that is valid fails at bind at once;
/// clients connect to port 1 of 127.0.0.1, refused at once. Nothing is sent
/// off this machine. Every run has a fresh directory of its own as its
/// working directory (removed afterwards), where a valid `--hlog` value
/// puts its file.
final class UsageSweepTests: XCTestCase {
    private let badValues = ["-1", "0", "99999999999999999999999", "garbage", "1.5G", "1e20", "", "-", "0x10", "NaN"]

    private struct Run: Sendable {
        let arguments: [String]
        let status: Int32?
        let stderr: String
    }

    /// Positional arguments and options each command needs to run at all.
    private func base(_ command: String, replacing option: String) -> [String] {
        switch command {
        case "server": return [command, "192.0.2.1"]
        case "client": return [command, "127.0.0.1"] + (option == "p" ? [] : ["-p", "1"])
        case "stream": return [command, "127.0.0.1", "16"] + (option == "p" ? [] : ["-p", "1"])
        case "load": return [command, "127.0.0.1"] + (option == "p" ? [] : ["-p", "1"]) + (["n", "d"].contains(option) ? [] : ["-n", "1"])
        case "stats": return [command, "127.0.0.1:1"]
        case "report": return [command, "missing.hlog"]
        default: return [command]
        }
    }

    func testEveryOptionWithBadValues() throws {
        let dump = try runToCompletion(sixteenExecutable, ["--experimental-dump-help"])
        let root = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        let commands = try XCTUnwrap((root["command"] as? [String: Any])?["subcommands"] as? [[String: Any]])
        var cases: [[String]] = []
        for command in commands {
            let name = try XCTUnwrap(command["commandName"] as? String)
            guard name != "help" else { continue }
            for argument in command["arguments"] as? [[String: Any]] ?? [] where argument["kind"] as? String == "option" {
                let names = (argument["names"] as? [[String: Any]] ?? []).compactMap { $0["name"] as? String }
                guard let option = names.first else { continue }
                let flag = option.count == 1 ? "-\(option)" : "--\(option)"
                for value in badValues {
                    cases.append(base(name, replacing: option) + [flag, value])
                }
            }
            // Bad positional values.
            switch name {
            case "stream": cases += badValues.map { [name, "127.0.0.1", $0, "-p", "1"] }
            case "stats", "report": cases += badValues.map { [name, $0] }
            default: break
            }
        }
        XCTAssertGreaterThan(cases.count, 300, "the sweep found too few options")
        let all = cases
        let scratch = FileManager.default.temporaryDirectory.appendingPathComponent("sixteen-sweep-\(getpid())-\(MonotonicClock.nanoseconds())")
        defer { try? FileManager.default.removeItem(at: scratch) }
        let runs = Lock<[Run]>([])
        let next = Lock(0)
        try onThreads(4) { _ in
            while true {
                let index = next.withLock { (value: inout Int) -> Int in
                    defer { value += 1 }
                    return value
                }
                guard index < all.count else { return }
                let directory = scratch.appendingPathComponent("\(index)")
                try? FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
                let result = try? runToCompletion(URL(fileURLWithPath: "/bin/sh"),
                                                  ["-c", "cd \"$0\" && exec \"$@\"", directory.path, sixteenExecutable.path] + all[index],
                                                  timeout: .seconds(15))
                runs.withLock { $0.append(Run(arguments: all[index], status: result?.status, stderr: result?.stderr ?? "(did not run)")) }
            }
        }
        var usageErrors = 0
        for run in runs.withLock({ $0 }) {
            let what = run.arguments.joined(separator: " ")
            XCTAssertNotNil(run.status, "\(what): hung")
            guard let status = run.status else { continue }
            XCTAssertTrue([0, 1, 2].contains(status), "\(what): exit \(status): \(run.stderr)")
            for sign in ["Fatal error", "Backtrace", "Swift runtime failure", "Crashed", "crashed"] {
                XCTAssertFalse(run.stderr.contains(sign), "\(what): \(run.stderr)")
            }
            if status != 0 {
                let lines = run.stderr.split(separator: "\n")
                XCTAssertEqual(lines.count, 1, "\(what): \(run.stderr)")
                XCTAssertTrue(run.stderr.hasPrefix("sixteen: "), "\(what): \(run.stderr)")
            }
            if status == 2 {
                usageErrors += 1
                XCTAssertTrue(run.stderr.contains("--help')"), "\(what): a usage error points to help: \(run.stderr)")
            }
        }
        XCTAssertGreaterThan(usageErrors, cases.count / 2, "most bad values must be usage errors")
    }

    /// The messages the issue named, exactly.
    func testTheMessagesSayWhy() throws {
        let expectations: [([String], String)] = [
            (["stream", "127.0.0.1", "9223372036854775807"], "sixteen: The value '9223372036854775807' is invalid for '<bytecount>': the size must be a whole number of octets from 1 to 1024G, optionally with K, M or G (KiB, MiB, GiB) (see 'sixteen stream --help')\n"),
            (["client", "127.0.0.1", "--timeout", "0"], "sixteen: The value '0' is invalid for '--timeout <seconds>': seconds must be a number more than 0 and at most 31536000 (a year) (see 'sixteen client --help')\n"),
            (["server", "--max-pending", "1.5G", "--protocol", "upper"], "sixteen: The value '1.5G' is invalid for '--max-pending <size>': sizes are a whole number of octets from 1 to 1024G, optionally with K, M or G (KiB, MiB, GiB) (see 'sixteen server --help')\n"),
            (["server", "-p", "-1"], "sixteen: The value '-1' is invalid for '-p <port>': must be a whole number from 0 to 65535 (see 'sixteen server --help')\n"),
            (["stream", "127.0.0.1", "-1"], "sixteen: invalid value '-1': negative numbers are never valid here (see 'sixteen stream --help')\n"),
            (["nosuch"], "sixteen: unknown command 'nosuch': the commands are server, client, stream, load, report, stats (see 'sixteen --help')\n"),
            (["help", "nosuch"], "sixteen: unknown command 'nosuch': the commands are server, client, stream, load, report, stats (see 'sixteen --help')\n"),
            (["server", "--protocol", "sixteen", "--spill-dir", "/nonexistent"], "sixteen: --spill-dir is an option of the upper protocol, and this server speaks only sixteen (--protocol upper, or --listen upper:PORT) (see 'sixteen server --help')\n"),
            (["load", "127.0.0.1", "-n", "1", "--bytes", "1G"], "sixteen: --bytes is an option of --protocol upper, not sixteen (see 'sixteen load --help')\n"),
            (["server", "--protocol", "upper", "--high-water-mark", "32M"], "sixteen: --high-water-mark 32M is more than --memory-budget 16M: no connection could hold it (see 'sixteen server --help')\n"),
            (["server", "--protocol", "upper", "--high-water-mark", "16K", "--memory-budget", "100K", "--reactors", "2"], "sixteen: --memory-budget 100K is less than one 64K chunk for each of the 2 reactors (see 'sixteen server --help')\n"),
            (["load", "127.0.0.1", "-n", "1", "--interval", "0.05", "--json"], "sixteen: The value '0.05' is invalid for '--interval <seconds>': seconds must be a number from 0.1 to 3600 (an hour) (see 'sixteen load --help')\n"),
            (["load", "127.0.0.1", "-n", "1", "--hlog", "-"], "sixteen: The value '-' is invalid for '--hlog <file>': give the path of the file to write (not standard output: the summary goes there) (see 'sixteen load --help')\n"),
            (["load", "127.0.0.1", "-n", "1", "--start-at", "15:00"], "sixteen: The value '15:00' is invalid for '--start-at <time>': give an RFC 3339 time such as 2026-11-26T15:00:00Z (fractions of a second and offsets such as +01:00 allowed) or Unix seconds such as @1790000000.5 (see 'sixteen load --help')\n"),
            (["report", "a.hlog", "--tag", "tagged"], "sixteen: The value 'tagged' is invalid for '--tag <tag>'. Please provide one of 'corrected' and 'uncorrected'. (see 'sixteen report --help')\n"),
            (["load", "127.0.0.1", "-n", "1", "--source", "127.0.0.1-127.255.255.255"], "sixteen: The value '127.0.0.1-127.255.255.255' is invalid for '--source <range>': give an IPv4 address or a range FIRST-LAST of at most 65,536 addresses, e.g. 127.0.0.1-127.0.0.8 (see 'sixteen load --help')\n"),
            (["server", "--log-level", "trace"], "sixteen: The value 'trace' is invalid for '--log-level <log-level>'. Please provide one of the following: debug, info, notice, warning, error, critical (see 'sixteen server --help')\n"),
        ]
        for (arguments, expected) in expectations {
            let result = try runToCompletion(sixteenExecutable, arguments)
            XCTAssertEqual(result.status, 2, "\(arguments)")
            XCTAssertEqual(result.stderr, expected, "\(arguments)")
        }
        let warmup = try runToCompletion(sixteenExecutable, ["load", "127.0.0.1", "-p", "1", "-n", "1", "--warmup", "0"])
        XCTAssertEqual(warmup.status, 1, "--warmup 0 is the default, so it is accepted (and the refused connection fails the run): \(warmup.stderr)")
    }

    func testHelpTextsReadWell() throws {
        for command in ["server", "client", "stream", "load", "report", "stats"] {
            let help = try runToCompletion(sixteenExecutable, [command, "--help"])
            XCTAssertEqual(help.status, 0)
            XCTAssertFalse(help.stdout.contains("\\"), "\(command): a literal backslash in the help")
            // Each option's help (its first line starts "  -" or "  <") says its default once at most.
            var blocks: [String] = []
            for line in help.stdout.split(separator: "\n") {
                if line.hasPrefix("  -") || line.hasPrefix("  <") || blocks.isEmpty { blocks.append(String(line)) } else { blocks[blocks.count - 1] += " " + line }
            }
            for block in blocks where block.components(separatedBy: "(default:").count > 2 {
                XCTFail("\(command): a default said twice: \(block)")
            }
            XCTAssertFalse(help.stdout.contains("-p <p>"), "\(command): the port placeholder")
        }
        let stream = try runToCompletion(sixteenExecutable, ["stream", "no.such.host.invalid", "16"])
        XCTAssertEqual(stream.status, 1)
        XCTAssertEqual(stream.stdout, "", "nothing is announced before the name resolves")
        XCTAssertEqual(stream.stderr.split(separator: "\n").count, 1, stream.stderr)
    }
}
