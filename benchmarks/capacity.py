#!/usr/bin/env python3
"""Per-instance capacity at a latency objective (docs/capacity.md).

Starts one Sixteen daemon pinned to --server-cpus, then drives it open loop
with `sixteen load --rate R` pinned to --client-cpus, for each rate in turn
and for several rounds (rates interleaved: R1 R2 R3 ... then again). For each
rate it reports the median over the rounds of the corrected p50/p99/p99.9
latency (from each session's intended start: coordinated omission
corrected), sessions dropped and failed, and the CPU each side used, as a
share of one core (the side near 100% is the bottleneck: if it is the load
generator, the figure measures the load generator, and the script says so).

The capacity is the highest rate whose median p99 meets the objective with
no session dropped or failed, and every lower rate tried as well: a rate to
plan with, not the saturation point.

Writes table.md and raw.jsonl into benchmarks/results/tmp/capacity/ (git
ignored), or with --record into benchmarks/results/capacity/.

Example (the run docs/capacity.md cites):
  benchmarks/capacity.py --protocol sixteen --rates 2000,5000,10000,15000,20000,25000 --record
"""
import datetime, json, os, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


from common import OneLineParser, machine_line, process_cpu_seconds as cpu_seconds


def count_cpus(spec):
    """How many CPUs a taskset list names: "1", "1-3", "1,4-5"."""
    total = 0
    for part in spec.split(","):
        low, _, high = part.partition("-")
        total += int(high or low) - int(low) + 1
    return total


def cpu_list(spec):
    cpus = []
    for part in spec.split(","):
        low, _, high = part.partition("-")
        cpus += range(int(low), int(high or low) + 1)
    return cpus


def busy_ticks(cpus):
    """(busy, total) jiffies of these CPUs from /proc/stat: everything they
    did, softirq and other processes included, not only the daemon."""
    busy = total = 0
    with open("/proc/stat") as f:
        for line in f:
            name, *fields = line.split()
            if name.startswith("cpu") and name[3:].isdigit() and int(name[3:]) in cpus:
                values = [int(v) for v in fields[:8]]
                total += sum(values)
                busy += sum(values) - values[3] - values[4]  # idle, iowait
    return busy, total


def start_server(args):
    argv = ["taskset", "-c", args.server_cpus, args.binary, "server", "127.0.0.1", "-p", "0",
            "--protocol", args.protocol, "--reactors", str(args.reactors), "--log-level", "warning"]
    server = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = server.stdout.readline()
    if not line.startswith("Listening at"):
        server.kill()
        sys.exit("capacity.py: the server did not start: %r" % line)
    return server, int(line.rsplit(",", 1)[1].strip(" )\n"))


def one_run(args, port, server, rate):
    argv = ["taskset", "-c", args.client_cpus, args.binary, "load", "127.0.0.1", "-p", str(port),
            "--protocol", args.protocol, "--rate", str(rate), "-d", str(args.duration),
            "--warmup", str(args.warmup), "-c", str(args.connections), "--threads", str(count_cpus(args.client_cpus)), "--json"]
    if args.protocol == "upper":
        argv += ["--bytes", args.bytes]
    before = cpu_seconds(server.pid)
    busy_before = busy_ticks(cpu_list(args.server_cpus))
    started = time.monotonic()
    done = subprocess.run(argv, capture_output=True, text=True, timeout=args.duration + args.warmup + 60)
    elapsed = time.monotonic() - started
    server_cpu = (cpu_seconds(server.pid) - before) / elapsed
    busy_after = busy_ticks(cpu_list(args.server_cpus))
    server_cpus_busy = (busy_after[0] - busy_before[0]) / max(1, busy_after[1] - busy_before[1])
    summary = json.loads(done.stdout)
    latency = summary["latency_us"]
    return {
        "rate": rate, "status": done.returncode,
        "achieved": summary["sessions_per_second"],
        "p50_ms": latency["p50"] / 1000, "p99_ms": latency["p99"] / 1000, "p99_9_ms": latency["p99_9"] / 1000,
        "dropped": summary["sessions_dropped"], "failed": summary["errors_total"],
        "server_cpu": server_cpu, "server_cpus_busy": server_cpus_busy,
        "client_cpu": summary["client_cpu_seconds"] / max(summary["elapsed_seconds"], 1e-9),
    }


def main():
    parser = OneLineParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--binary", default=os.environ.get("SIXTEEN_BIN") or os.path.join(ROOT, ".build", "release", "sixteen"))
    parser.add_argument("--protocol", choices=("sixteen", "upper"), default="sixteen")
    parser.add_argument("--rates", default="2000,5000,10000,15000,20000,25000",
                        help="sessions per second to try, comma-separated")
    parser.add_argument("--duration", type=float, default=5, help="seconds measured per run (default 5)")
    parser.add_argument("--warmup", type=float, default=1, help="seconds left out at the start of each run (default 1)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; figures are their medians (default 3)")
    parser.add_argument("--connections", type=int, default=200, help="connections the load may have in flight (default 200)")
    parser.add_argument("--bytes", default="64K", help="upper: octets per stream (default 64K)")
    parser.add_argument("--objective-ms", type=float, default=5.0, help="the p99 objective in ms (default 5)")
    parser.add_argument("--reactors", type=int, default=1, help="the daemon's reactors (default 1)")
    parser.add_argument("--server-cpus", default="0", help="taskset CPU list for the daemon (default 0)")
    parser.add_argument("--client-cpus", default="1", help="taskset CPU list for the load generator (default 1)")
    parser.add_argument("--record", action="store_true", help="write benchmarks/results/capacity/ (cited by docs/capacity.md)")
    parser.add_argument("--from", dest="from_raw", nargs="+", metavar="RAW.jsonl",
                        help="run nothing: make the table again from raw files of earlier runs (with the same options as those runs)")
    args = parser.parse_args()
    try:
        count_cpus(args.client_cpus), count_cpus(args.server_cpus)
    except ValueError:
        parser.error("--server-cpus and --client-cpus take CPU lists such as 0 or 1-3")
    try:
        rates = [int(r) for r in args.rates.split(",")]
    except ValueError:
        parser.error("--rates: whole numbers separated by commas")
    if not args.from_raw and not os.access(args.binary, os.X_OK):
        parser.error("no executable at %s (swift build -c release, or --binary)" % args.binary)

    out = os.path.join(ROOT, "benchmarks", "results", "capacity" if args.record else os.path.join("tmp", "capacity"))
    os.makedirs(out, exist_ok=True)
    runs = []
    if args.from_raw:
        for path in args.from_raw:
            with open(path) as f:
                runs += [json.loads(line) for line in f if line.strip()]
        rates = sorted(set(run["rate"] for run in runs))
        write(args, out, rates, runs)
        return
    server, port = start_server(args)
    try:
        for round_index in range(args.rounds):
            for rate in rates:
                run = one_run(args, port, server, rate)
                run["round"] = round_index + 1
                runs.append(run)
                print("round %d, %6d/s: p99 %.3f ms, dropped %d, failed %d, server CPU %.0f%% (its CPUs %.0f%% busy), client CPU %.0f%%" % (
                    run["round"], rate, run["p99_ms"], run["dropped"], run["failed"], 100 * run["server_cpu"],
                    100 * run["server_cpus_busy"], 100 * run["client_cpu"]),
                    file=sys.stderr)
    finally:
        server.terminate()
        server.wait(timeout=30)
    write(args, out, rates, runs)


def write(args, out, rates, runs):
    """The table (medians per rate), the verdict, and the raw runs."""
    server_cores, client_cores = count_cpus(args.server_cpus), count_cpus(args.client_cpus)
    rows, capacity, failed_below = [], None, False
    for rate in sorted(rates):
        mine = [r for r in runs if r["rate"] == rate]
        med = {key: statistics.median(r[key] for r in mine) for key in
               ("achieved", "p50_ms", "p99_ms", "p99_9_ms", "server_cpu", "client_cpu")}
        # Older raw files lack it.
        busy = [r["server_cpus_busy"] for r in mine if "server_cpus_busy" in r]
        med["server_cpus_busy"] = statistics.median(busy) if busy else None
        dropped, failed = sum(r["dropped"] for r in mine), sum(r["failed"] for r in mine)
        meets = med["p99_ms"] < args.objective_ms and dropped == 0 and failed == 0
        # Conservative: the rate and every lower one meet it.
        if meets and not failed_below:
            capacity = rate
        failed_below = failed_below or not meets
        # A side is saturated at 90% of the CPUs it may use (the server: its reactors, at most its CPUs).
        server_limit = min(server_cores, args.reactors)
        cpus_full = med["server_cpus_busy"] is not None and med["server_cpus_busy"] > 0.9
        bottleneck = ("load generator" if med["client_cpu"] > 0.9 * client_cores
                      else "server" if med["server_cpu"] > 0.9 * server_limit
                      else "server's CPUs" if cpus_full else "neither")
        rows.append("| %d | %.0f | %.3f | %.3f | %.3f | %d | %d | %.0f%% | %s | %.0f%% | %s | %s |" % (
            rate, med["achieved"], med["p50_ms"], med["p99_ms"], med["p99_9_ms"], dropped, failed,
            100 * med["server_cpu"], "?" if med["server_cpus_busy"] is None else "%.0f%%" % (100 * med["server_cpus_busy"]),
            100 * med["client_cpu"], bottleneck, "yes" if meets else "no"))
    header = [
        "%s, %d reactor(s) on CPU %s, load on CPU %s; %d rounds of %g s (+%g s warm-up), %d connections%s; %s" % (
            args.protocol, args.reactors, args.server_cpus, args.client_cpus, args.rounds, args.duration, args.warmup,
            args.connections, ", %s per stream" % args.bytes if args.protocol == "upper" else "",
            "from %s" % ", ".join(args.from_raw) if args.from_raw else "%s, %s" % (
                machine_line(), datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"))),
        "",
        "CPU columns: the processes' user+system time as a share of one core (the server may use %d, the load generator %d); "
        "server CPUs busy: how busy the daemon's CPUs were in all (/proc/stat: softirq and anything else there included)." % (
            min(server_cores, args.reactors), client_cores),
        "",
        "| rate /s | achieved /s | p50 ms | p99 ms | p99.9 ms | dropped | failed | server CPU | server CPUs busy | client CPU | saturated | p99 < %g ms |" % args.objective_ms,
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    verdict = ("capacity at p99 < %g ms: %s sessions/s" % (args.objective_ms, capacity) if capacity
               else "no rate tried meets p99 < %g ms" % args.objective_ms)
    text = "\n".join(header + rows + ["", verdict, ""])
    print(text)
    name = "%s-table.md" % args.protocol
    with open(os.path.join(out, name), "w") as f:
        f.write(text)
    with open(os.path.join(out, "%s-raw.jsonl" % args.protocol), "w") as f:
        for run in runs:
            f.write(json.dumps(run) + "\n")
    print("wrote %s" % os.path.relpath(os.path.join(out, name), ROOT), file=sys.stderr)


if __name__ == "__main__":
    main()
