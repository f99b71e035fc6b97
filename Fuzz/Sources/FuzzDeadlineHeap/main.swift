// Starts libFuzzer on this target (in DeadlineHeapTarget.swift).
import FuzzSupport

runFuzzer { data, count in
    var input = FuzzInput(data, count)
    var target = DeadlineHeapTarget(&input)
    target.run(&input)
    return 0
}
