#!/usr/bin/env python3
"""The deadlock benchmark (issue #3): the book's deadlock client with 1 GiB.

Runs `sixteen stream 127.0.0.1 BYTES` (the book's client: everything is sent
before anything is read) against
  1. `sixteen server --protocol upper`, started fresh for each round;
  2. ten such clients at once against one fresh server;
  3. the book's blocking server (tcp_deadlock.py), which must stall; the
     client gives up after --stall seconds of no progress.
Records wall time, MB/s, the server's peak RSS (VmHWM from /proc) and CPU
time, as raw JSON lines and a Markdown summary under benchmarks/results/.
Bounded: every process is started by this script and killed by it.
"""
import argparse, datetime, json, os, platform, statistics, subprocess, sys, time

from run import Server, machine  # the matrix driver's server handling, shared

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIXTEEN = os.path.join(ROOT, ".build", "release", "sixteen")
BOOK = os.path.join(ROOT, "benchmarks", "peers", "book", "tcp_deadlock.py")
RESULTS = os.path.join(ROOT, "benchmarks", "results")


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


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bytes", type=int, default=1 << 30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=10)
    parser.add_argument("--stall", type=float, default=5)
    parser.add_argument("--reactors", type=int, default=os.cpu_count())
    args = parser.parse_args()

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

    os.makedirs(RESULTS, exist_ok=True)
    with open(os.path.join(RESULTS, "deadlock.json"), "w") as f:
        json.dump({"date": when, "machine": machine(), "command": " ".join(sys.argv), "single": runs,
                   "concurrent": many, "book": book}, f, indent=2)
    mbs = [r["mb_per_s"] for r in runs]
    secs = [r["seconds"] for r in runs]
    rss = [r["server_peak_rss_mib"] for r in runs]
    lines = [
        "# Deadlock benchmark (%s)" % when, "",
        "`%s` on %s, %s cores, kernel %s." % (" ".join(["benchmarks/deadlock"] + sys.argv[1:]), platform.node() or "this machine",
                                              os.cpu_count(), platform.release()),
        "Client and server share the machine's cores. Medians of %d rounds (min–max); every server started fresh." % args.rounds, "",
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
    with open(os.path.join(RESULTS, "deadlock.md"), "w") as f:
        f.write("\n".join(lines))
    print("\n".join(lines))
    ok = all(r["ok"] for r in runs) and many["ok"] and not book["ok"]
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
