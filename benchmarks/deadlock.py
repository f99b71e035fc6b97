#!/usr/bin/env python3
"""The deadlock benchmark (issue #3): the book's deadlock client with 1 GiB.

Runs `sixteen stream 127.0.0.1 BYTES` (the book's client: everything is sent
before anything is read) against
  1. `sixteen server --protocol upper`, started fresh for each round;
  2. ten such clients at once against one fresh server;
  3. the book's blocking server (tcp_deadlock.py), which must stall; the
     client gives up after --stall seconds of no progress.
Records wall time, MB/s, the server's peak RSS (VmHWM from /proc) and CPU
time, as JSON (deadlock.json) and a Markdown summary (deadlock.md), into
benchmarks/results/tmp/ (git-ignored); only --record writes
benchmarks/results/deadlock.*, the results the README cites, and only for
issue #3's run (1 GiB, 10 clients at once, 3 rounds or more).
Bounded: every process is started by this script and killed by it.

SIXTEEN_BIN names the sixteen binary; default .build/release/sixteen.
"""
import argparse, datetime, json, os, platform, statistics, subprocess, sys, time

# The matrix driver's server handling and argument checks, shared.
from run import RECORD_MIN_ROUNDS, RESULTS, SIXTEEN, OneLineParser, Server, machine, positive_int, relative

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BOOK = os.path.join(ROOT, "benchmarks", "peers", "book", "tcp_deadlock.py")
SCRATCH = os.path.join(RESULTS, "tmp")
RECORD_BYTES, RECORD_CLIENTS = 1 << 30, 10


def stream(port, count, stall):
    started = time.monotonic()
    done = subprocess.run([SIXTEEN, "stream", "127.0.0.1", str(count), "-p", str(port), "--timeout", str(stall)],
                          capture_output=True, text=True)
    return {
        "exit": done.returncode,
        "seconds": time.monotonic() - started,
        "stdout": done.stdout.strip().splitlines()[-1:],
        "stderr": done.stderr.strip(),
    }


def run_upper(count, clients, stall, reactors):
    server = Server([SIXTEEN, "server", "--protocol", "upper", "-p", "0", "--reactors", str(reactors)])
    try:
        started = time.monotonic()
        procs = [subprocess.Popen([SIXTEEN, "stream", "127.0.0.1", str(count), "-p", str(server.port), "--timeout", str(stall)],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(clients)]
        outputs = [p.communicate() for p in procs]
        seconds = time.monotonic() - started
        usage = server.usage()
    finally:
        server.stop()
    ok = all(p.returncode == 0 for p in procs)
    verified = sum(1 for out, _ in outputs if "correct uppercase octets" in out)
    return {
        "server": "sixteen --protocol upper --reactors %d" % reactors,
        "clients": clients, "octets_per_client": count, "ok": ok, "verified_clients": verified,
        "seconds": round(seconds, 3), "mb_per_s": round(clients * count / seconds / 1e6, 1),
        "server_peak_rss_mib": round(usage["hwm_kib"] / 1024, 1),
        "server_cpu_seconds": usage["cpu"],
        "errors": [err.strip() for _, err in outputs if err.strip()],
    }


def run_book(count, stall):
    server = Server([sys.executable, "-u", BOOK, "server", "127.0.0.1", "-p", "0"])
    try:
        result = stream(server.port, count, stall)
    finally:
        server.proc.kill()
        server.proc.wait()
    return {
        "server": "book's blocking tcp_deadlock.py", "clients": 1, "octets_per_client": count,
        "ok": result["exit"] == 0, "exit": result["exit"], "seconds": round(result["seconds"], 3),
        "outcome": result["stderr"] or (result["stdout"][0] if result["stdout"] else ""),
    }


def positive_float(text):
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a number: %r" % text)
    if not value > 0:
        raise argparse.ArgumentTypeError("must be above 0: %r" % text)
    return value


def parse_arguments(argv):
    parser = OneLineParser(prog="benchmarks/deadlock", description=__doc__.splitlines()[0],
                           epilog="Results go to benchmarks/results/tmp/deadlock.{json,md} (git-ignored) unless --record is given.")
    parser.add_argument("--bytes", type=positive_int, default=RECORD_BYTES, help="octets each client sends (default 1 GiB)")
    parser.add_argument("--rounds", type=positive_int, default=RECORD_MIN_ROUNDS, help="single-client rounds (default 3)")
    parser.add_argument("--clients", type=positive_int, default=RECORD_CLIENTS, help="clients at once in the concurrent run (default 10)")
    parser.add_argument("--stall", type=positive_float, default=5, help="seconds without progress before a client gives up (default 5)")
    parser.add_argument("--reactors", type=positive_int, default=os.cpu_count(), help="sixteen's reactors (default: the cores)")
    parser.add_argument("--record", action="store_true",
                        help="write benchmarks/results/deadlock.{json,md} (the results the README cites); issue #3's run only")
    parser.add_argument("--dry-run", action="store_true", help="check the arguments, say where results would go, run nothing")
    args = parser.parse_args(argv)
    if args.record:
        # The committed results are issue #3's run; a smaller one must not replace them.
        if args.bytes != RECORD_BYTES or args.clients != RECORD_CLIENTS:
            parser.error("--record records issue #3's run: drop --bytes and --clients (1 GiB, 10 clients)")
        if args.rounds < RECORD_MIN_ROUNDS:
            parser.error("--record needs at least %d rounds (medians with min–max)" % RECORD_MIN_ROUNDS)
    args.out = RESULTS if args.record else SCRATCH
    return args


def main():
    args = parse_arguments(sys.argv[1:])
    where = "%s/deadlock.{json,md} (%s)" % (relative(args.out), "recorded: the README cites them" if args.record else
                                            "scratch, not committed; --record to record issue #3's run")
    if args.dry_run:
        print("benchmarks/deadlock: arguments fine; results would go to %s" % where)
        return
    if not os.access(SIXTEEN, os.X_OK):
        sys.exit("benchmarks/deadlock: no sixteen binary at %s (build it, or set SIXTEEN_BIN)" % SIXTEEN)
    print("benchmarks/deadlock: results go to %s" % where, file=sys.stderr, flush=True)
    started = time.monotonic()
    when = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    runs = []
    for round_ in range(args.rounds):
        run = run_upper(args.bytes, 1, args.stall, args.reactors)
        run["round"] = round_
        runs.append(run)
        print(json.dumps(run), flush=True)
    many = run_upper(args.bytes, args.clients, max(args.stall, 30), args.reactors)
    print(json.dumps(many), flush=True)
    book = run_book(args.bytes, args.stall)
    print(json.dumps(book), flush=True)

    wall = round(time.monotonic() - started)
    command = " ".join(["benchmarks/deadlock"] + sys.argv[1:])
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "deadlock.json"), "w") as f:
        json.dump({"date": when, "machine": machine(), "command": command, "recorded": args.record, "wall_seconds": wall,
                   "single": runs, "concurrent": many, "book": book}, f, indent=2)
    mbs = [r["mb_per_s"] for r in runs]
    secs = [r["seconds"] for r in runs]
    rss = [r["server_peak_rss_mib"] for r in runs]
    lines = [
        "# Deadlock benchmark (%s)" % when, "",
        "`%s` on %s, %s cores, kernel %s; %d s." % (command, platform.node() or "this machine",
                                                    os.cpu_count(), platform.release(), wall),
        "Client and server share the machine's cores. Medians of %d round%s (min–max); every server started fresh." % (
            args.rounds, "" if args.rounds == 1 else "s"), "",
        "| run | clients × octets | result | time (s) | MB/s | server peak RSS (MiB) |",
        "| --- | --- | --- | --- | --- | --- |",
        "| sixteen --protocol upper | 1 × %d | %s | %.2f (%.2f–%.2f) | %.1f (%.1f–%.1f) | %.1f (%.1f–%.1f) |" % (
            args.bytes, "all verified" if all(r["ok"] for r in runs) else "FAILED",
            statistics.median(secs), min(secs), max(secs), statistics.median(mbs), min(mbs), max(mbs),
            statistics.median(rss), min(rss), max(rss)),
        "| sixteen --protocol upper | %d × %d at once | %s | %.2f | %.1f (aggregate) | %.1f |" % (
            args.clients, args.bytes, "%d of %d verified" % (many["verified_clients"], args.clients),
            many["seconds"], many["mb_per_s"], many["server_peak_rss_mib"]),
        "| book's blocking tcp_deadlock.py | 1 × %d | %s | %.2f | – | – |" % (
            args.bytes, "completed" if book["ok"] else "stalled (exit %d): %s" % (book["exit"], book["outcome"].replace("sixteen: ", "")),
            book["seconds"]),
        "",
    ]
    with open(os.path.join(args.out, "deadlock.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    print("benchmarks/deadlock: took %d s; results in %s" % (wall, where), file=sys.stderr)
    ok = all(r["ok"] for r in runs) and many["ok"] and not book["ok"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
