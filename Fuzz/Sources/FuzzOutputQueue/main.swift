// Starts libFuzzer on this target (in OutputQueueTarget.swift).
import FuzzSupport

runFuzzer { data, count in
    var input = FuzzInput(data, count)
    var target = OutputQueueTarget(&input)
    target.run(&input)
    target.finish()
    return 0
}
