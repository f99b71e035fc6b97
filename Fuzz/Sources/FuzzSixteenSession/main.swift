// Starts libFuzzer on this target (in SixteenSessionTarget.swift).
import FuzzSupport

runFuzzer { data, count in
    var input = FuzzInput(data, count)
    var target = SixteenSessionTarget(&input)
    target.run(&input)
    return 0
}
