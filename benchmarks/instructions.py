#!/usr/bin/env python3
"""User-space instructions per session and per MiB, counted by callgrind.

valgrind --tool=callgrind counts every instruction the server process runs in
user space (all its threads), so a count repeats exactly from run to run and
machine to machine, where seconds do not. Each server (Sixteen with one
reactor, the C libev peer with one thread) is started under callgrind, serves
SMALL sessions, one at a time (`sixteen load -c 1`, not under valgrind), and
is stopped with SIGTERM; then again with LARGE sessions. The difference
between the two totals, divided by the difference in sessions, is what one
more session costs: start-up, the first accept and the shutdown cancel out.
The same for `upper`: streams of --upper-mib MiB each, per MiB echoed.

With --profile, the same difference per function (callgrind_annotate, self
cost): what one more session spends in each, for the first round's runs,
printed to stderr. That is how the costs issue #13 removed were found.

Writes summary.json and summary.md to benchmarks/results/tmp/instructions/,
or with --record to benchmarks/results/instructions/ (what the README cites
and later changes compare against: the counts are exact, so any difference
is a real one).
"""
import datetime, json, os, re, signal, socket, statistics, subprocess, sys, tempfile, time

from common import OneLineParser, machine_line, write_summary

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "benchmarks", "peers")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def server_argv(name, binary, protocol, port):
    if name == "sixteen":
        # One reactor; as root it keeps root (--user root) so that callgrind
        # can write its output where this script reads it.
        return [binary, "server", "127.0.0.1", "-p", str(port), "--protocol", protocol, "--reactors", "1",
                "--user", "root", "--log-level", "error"]
    return [binary, "--protocol", protocol, "-p", str(port), "--threads", "1"]


def wait_listening(port, process, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit("benchmarks/instructions.py: the server exited early: %s" % process.stderr.read()[-500:])
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    process.kill()
    sys.exit("benchmarks/instructions.py: the server did not listen within %d s" % seconds)


def functions(out):
    """Self instructions per function in a callgrind output file."""
    annotated = subprocess.run(["callgrind_annotate", "--threshold=100", "--inclusive=no", "--auto=no", "--tree=none", out],
                               capture_output=True, text=True, check=True).stdout
    costs = {}
    for line in annotated.splitlines():
        match = re.match(r"\s*([\d,]+) \([\s\d.]+%\)\s+(.*)$", line)
        if not match or match.group(2) == "PROGRAM TOTALS" or match.group(2).startswith("=>"):
            continue
        name = re.sub(r" \[[^\]]*\]$", "", match.group(2))
        costs[name] = costs.get(name, 0) + int(match.group(1).replace(",", ""))
    return costs


def print_profile(name, what, small, large, work):
    """The top functions by what one more unit of work costs in each."""
    rows = sorted(((large[1].get(f, 0) - small[1].get(f, 0)) / work, f) for f in set(small[1]) | set(large[1]))
    rows.reverse()
    print("%s: instructions per %s by function (self cost, %.0f in all)" % (name, what, (large[0] - small[0]) / work), file=sys.stderr)
    for cost, function in rows[:PROFILE_ROWS]:
        if cost < 1:
            break
        print("%10.1f  %s" % (cost, function[-150:]), file=sys.stderr)


PROFILE_ROWS = 40


def counted(name, binary, load, protocol, sessions, mib, profile=False):
    """The server's total user-space instructions for `sessions` sessions (and
    the probe connection wait_listening makes, the same in every run); with
    `profile`, a pair of the total and the cost per function."""
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="sixteen-callgrind-") as directory:
        out = os.path.join(directory, "callgrind.out")
        argv = ["valgrind", "--tool=callgrind", "--callgrind-out-file=" + out] + server_argv(name, binary, protocol, port)
        server = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        wait_listening(port, server)
        load_argv = [load, "load", "127.0.0.1", "-p", str(port), "-c", "1", "-n", str(sessions), "--timeout", "60"]
        if protocol == "upper":
            load_argv += ["--protocol", "upper", "--pattern", "interleaved", "--bytes", "%dM" % mib]
        done = subprocess.run(load_argv, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            server.kill()
            sys.exit("benchmarks/instructions.py: the load failed against %s: %s" % (name, done.stderr.strip()[-500:]))
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=120)
        except subprocess.TimeoutExpired:
            server.kill()
            sys.exit("benchmarks/instructions.py: %s did not stop on SIGTERM" % name)
        with open(out) as f:
            for line in f:
                if line.startswith("summary:") or line.startswith("totals:"):
                    total = int(line.split()[1])
                    return (total, functions(out)) if profile else total
    sys.exit("benchmarks/instructions.py: no total in callgrind's output for %s" % name)


def main():
    parser = OneLineParser(prog="benchmarks/instructions.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=2000, help="sessions in the smaller run (default 2000)")
    parser.add_argument("--large", type=int, default=12000, help="sessions in the larger run (default 12000)")
    parser.add_argument("--upper-streams", type=int, default=(4, 24), nargs=2, metavar=("SMALL", "LARGE"),
                        help="upper streams in the two runs (default 4 24)")
    parser.add_argument("--upper-mib", type=int, default=4, help="MiB per upper stream (default 4)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, servers interleaved; medians are reported (default 3)")
    parser.add_argument("--only", default="sixteen,c-libev", help="servers (default sixteen,c-libev)")
    parser.add_argument("--record", action="store_true", help="write benchmarks/results/instructions/ (the defaults only)")
    parser.add_argument("--profile", action="store_true", help="also print the cost per function (first round) to stderr")
    parser.add_argument("--dry-run", action="store_true", help="check the arguments and stop")
    args = parser.parse_args()
    servers = [s for s in args.only.split(",") if s]
    if any(s not in ("sixteen", "c-libev") for s in servers) or not servers:
        parser.error("--only takes sixteen and c-libev")
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if not 0 < args.small < args.large or not 0 < args.upper_streams[0] < args.upper_streams[1] or args.upper_mib < 1:
        parser.error("the smaller runs must be smaller than the larger ones, and every count positive")
    defaults = (args.small, args.large, tuple(args.upper_streams), args.upper_mib, servers) == (2000, 12000, (4, 24), 4, ["sixteen", "c-libev"]) \
        and args.rounds >= 3
    if args.record and not defaults:
        parser.error("--record takes the default counts, both servers and 3 rounds or more")
    out = os.path.join(ROOT, "benchmarks", "results", "instructions" if args.record else os.path.join("tmp", "instructions"))
    if args.dry_run:
        print("benchmarks/instructions.py: results would go to %s" % os.path.relpath(out, ROOT))
        return
    if subprocess.run(["valgrind", "--version"], capture_output=True).returncode != 0:
        sys.exit("benchmarks/instructions.py: valgrind is not installed (apt-get install valgrind)")
    # Builds what it measures: sixteen in release mode (unless SIXTEEN_BIN
    # names a binary) and the C peer.
    sixteen = os.environ.get("SIXTEEN_BIN")
    if not sixteen:
        subprocess.run(["swift", "build", "-c", "release", "--product", "sixteen"], cwd=ROOT, check=True, stdout=sys.stderr)
        sixteen = os.path.join(ROOT, ".build", "release", "sixteen")
    if "c-libev" in servers:
        subprocess.run(["make", "-s", "-C", os.path.join(PEERS, "c-libev")], check=True, stdout=sys.stderr)
    binaries = {"sixteen": sixteen, "c-libev": os.path.join(PEERS, "c-libev", "build", "sixteen-c")}
    started = time.monotonic()
    # Counts repeat to within a few per cent, not exactly: how many loop
    # iterations a session takes (whether its EOF comes with its request or
    # in a wake-up of its own) depends on timing. Hence rounds and medians.
    rounds = {name: [] for name in servers}
    for round_index in range(args.rounds):
        for name in servers if round_index % 2 == 0 else servers[::-1]:
            profile = args.profile and round_index == 0
            small = counted(name, binaries[name], sixteen, "sixteen", args.small, 0, profile)
            large = counted(name, binaries[name], sixteen, "sixteen", args.large, 0, profile)
            small_u = counted(name, binaries[name], sixteen, "upper", args.upper_streams[0], args.upper_mib, profile)
            large_u = counted(name, binaries[name], sixteen, "upper", args.upper_streams[1], args.upper_mib, profile)
            if profile:
                print_profile(name, "sixteen session", small, large, args.large - args.small)
                print_profile(name, "MiB of upper", small_u, large_u,
                              (args.upper_streams[1] - args.upper_streams[0]) * args.upper_mib)
                small, large, small_u, large_u = small[0], large[0], small_u[0], large_u[0]
            one = {"per_session": (large - small) / (args.large - args.small),
                   "per_mib": (large_u - small_u) / ((args.upper_streams[1] - args.upper_streams[0]) * args.upper_mib),
                   "instructions": {"sixteen": [small, large], "upper": [small_u, large_u]}}
            rounds[name].append(one)
            print("round %d %-8s %9.0f instructions per sixteen session, %11.0f per MiB of upper" % (
                round_index + 1, name, one["per_session"], one["per_mib"]), file=sys.stderr)
    results = {}
    for name in servers:
        per_session = [r["per_session"] for r in rounds[name]]
        per_mib = [r["per_mib"] for r in rounds[name]]
        results[name] = {"sixteen": {"sessions": [args.small, args.large], "per_session": statistics.median(per_session),
                                     "min": min(per_session), "max": max(per_session)},
                         "upper": {"mib": [args.upper_streams[0] * args.upper_mib, args.upper_streams[1] * args.upper_mib],
                                   "per_mib": statistics.median(per_mib), "min": min(per_mib), "max": max(per_mib)},
                         "rounds": rounds[name]}
    summary = {
        "command": "benchmarks/instructions.py" + (" --record" if args.record else ""),
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "machine": machine_line(), "valgrind": subprocess.run(["valgrind", "--version"], capture_output=True, text=True).stdout.strip(),
        "wall_seconds": round(time.monotonic() - started), "servers": results,
    }
    lines = ["# User-space instructions per session (callgrind)", "",
             "`%s`, %s, %s; %s. Each figure is the difference between two runs "
             "(%d and %d sessions one at a time; %d and %d streams of %d MiB) divided by the difference in work; "
             "medians of %d rounds (min–max)." % (
                 summary["command"], summary["date"], summary["machine"], summary["valgrind"],
                 args.small, args.large, args.upper_streams[0], args.upper_streams[1], args.upper_mib, args.rounds), "",
             "| server | instructions per sixteen session | instructions per MiB of upper |", "| --- | --- | --- |"]
    for name, r in results.items():
        lines.append("| %s | %.0f (%.0f–%.0f) | %.0f (%.0f–%.0f) |" % (
            name, r["sixteen"]["per_session"], r["sixteen"]["min"], r["sixteen"]["max"],
            r["upper"]["per_mib"], r["upper"]["min"], r["upper"]["max"]))
    if "sixteen" in results and "c-libev" in results:
        s, c = results["sixteen"], results["c-libev"]
        ratio = (s["sixteen"]["per_session"] / c["sixteen"]["per_session"], s["upper"]["per_mib"] / c["upper"]["per_mib"])
        summary["ratio_to_c"] = {"per_session": ratio[0], "per_mib": ratio[1]}
        lines.append("| sixteen ÷ C | %.2f× | %.2f× |" % ratio)
    write_summary(out, summary, lines, "benchmarks/instructions.py")


if __name__ == "__main__":
    main()
