#if canImport(Glibc)
import Glibc
#endif

// How a fuzz target says that something is wrong: a broken invariant is a
// crash, so libFuzzer keeps the input that broke it and stops (a target that
// only returned would hide it among the inputs that are merely rejected).
// The message names the invariant, and the rule it comes from, so that the
// report says what broke before anyone reads the input.

/// Stops the process, as libFuzzer counts a crash, unless `condition` holds.
/// `name` is the invariant in words (a rule of the machine's header, or a
/// property of the reference model); `detail` is evaluated only on failure.
@inline(__always)
public func invariant(
    _ condition: @autoclosure () -> Bool, _ name: StaticString, _ detail: @autoclosure () -> String = "",
    file: StaticString = #fileID, line: UInt = #line
) {
    if !condition() { invariantBroken(name, detail(), file: file, line: line) }
}

/// Reports the broken invariant on standard error and traps. Not inlined:
/// the slow path stays out of the targets' loops.
@inline(never)
public func invariantBroken(_ name: StaticString, _ detail: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    writeToStandardError("INVARIANT BROKEN: \(name)\(detail.isEmpty ? "" : " — \(detail)") (\(file):\(line))\n")
    fatalError("invariant broken: \(name)")
}

/// Whether to print every event as it is decoded (set `FUZZ_TRACE=1` when
/// replaying one input: `FUZZ_TRACE=1 Fuzz/.build/release/FuzzX crash-…`).
public let tracing: Bool = getenv("FUZZ_TRACE") != nil

/// Prints `message` when tracing; costs one branch otherwise.
@inline(__always)
public func trace(_ message: @autoclosure () -> String) {
    if tracing { writeToStandardError(message() + "\n") }
}

/// Writes `text` to standard error, unbuffered (the process may trap next).
public func writeToStandardError(_ text: String) {
    var text = text
    text.withUTF8 { buffer in
        var offset = 0
        while offset < buffer.count {
            let written = write(2, buffer.baseAddress! + offset, buffer.count - offset)
            if written <= 0 { return }
            offset += written
        }
    }
}
