// Starts libFuzzer on this target (in HTTPRequestTarget.swift).
import FuzzSupport

runFuzzer { data, count in
    var input = FuzzInput(data, count)
    HTTPRequestTarget.run(&input)
    return 0
}
