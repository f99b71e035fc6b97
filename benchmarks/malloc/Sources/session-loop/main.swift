// A plain loop of sessions against an in-process server, for counting
// allocations with tools that see the whole process (valgrind, heaptrack):
//
//   session-loop sixteen|upper WARMUP SESSIONS
//
// starts the server, runs WARMUP sessions, then SESSIONS more, and stops it.
// Run it twice with the same WARMUP and different SESSIONS: the difference
// in the process's allocation count, divided by the difference in SESSIONS,
// is what one steady-state session allocates (server and client), with no
// gap between measured windows. `valgrind-check` does exactly that.

import SessionRig

#if canImport(Glibc)
import Glibc
#endif

let arguments = CommandLine.arguments
guard arguments.count == 4, let warmUp = Int(arguments[2]), let count = Int(arguments[3]),
      arguments[1] == "sixteen" || arguments[1] == "upper"
else {
    print("usage: session-loop sixteen|upper WARMUP SESSIONS")
    exit(2)
}
let rig = SessionRig(kind: arguments[1] == "sixteen" ? .sixteen : .upper)
try rig.start(warmUp: warmUp)
for _ in 0..<count {
    rig.session()
}
rig.stop()
print("\(arguments[1]): \(warmUp) warm-up + \(count) sessions, server totals checked")
