#!/usr/bin/env python3
"""Server CPU per session, with the server and the load on separate cores.

Each server (Sixteen with one reactor, the C libev peer with one thread) runs
pinned to --server-cpu; `sixteen load` (one thread) runs pinned to
--client-cpu. For each round, servers interleaved, fresh servers for every
run: `sixteen` sessions, closed loop, at 1, 50 and 500 in flight, and `upper`
streams of 1 MiB, 8 in flight; then `upper` again with 2 reactors (2 C
threads) on two cores of their own and the load (2 threads) on two others,
16 in flight, where the machine has 4 CPUs or more (on fewer, that row is
skipped and the summary says so). The primary figure is the server's CPU per
session (user + system, from /proc, over the load's whole run), with
sessions/s beside it. Each run also says which side was saturated: the load
generator's CPU use is reported, and a run whose load used 95% of its core
or more is marked "load-bound", since its sessions/s then say more about the
load than about the server.

Writes summary.json and summary.md to benchmarks/results/tmp/pinned/, or
with --record (3 rounds or more, the default runs) to
benchmarks/results/pinned/.
"""
import datetime, json, os, statistics, subprocess, sys, time

from common import OneLineParser, machine_line, write_summary, process_cpu_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEERS = os.path.join(ROOT, "benchmarks", "peers")
LOAD_BOUND = 0.95


def start(name, binary, protocol, cpus, reactors):
    if name == "sixteen":
        argv = [binary, "server", "127.0.0.1", "-p", "0", "--protocol", protocol, "--reactors", str(reactors), "--log-level", "error"]
    else:
        argv = [binary, "--protocol", protocol, "-p", "0", "--threads", str(reactors)]
    server = subprocess.Popen(["taskset", "-c", cpus] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    line = server.stdout.readline()
    if "Listening at" not in line:
        server.kill()
        sys.exit("benchmarks/pinned.py: %s did not start: %r %s" % (name, line, server.stderr.read()[-300:]))
    return server, int(line.rsplit(",", 1)[1].strip(" )\n"))


def one_run(args, name, binary, case):
    kind, in_flight, reactors = case
    protocol = "upper" if kind == "upper" else "sixteen"
    server_cpus, load_cpus = placement(args, reactors)
    server, port = start(name, binary, protocol, server_cpus, reactors)
    try:
        argv = ["taskset", "-c", load_cpus, args.load, "load", "127.0.0.1", "-p", str(port), "-c", str(in_flight),
                "--threads", str(reactors), "-d", str(args.duration), "--warmup", "1", "--json"]
        if kind == "upper":
            argv += ["--protocol", "upper", "--bytes", "1M"]
        before = process_cpu_seconds(server.pid)
        done = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + 60)
        server_cpu = process_cpu_seconds(server.pid) - before
    finally:
        server.terminate()
        server.wait(timeout=30)
    if done.returncode != 0 or not done.stdout.strip():
        sys.exit("benchmarks/pinned.py: the load against %s failed: %s" % (name, done.stderr.strip()[-300:]))
    summary = json.loads(done.stdout)
    # The server's CPU covers the warm-up too; so do sessions_ok and
    # elapsed_seconds (sessions_per_second is the measured window's).
    sessions = summary["sessions_ok"]
    elapsed = summary["elapsed_seconds"]
    # Shares are of the cores each side was given: 100% is all of them busy.
    return {
        "server": name, "kind": kind, "in_flight": in_flight, "reactors": reactors,
        "server_cpus": server_cpus, "load_cpus": load_cpus,
        "sessions_per_second": summary["sessions_per_second"],
        "mb_per_second": summary.get("megabytes_per_second"),
        "server_cpu_us_per_session": server_cpu / max(sessions, 1) * 1e6,
        "server_cpu_share": server_cpu / max(elapsed, 1e-9) / reactors,
        "load_cpu_share": summary["client_cpu_seconds"] / max(elapsed, 1e-9) / reactors,
        "errors": summary["errors_total"],
    }


def placement(args, reactors):
    """The server's cores and the load's, as taskset lists: one each for
    one reactor; for two, two for the server and two for the load, all
    distinct (`two_reactor_cpus`, or None where there are fewer than 4)."""
    if reactors == 1:
        return str(args.server_cpu), str(args.client_cpu)
    server, load = args.two_reactor_cpus
    return ",".join(map(str, server)), ",".join(map(str, load))


def two_reactor_cpus(args):
    """Two cores for a two-reactor server and two for its load: the load's
    core and the next free one for the load, the server's core and the next
    free one for the server. None if this process may use fewer than 4."""
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 4:
        return None
    rest = [c for c in cpus if c not in (args.server_cpu, args.client_cpu)]
    return [args.server_cpu, rest[0]], [args.client_cpu, rest[1]]


def median_range(values):
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def main():
    parser = OneLineParser(prog="benchmarks/pinned.py", description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="rounds, servers interleaved in each (default 3)")
    parser.add_argument("--duration", type=int, default=5, help="seconds per run, after a 1 s warm-up (default 5)")
    parser.add_argument("--server-cpu", type=int, default=1, help="the server's core (default 1)")
    parser.add_argument("--client-cpu", type=int, default=0, help="the load's core (default 0)")
    parser.add_argument("--record", action="store_true", help="write benchmarks/results/pinned/ (3 rounds or more)")
    parser.add_argument("--dry-run", action="store_true", help="check the arguments and stop")
    args = parser.parse_args()
    if args.rounds < 1 or args.duration < 1:
        parser.error("--rounds and --duration must be at least 1")
    if args.server_cpu == args.client_cpu:
        parser.error("the server and the load need separate cores")
    if args.record and (args.rounds < 3 or args.duration < 5):
        parser.error("--record takes 3 rounds or more of 5 s or more")
    out = os.path.join(ROOT, "benchmarks", "results", "pinned" if args.record else os.path.join("tmp", "pinned"))
    if args.dry_run:
        print("benchmarks/pinned.py: results would go to %s" % os.path.relpath(out, ROOT))
        return
    args.load = os.environ.get("SIXTEEN_BIN") or os.path.join(ROOT, ".build", "release", "sixteen")
    binaries = {"sixteen": args.load, "c-libev": os.path.join(PEERS, "c-libev", "build", "sixteen-c")}
    # (kind, in flight, reactors)
    cases = [("sixteen", 1, 1), ("sixteen", 50, 1), ("sixteen", 500, 1), ("upper", 8, 1)]
    args.two_reactor_cpus = two_reactor_cpus(args)
    skipped = []
    if args.two_reactor_cpus:
        cases.append(("upper", 16, 2))
    else:
        skipped.append("upper 1 MiB streams with 2 reactors: needs 4 CPUs (2 for the server, 2 for the load); "
                       "this machine lets it use %d" % len(os.sched_getaffinity(0)))
    started = time.monotonic()
    runs = []
    for round_index in range(args.rounds):
        for case in cases:
            for name in ("sixteen", "c-libev") if round_index % 2 == 0 else ("c-libev", "sixteen"):
                run = one_run(args, name, binaries[name], case)
                run["round"] = round_index + 1
                runs.append(run)
                print("round %d %-7s %-7s %3d in flight, %d reactor(s): %8.0f sessions/s, %6.2f µs server CPU/session, load %.0f%% of its cores" % (
                    run["round"], name, case[0], case[1], case[2], run["sessions_per_second"], run["server_cpu_us_per_session"],
                    100 * run["load_cpu_share"]), file=sys.stderr)
    table = []
    for kind, in_flight, reactors in cases:
        row = {"kind": kind, "in_flight": in_flight, "reactors": reactors}
        for name in ("sixteen", "c-libev"):
            mine = [r for r in runs if r["server"] == name and r["kind"] == kind and r["in_flight"] == in_flight
                    and r["reactors"] == reactors]
            row[name] = {key: median_range([r[key] for r in mine]) for key in
                         ("sessions_per_second", "server_cpu_us_per_session", "load_cpu_share", "server_cpu_share")}
            if kind == "upper":
                row[name]["mb_per_second"] = median_range([r["mb_per_second"] for r in mine])
            row[name]["load_bound"] = row[name]["load_cpu_share"]["median"] >= LOAD_BOUND
        row["cpu_ratio"] = row["sixteen"]["server_cpu_us_per_session"]["median"] / row["c-libev"]["server_cpu_us_per_session"]["median"]
        row["rate_ratio"] = row["sixteen"]["sessions_per_second"]["median"] / row["c-libev"]["sessions_per_second"]["median"]
        table.append(row)
    command = "benchmarks/pinned.py" + (" --record" if args.record else "") + ("" if args.rounds == 3 else " --rounds %d" % args.rounds)
    summary = {"command": command, "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
               "machine": machine_line(), "server_cpu": args.server_cpu, "client_cpu": args.client_cpu,
               "two_reactor_cpus": args.two_reactor_cpus, "skipped": skipped,
               "rounds": args.rounds, "duration": args.duration, "wall_seconds": round(time.monotonic() - started),
               "table": table, "runs": runs}

    def cell(r, key, fmt):
        m = r[key]
        return (fmt % m["median"]) + " (" + (fmt % m["min"]) + "–" + (fmt % m["max"]) + ")"

    lines = ["# Server CPU per session, server and load on separate cores", "",
             "`%s`, %s, %s: server on CPU %d, `sixteen load --threads 1` on CPU %d%s; %d rounds of %d s, servers interleaved, "
             "medians (min–max). CPU shares are of the cores each side was given. A run is load-bound when the load used "
             "%d%% of its cores or more." % (
                 command, summary["date"], summary["machine"], args.server_cpu, args.client_cpu,
                 "" if not args.two_reactor_cpus else "; with 2 reactors, the server on CPUs %s and `--threads 2` load on CPUs %s" % (
                     placement(args, 2)),
                 args.rounds, args.duration, LOAD_BOUND * 100), "",
             "| run | server | server CPU µs/session | sessions/s | server CPU | load CPU | sixteen ÷ C: CPU/session | sixteen ÷ C: sessions/s |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for row in table:
        label = "%s, %d in flight" % (row["kind"] if row["kind"] == "sixteen" else "upper 1 MiB streams", row["in_flight"])
        if row["reactors"] > 1:
            label += ", %d reactors" % row["reactors"]
        for name in ("sixteen", "c-libev"):
            r = row[name]
            rate = cell(r, "sessions_per_second", "%.0f")
            if row["kind"] == "upper":
                rate += "; " + cell(r, "mb_per_second", "%.0f") + " MB/s"
            lines.append("| %s | %s | %s | %s | %.0f%% | %.0f%%%s | %s | %s |" % (
                label, name, cell(r, "server_cpu_us_per_session", "%.2f"), rate, 100 * r["server_cpu_share"]["median"],
                100 * r["load_cpu_share"]["median"],
                " load-bound" if r["load_bound"] else "", "%.2f×" % row["cpu_ratio"] if name == "sixteen" else "",
                "%.2f×" % row["rate_ratio"] if name == "sixteen" else ""))
    for reason in skipped:
        lines += ["", "Not run: " + reason + "."]
    write_summary(out, summary, lines, "benchmarks/pinned.py")


if __name__ == "__main__":
    main()
