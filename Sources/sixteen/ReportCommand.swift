import ArgumentParser
import SixteenClient
#if canImport(Glibc)
import Glibc
#endif

/// Which latencies `sixteen report` merges: a tag of `sixteen load --hlog`'s logs.
enum ReportTag: String, ExpressibleByArgument, CaseIterable {
    case corrected, uncorrected

    var logTag: String {
        switch self {
        case .corrected: IntervalLogFormat.correctedTag
        case .uncorrected: IntervalLogFormat.uncorrectedTag
        }
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Merge the interval logs of sixteen load --hlog, from one machine or many, into one summary.",
        discussion: """
            Adds the files' histograms count by count (percentiles cannot be averaged) and prints the summary \
            sixteen load prints: sessions, rate and percentiles, then a line per file. The rate is the total \
            number of sessions over the union of the files' time spans, from the earliest interval start in \
            any file to the latest interval end, gaps included; a file's span runs from its first interval to \
            its last. When the spans do not all overlap, or overlap for less than 90% of their union, a \
            warning on stderr says so and by how much: the rate then counts time when not every machine was \
            loading. Start the machines together with sixteen load --start-at. Exit status: 0 (warnings \
            included); 1 when a file cannot be read, or a line of it is not a valid interval (the message \
            names the file and the line), or it has no interval with the tag; 2 for a usage error.
            """
    )

    @Argument(help: ArgumentHelp("Interval logs written by sixteen load --hlog (any HdrHistogram .hlog whose values are nanoseconds).", valueName: "file"))
    var files: [String] = []

    @Option(help: "The latencies to merge: corrected (from each session's intended start) or uncorrected (from its actual start). In a closed loop they are the same.")
    var tag: ReportTag = .corrected

    @Flag(help: "Print one JSON object instead of the summary.")
    var json = false

    func validate() throws {
        guard !files.isEmpty else { throw ValidationError("give at least one .hlog file (written by sixteen load --hlog)") }
    }

    func run() throws {
        let report: MergedReport
        do {
            report = try MergedReport.merge(paths: files, tag: tag.logTag)
        } catch {
            throw CommandFailure(message: error.description)
        }
        for warning in report.warnings {
            var line = Array("sixteen: warning: \(warning)\n".utf8)
            _ = write(2, &line, line.count)
        }
        print(json ? report.json : report.humanSummary)
    }
}
