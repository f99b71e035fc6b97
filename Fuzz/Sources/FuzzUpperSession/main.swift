// Starts libFuzzer on this target (in UpperSessionTarget.swift).
import FuzzSupport

runFuzzer { data, count in
    var input = FuzzInput(data, count)
    var target = UpperSessionTarget(&input)
    target.run(&input)
    return 0
}
