// Starts libFuzzer on this target (in ProxyHeaderTarget.swift).
import FuzzSupport

runFuzzer { data, count in
    var input = FuzzInput(data, count)
    ProxyHeaderTarget.run(&input)
    return 0
}
