// Starts libFuzzer on this target (in LoadSessionTarget.swift).
import FuzzSupport

runFuzzer { data, count in
    var input = FuzzInput(data, count)
    var target = LoadSessionTarget(&input)
    target.run(&input)
    return 0
}
