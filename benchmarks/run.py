#!/usr/bin/env python3
"""Sixteen's throughput benchmark against its peers (issue #4).

Every server is started fresh for every run; runs are interleaved across
servers (A B C A B C) for R rounds; figures are medians with min-max. The load
comes from `sixteen load` (closed loop, verified replies, JSON). Per run it
records the load client's figures plus the server's CPU time (user+sys from
/proc) and peak RSS (VmHWM).

Matrix:
  sixteen   sessions/s at 1, 50 and 500 connections in flight, every server
  upper     MB/s with 50 connections x 1 MiB (send-all), every server but the book's
  idle      server RSS per connection with 10,000 idle connections
  deadlock  the book's client with 1 GiB: time, MB/s, server peak RSS
  reactors  Sixteen with 1 and with N reactors (sixteen at 50 in flight, upper)

Writes benchmarks/results/latest/: raw.jsonl (every run), summary.md (the
tables), sessions.png (sessions/s against connections in flight), machine.json.
"""
import argparse, datetime, json, os, platform, re, signal, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIXTEEN = os.path.join(ROOT, ".build", "release", "sixteen")
PEERS = os.path.join(ROOT, "benchmarks", "peers")
OUT = os.path.join(ROOT, "benchmarks", "results", "latest")
CORES = os.cpu_count() or 1


def servers(reactors):
    """name -> (argv for protocol p, threads)"""
    return {
        "sixteen": lambda p, n=reactors: [SIXTEEN, "server", "--protocol", p, "-p", "0", "--reactors", str(n)],
        "c-libev": lambda p, n=reactors: [os.path.join(PEERS, "c-libev", "build", "sixteen-c"), "--protocol", p, "-p", "0", "--threads", str(n)],
        "swift-nio": lambda p, n=reactors: [os.path.join(PEERS, "swift-nio", "sixteen-nio", ".build", "release", "sixteen-nio"), "--protocol", p, "-p", "0", "--threads", str(n)],
        "asyncio": lambda p, n=1: [sys.executable, os.path.join(PEERS, "asyncio", "server.py"), "--protocol", p, "-p", "0"],
        "book": lambda p, n=1: [sys.executable, "-u", os.path.join(PEERS, "book", "tcp_sixteen.py" if p == "sixteen" else "tcp_deadlock.py"),
                                "server", "127.0.0.1", "-p", "0"],
    }


class Server:
    def __init__(self, argv):
        self.proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline()
        match = re.search(r"\('[^']*', (\d+)", line)
        if not match:
            self.proc.kill()
            raise RuntimeError("no 'Listening at' line from %s: %r" % (argv[0], line))
        self.port = int(match.group(1))
        # Some servers (the book's) print a line per session: keep the pipe drained.
        import threading
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self):
        try:
            for _ in self.proc.stdout:
                pass
        except (ValueError, OSError):
            pass

    def usage(self):
        with open("/proc/%d/stat" % self.proc.pid) as f:
            fields = f.read().rsplit(")", 1)[1].split()
        cpu = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        status = {}
        with open("/proc/%d/status" % self.proc.pid) as f:
            for line in f:
                key, _, value = line.partition(":")
                status[key] = value.strip()
        return {"cpu": cpu, "rss_kib": int(status["VmRSS"].split()[0]), "hwm_kib": int(status["VmHWM"].split()[0])}

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def load(port, args, limit):
    argv = [SIXTEEN, "load", "127.0.0.1", "-p", str(port), "--json"] + args
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        return {"error": "load client timed out after %ss" % limit}
    try:
        return json.loads(done.stdout)
    except ValueError:
        return {"error": (done.stderr or done.stdout).strip()[-300:]}


def run_load(name, argv, load_args, limit, sample_at=None):
    """One fresh server, one load run; returns a record."""
    server = Server(argv)
    try:
        time.sleep(0.2)
        before = server.usage()
        sampled = None
        if sample_at is not None:
            import threading
            def sample():
                nonlocal sampled
                time.sleep(sample_at)
                try:
                    sampled = server.usage()
                except OSError:
                    pass
            sampler = threading.Thread(target=sample)
            sampler.start()
        result = load(server.port, load_args, limit)
        if sample_at is not None:
            sampler.join()
        after = server.usage()
    finally:
        server.stop()
    record = {"server": name, "argv": argv, "load": load_args, "result": result,
              "server_cpu_seconds": round(after["cpu"] - before["cpu"], 3),
              "server_rss_start_kib": before["rss_kib"], "server_peak_rss_kib": after["hwm_kib"]}
    if sampled:
        record["server_rss_held_kib"] = sampled["rss_kib"]
    ok = result.get("sessions_ok", 0)
    if ok:
        record["server_cpu_us_per_session"] = round(record["server_cpu_seconds"] / ok * 1e6, 2)
    return record


def stream(name, argv, count, stall):
    server = Server(argv)
    try:
        started = time.monotonic()
        done = subprocess.run([SIXTEEN, "stream", "127.0.0.1", str(count), "-p", str(server.port), "--timeout", str(stall)],
                              capture_output=True, text=True)
        seconds = time.monotonic() - started
        usage = server.usage()
    finally:
        server.stop()
    return {"server": name, "octets": count, "exit": done.returncode, "seconds": round(seconds, 3),
            "mb_per_s": round(count / seconds / 1e6, 1) if done.returncode == 0 else None,
            "server_peak_rss_kib": usage["hwm_kib"], "server_cpu_seconds": usage["cpu"],
            "outcome": (done.stderr.strip() or done.stdout.strip().splitlines()[-1])}


def med(values):
    values = [v for v in values if v is not None]
    if not values:
        return "–"
    m = statistics.median(values)
    if len(values) == 1:
        return fmt(m)
    return "%s (%s–%s)" % (fmt(m), fmt(min(values)), fmt(max(values)))


def fmt(v):
    if isinstance(v, float) and v >= 100:
        return "%.0f" % v
    if isinstance(v, float):
        return "%.2f" % v if v < 10 else "%.1f" % v
    return str(v)


def machine():
    def read(path):
        try:
            with open(path) as f:
                return f.read().strip()
        except OSError:
            return "?"
    model = "?"
    for line in read("/proc/cpuinfo").splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.strip().splitlines()
    libev = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", "libev-dev"], capture_output=True, text=True).stdout
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "kernel": platform.release(), "cores": CORES, "cpu": model, "python": platform.python_version(),
        "swift": swift[0] if swift else "?", "libev": libev or "?",
        "sysctl": {key: read("/proc/sys/" + key.replace(".", "/")) for key in [
            "net.core.somaxconn", "net.ipv4.tcp_max_syn_backlog", "net.ipv4.ip_local_port_range",
            "net.ipv4.tcp_tw_reuse", "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "fs.nr_open"]},
        "ulimit_nofile": subprocess.run(["sh", "-c", "ulimit -n"], capture_output=True, text=True).stdout.strip(),
    }


def plot(records, path, concurrencies):
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib missing: no plot (pip install matplotlib)", file=sys.stderr)
        return False
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for name in sorted({r["server"] for r in records}):
        xs, ys = [], []
        for c in concurrencies:
            values = [r["result"].get("sessions_per_second") for r in records
                      if r["server"] == name and r["connections"] == c and "sessions_per_second" in r["result"]]
            if values:
                xs.append(c)
                ys.append(statistics.median(values))
        if xs:
            ax.plot(xs, ys, marker="o", label=name)
    ax.set_xscale("log")
    ax.set_xlabel("connections in flight")
    ax.set_ylabel("sessions/s (median)")
    ax.set_title("sixteen protocol, closed loop, %d cores shared by client and server" % CORES)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return True


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a short variant (under 2 minutes)")
    parser.add_argument("--rounds", type=int)
    parser.add_argument("--out", default=OUT, help="where the results go (default: benchmarks/results/latest)")
    parser.add_argument("--only", help="comma-separated servers to run (default: all that are built)")
    parser.add_argument("--kinds", default="sixteen,upper,idle,deadlock,reactors",
                        help="comma-separated parts of the matrix to run (default: all)")
    args = parser.parse_args()
    quick = args.quick
    kinds = set(args.kinds.split(","))
    rounds = args.rounds or (1 if quick else 3)
    duration, warmup = (1.0, 0.3) if quick else (3.0, 1.0)
    concurrencies = [1, 50, 500]
    idle_connections = 2000 if quick else 10000
    deadlock_bytes = (256 << 20) if quick else (1 << 30)
    reactors = CORES

    table = servers(reactors)
    available = {name: make for name, make in table.items() if os.path.exists(make("sixteen")[0]) or make("sixteen")[0] == sys.executable}
    if args.only:
        available = {k: v for k, v in available.items() if k in args.only.split(",")}
    missing = sorted(set(table) - set(available))
    if missing:
        print("not built, left out: %s" % ", ".join(missing), file=sys.stderr)

    out = args.out
    os.makedirs(out, exist_ok=True)
    raw = open(os.path.join(out, "raw.jsonl"), "w")
    records = []

    def keep(kind, record, **extra):
        record.update(kind=kind, **extra)
        records.append(record)
        raw.write(json.dumps(record) + "\n")
        raw.flush()
        result = record.get("result", {})
        print("%-9s %-10s %s" % (kind, record["server"], result.get("error") or
              {k: result.get(k) for k in ("connections", "sessions_per_second", "megabytes_per_second", "errors_total")}
              if result else record.get("outcome", "")), flush=True)

    session_load = lambda c: ["-c", str(c), "-d", str(duration), "--warmup", str(warmup), "--timeout", "5"]
    limit = duration + warmup + 30
    for round_ in range(rounds):
        for c in (concurrencies if "sixteen" in kinds else []):
            for name, make in available.items():
                keep("sixteen", run_load(name, make("sixteen"), session_load(c), limit), connections=c, round=round_)
        for name, make in (available.items() if "upper" in kinds else []):
            if name == "book":
                continue
            keep("upper", run_load(name, make("upper"), ["--protocol", "upper", "-c", "50", "-n", "50" if quick else "150",
                                                           "--bytes", "1M", "--timeout", "10"], 120), connections=50, round=round_)
        for name, make in (available.items() if "idle" in kinds else []):
            if name == "book":
                continue
            hold = 2.0 if quick else 4.0
            keep("idle", run_load(name, make("sixteen"), ["--protocol", "idle", "-c", str(idle_connections), "-d", str(hold), "--timeout", "30"],
                                  hold + 60, sample_at=hold * 0.8), connections=idle_connections, round=round_)
        # Sixteen with one reactor, beside its N-reactor runs above.
        # Sixteen and the C peer with one reactor (thread), beside their N-reactor runs above.
        for name in [n for n in ("sixteen", "c-libev") if n in available and "reactors" in kinds]:
            one = available[name]
            keep("reactors", run_load(name + "-1r", one("sixteen", 1), session_load(50), limit), connections=50, round=round_, reactors=1)
            keep("reactors-upper", run_load(name + "-1r", one("upper", 1), ["--protocol", "upper", "-c", "50", "-n", "50" if quick else "150",
                                                                          "--bytes", "1M", "--timeout", "10"], 120), connections=50, round=round_, reactors=1)
    for name, make in (available.items() if "deadlock" in kinds else []):
        if name == "book" or (quick and name != "sixteen"):
            continue
        for round_ in range(rounds if name == "sixteen" else 1):
            keep("deadlock", stream(name, make("upper"), deadlock_bytes, 10), round=round_)
    if "book" in available and "deadlock" in kinds:
        keep("deadlock", stream("book", available["book"]("upper"), deadlock_bytes, 3), round=0)
    raw.close()

    facts = machine()
    with open(os.path.join(out, "machine.json"), "w") as f:
        json.dump(facts, f, indent=2)
    plotted = plot([r for r in records if r["kind"] == "sixteen"], os.path.join(out, "sessions.png"), concurrencies)
    summary = render(records, facts, rounds, quick, duration, warmup, idle_connections, deadlock_bytes, concurrencies, plotted, sys.argv[1:])
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(summary)
    print(summary)


def pick(records, kind, server, key, **match):
    out = []
    for r in records:
        if r["kind"] != kind or r["server"] != server or any(r.get(k) != v for k, v in match.items()):
            continue
        value = r["result"].get(key) if key in r.get("result", {}) else r.get(key)
        out.append(value)
    return out


def render(records, facts, rounds, quick, duration, warmup, idle_connections, deadlock_bytes, concurrencies, plotted, argv):
    order = ["sixteen", "c-libev", "swift-nio", "asyncio", "book"]
    names = sorted({r["server"] for r in records if r["server"] in order}, key=order.index)
    lines = ["# Benchmark results", "",
             "`benchmarks/run%s` on %s; %d cores (%s), kernel %s, %s. Client (`sixteen load`, %d threads) and server share the cores. "
             "Medians of %d round%s, min–max in brackets; every server started fresh for every run, runs interleaved across servers. "
             "Each sixteen run: %.1f s measured after %.1f s warm-up." % (
                 (" " + " ".join(argv)) if argv else "", facts["date"], facts["cores"], facts["cpu"], facts["kernel"], facts["swift"],
                 CORES, rounds, "" if rounds == 1 else "s", duration, warmup), ""]
    lines += ["## sixteen: sessions/s by connections in flight", "",
              "| server | " + " | ".join("%d in flight" % c for c in concurrencies) + " | server CPU µs/session at 50 | client CPU µs/session at 50 | p99 latency at 50 (ms) | errors |",
              "| --- |" + " --- |" * (len(concurrencies) + 4)]
    for name in names:
        cells = [med(pick(records, "sixteen", name, "sessions_per_second", connections=c)) for c in concurrencies]
        cpu = med(pick(records, "sixteen", name, "server_cpu_us_per_session", connections=50))
        client = med(pick(records, "sixteen", name, "client_cpu_us_per_session", connections=50))
        p99 = med([r["result"]["latency_us"]["p99"] / 1000 for r in records if r["kind"] == "sixteen" and r["server"] == name
                   and r.get("connections") == 50 and "latency_us" in r["result"]])
        errors = sum(r["result"].get("errors_total", 0) for r in records if r["kind"] == "sixteen" and r["server"] == name)
        failed = sum(1 for r in records if r["kind"] == "sixteen" and r["server"] == name and "error" in r["result"])
        lines.append("| %s | %s | %s | %s | %s | %s |" % (name, " | ".join(cells), cpu, client, p99,
                                                        "%d%s" % (errors, (", %d runs failed" % failed) if failed else "")))
    if "sixteen" in names:
        lines += ["", "Ratios at 50 in flight (medians): " + ", ".join(
            "sixteen/%s sessions/s %s, server CPU per session %s" % (
                other, ratio(pick(records, "sixteen", "sixteen", "sessions_per_second", connections=50),
                             pick(records, "sixteen", other, "sessions_per_second", connections=50)),
                ratio(pick(records, "sixteen", "sixteen", "server_cpu_us_per_session", connections=50),
                      pick(records, "sixteen", other, "server_cpu_us_per_session", connections=50)))
            for other in names if other != "sixteen") + "."]
    lines += ["", "## upper: 50 connections × 1 MiB, send-all", "", "| server | MB/s | server peak RSS (MiB) | errors |", "| --- | --- | --- | --- |"]
    for name in [n for n in names if n != "book"] + [n for n in ("sixteen-1r", "c-libev-1r") if any(r["server"] == n for r in records)]:
        kind = "reactors-upper" if name.endswith("-1r") else "upper"
        lines.append("| %s | %s | %s | %s |" % (name, med(pick(records, kind, name, "megabytes_per_second")),
                                                 med([r["server_peak_rss_kib"] / 1024 for r in records if r["kind"] == kind and r["server"] == name]),
                                                 sum(r["result"].get("errors_total", 0) for r in records if r["kind"] == kind and r["server"] == name)))
    lines += ["", "## idle: server memory with %d idle connections" % idle_connections, "",
              "| server | RSS held (MiB) | RSS before (MiB) | bytes per connection | connections established | errors |", "| --- | --- | --- | --- | --- | --- |"]
    for name in [n for n in names if n != "book"]:
        runs = [r for r in records if r["kind"] == "idle" and r["server"] == name]
        per = [(r["server_rss_held_kib"] - r["server_rss_start_kib"]) * 1024 / idle_connections for r in runs if "server_rss_held_kib" in r]
        lines.append("| %s | %s | %s | %s | %s | %s |" % (
            name, med([r.get("server_rss_held_kib", 0) / 1024 for r in runs]), med([r["server_rss_start_kib"] / 1024 for r in runs]),
            med([round(p) for p in per]), med([r["result"].get("connections_established") for r in runs]),
            sum(r["result"].get("errors_total", 0) for r in runs)))
    lines += ["", "## deadlock: the book's client with %d octets" % deadlock_bytes, "",
              "| server | result | time (s) | MB/s | server peak RSS (MiB) |", "| --- | --- | --- | --- | --- |"]
    for name in ["sixteen", "c-libev", "swift-nio", "asyncio", "book"]:
        runs = [r for r in records if r["kind"] == "deadlock" and r["server"] == name]
        if not runs:
            continue
        ok = all(r["exit"] == 0 for r in runs)
        lines.append("| %s | %s | %s | %s | %s |" % (
            name, "verified" if ok else runs[0]["outcome"].replace("sixteen: ", "").replace("|", "/"),
            med([r["seconds"] for r in runs]), med([r["mb_per_s"] for r in runs]),
            med([r["server_peak_rss_kib"] / 1024 for r in runs])))
    if any(r["kind"] == "reactors" for r in records):
        lines += ["", "## 1 and %d reactors (threads), sixteen at 50 in flight" % CORES, "",
                  "| server | reactors | sessions/s | server CPU µs/session |", "| --- | --- | --- | --- |"]
        for name in ("sixteen", "c-libev"):
            if not any(r["server"] == name + "-1r" for r in records):
                continue
            lines.append("| %s | 1 | %s | %s |" % (name, med(pick(records, "reactors", name + "-1r", "sessions_per_second")),
                                                   med(pick(records, "reactors", name + "-1r", "server_cpu_us_per_session"))))
            lines.append("| %s | %d | %s | %s |" % (name, CORES, med(pick(records, "sixteen", name, "sessions_per_second", connections=50)),
                                                    med(pick(records, "sixteen", name, "server_cpu_us_per_session", connections=50))))
    if plotted:
        lines += ["", "![sessions/s against connections in flight](sessions.png)"]
    lines += ["", "Machine: `%s`" % json.dumps(facts["sysctl"]), ""]
    return "\n".join(lines)


def ratio(a, b):
    a = [v for v in a if v]
    b = [v for v in b if v]
    if not a or not b:
        return "–"
    return "%.2f×" % (statistics.median(a) / statistics.median(b))


if __name__ == "__main__":
    main()
