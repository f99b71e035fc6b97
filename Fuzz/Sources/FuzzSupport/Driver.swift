#if canImport(Glibc)
import Glibc
#endif
import CFuzzSupport

/// Runs libFuzzer with the process's arguments, calling `target` with each
/// input, and exits with libFuzzer's status. Each target's main.swift calls
/// it (see CFuzzSupport.h for why the targets start libFuzzer themselves).
/// `target` returns 0; a broken invariant traps instead (see `invariant`).
public func runFuzzer(_ target: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32) -> Never {
    var argc = CommandLine.argc
    var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
    exit(LLVMFuzzerRunDriver(&argc, &argv, target))
}
