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

Writes raw.jsonl (every run), summary.md (the tables), sessions.png
(sessions/s against connections in flight) and machine.json (the machine and
the run) into benchmarks/results/tmp/run/, which git ignores; only --record
writes benchmarks/results/latest/, the results the README cites, and only for
a full run of the whole matrix.

SIXTEEN_BIN names the sixteen binary (server and load client); default
.build/release/sixteen.
"""
import argparse, datetime, importlib.util, json, os, platform, re, signal, statistics, subprocess, sys, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SIXTEEN = os.environ.get("SIXTEEN_BIN") or os.path.join(ROOT, ".build", "release", "sixteen")
PEERS = os.path.join(ROOT, "benchmarks", "peers")
RESULTS = os.path.join(ROOT, "benchmarks", "results")
RECORD = os.path.join(RESULTS, "latest")   # committed, linked from the README: --record only
SCRATCH = os.path.join(RESULTS, "tmp", "run")  # git-ignored: every other run
OUTPUTS = ("raw.jsonl", "summary.md", "sessions.png", "machine.json")
CORES = os.cpu_count() or 1
SERVERS = ("sixteen", "c-libev", "swift-nio", "asyncio", "book")
KINDS = ("sixteen", "upper", "idle", "deadlock", "reactors")
RECORD_MIN_ROUNDS = 3

# How servers are named and drawn in the plot and the tables. Every line has
# its own marker and dash as well as its own colour (Okabe-Ito, safe for
# colour-blind readers), so the plot still reads in grey or in print.
LABELS = {"sixteen": "sixteen", "c-libev": "C on libev", "swift-nio": "SwiftNIO",
          "asyncio": "asyncio", "book": "the book's blocking server"}
STYLES = {"sixteen": dict(color="#D55E00", marker="o", linestyle="-"),
          "c-libev": dict(color="#009E73", marker="s", linestyle="--"),
          "swift-nio": dict(color="#CC79A7", marker="^", linestyle="-."),
          "asyncio": dict(color="#0072B2", marker="D", linestyle=":"),
          "book": dict(color="#000000", marker="v", linestyle=(0, (6, 2, 1, 2, 1, 2)))}


from common import OneLineParser, cpu_model


def positive_int(text):
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("not a whole number: %r" % text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1: %r" % text)
    return value


def names(allowed):
    """An argparse type: a comma-separated subset of `allowed`, in the order given."""
    def parse(text):
        picked = [n for n in text.split(",") if n]
        unknown = [n for n in picked if n not in allowed]
        if unknown or not picked:
            raise argparse.ArgumentTypeError("%r: choose from %s" % (text, ",".join(allowed)))
        return picked
    return parse


def relative(path):
    """A path as the user would type it from the repository root."""
    path = os.path.abspath(path)
    return os.path.relpath(path, ROOT) if path.startswith(ROOT + os.sep) else path


def git_commit():
    """The commit the run was made from, '+dirty' when the sources differ from it."""
    def git(*argv):
        return subprocess.run(["git", "-C", ROOT] + list(argv), capture_output=True, text=True).stdout.strip()
    commit = git("rev-parse", "--short", "HEAD") or "?"
    dirty = git("status", "--porcelain", "--untracked-files=no", "--", "Sources", "Package.swift")
    return commit + ("+dirty" if dirty else "")


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
    model = cpu_model()
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


def plot(records, path, run):
    """sessions/s against connections in flight: for each server the median of
    the rounds, with a min-max bar; y from 0; x ticks only where measured;
    error counts written beside the points that had any; the run stamped at
    the foot. `records` are the "sixteen" kind's; `run` is machine.json's
    "run" entry (date, rounds, quick, duration). Returns whether it drew."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullLocator

    concurrencies = sorted({r["connections"] for r in records})
    servers = sorted({r["server"] for r in records}, key=lambda n: SERVERS.index(n) if n in SERVERS else len(SERVERS))
    if not concurrencies:
        return False
    fig, ax = plt.subplots(figsize=(9, 5))
    top = 0
    annotations = []  # (x, y, text, colour): drawn once the y range is known
    for index, name in enumerate(servers):
        # Each server's points sit a little left or right of the measured x
        # (a constant factor, so the same shift everywhere on the log axis),
        # so that bars of servers with close medians do not hide each other.
        dodge = 10 ** (0.018 * (index - (len(servers) - 1) / 2))
        xs, mids, lows, highs, notes = [], [], [], [], []
        for c in concurrencies:
            runs = [r for r in records if r["server"] == name and r["connections"] == c]
            values = [r["result"]["sessions_per_second"] for r in runs if "sessions_per_second" in r["result"]]
            errors = {}
            for r in runs:
                for kind, count in r["result"].get("errors", {}).items():
                    errors[kind] = errors.get(kind, 0) + count
            failed = sum(1 for r in runs if "error" in r["result"])
            note = []
            if sum(errors.values()):
                note.append("{:,} errors ({})".format(sum(errors.values()), ", ".join(k.replace("_", " ") for k, n in errors.items() if n)))
            if failed:
                note.append("%d run%s failed" % (failed, "" if failed == 1 else "s"))
            if values:
                m = statistics.median(values)
                xs.append(c * dodge)
                mids.append(m)
                lows.append(m - min(values))
                highs.append(max(values) - m)
                top = max(top, max(values))
                notes.append((c * dodge, m, "; ".join(note)))
            elif note:
                # Every run at this point failed: nothing to draw but the failure.
                notes.append((c * dodge, 0, "; ".join(note)))
        style = STYLES.get(name, {})
        ax.errorbar(xs, mids, yerr=[lows, highs], label=LABELS.get(name, name), capsize=4, linewidth=1.6,
                    markersize=6, **style)
        annotations.extend((x, y, text, style.get("color", "black")) for x, y, text in notes if text)
    ax.set_xscale("log")
    ax.set_xticks(concurrencies, labels=["{:,}".format(c) for c in concurrencies])
    ax.xaxis.set_minor_locator(NullLocator())
    # Room either side of the first and last point on the log axis.
    ax.set_xlim(concurrencies[0] / 1.6, concurrencies[-1] * 1.6)
    ax.set_ylim(0, top * 1.12 if top else 1)
    for x, y, text, colour in annotations:
        # Below the point, unless that would run into the x axis.
        below = y > 0.15 * top
        ax.annotate(text, (x, y), xytext=(0, -14 if below else 14), textcoords="offset points", ha="center",
                    va="top" if below else "bottom", fontsize=8, color=colour,
                    bbox=dict(boxstyle="round,pad=0.15", facecolor="white", edgecolor="none", alpha=0.8))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: "{:,.0f}".format(v)))
    ax.set_xlabel("connections in flight (closed loop)")
    ax.set_ylabel("sessions/s")
    ax.set_title("sixteen protocol: sessions/s by connections in flight\n"
                 "%d cores shared by the load client and the server" % run.get("cores", CORES), fontsize=11)
    ax.grid(True, axis="y", alpha=0.3)
    ax.legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    rounds = run["rounds"]
    stamp = "run of %s  ·  points: median of %d round%s, bars: min–max  ·  %g s measured per run  ·  errors summed over the rounds" % (
        run["date"].replace("T", " ").replace("Z", " UTC"), rounds, "" if rounds == 1 else "s", run["duration"])
    fig.text(0.01, 0.015, stamp, fontsize=8, color="#444444")
    if run["quick"]:
        fig.text(0.99, 0.97, "QUICK RUN\nnot for recording", fontsize=10, color="#D55E00", ha="right", va="top", weight="bold")
    else:
        fig.text(0.99, 0.97, "full run", fontsize=10, color="#444444", ha="right", va="top")
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def run_facts(records, facts):
    """machine.json's "run" entry; for results written before it existed
    (no "run" key), what the records themselves show: the rounds, and the
    measured seconds of a sixteen run (1.0 is what --quick measures)."""
    if "run" in facts:
        return facts["run"]
    sixteen = [r for r in records if r["kind"] == "sixteen"]
    load = sixteen[0]["load"] if sixteen else []
    duration = float(load[load.index("-d") + 1]) if "-d" in load else 0.0
    return {"date": facts.get("date", "?"), "cores": facts.get("cores", CORES),
            "rounds": max((r.get("round", 0) for r in records), default=0) + 1,
            "duration": duration, "quick": duration == 1.0}


def replot(folder):
    """Draws folder/sessions.png again from folder/raw.jsonl and machine.json."""
    with open(os.path.join(folder, "raw.jsonl")) as f:
        records = [json.loads(line) for line in f if line.strip()]
    with open(os.path.join(folder, "machine.json")) as f:
        facts = json.load(f)
    path = os.path.join(folder, "sessions.png")
    if not plot([r for r in records if r["kind"] == "sixteen"], path, run_facts(records, facts)):
        sys.exit("benchmarks/run: %s has no sixteen runs to plot" % relative(folder))
    print("drew %s" % relative(path))


def parse_arguments(argv):
    parser = OneLineParser(prog="benchmarks/run", description=__doc__.splitlines()[0],
                           epilog="Results go to benchmarks/results/tmp/run/ (git-ignored) unless --record is given.")
    parser.add_argument("--quick", action="store_true",
                        help="a short variant: 1 round, 1 s runs, 2,000 idle connections, 256 MiB deadlock; never recorded")
    parser.add_argument("--record", action="store_true",
                        help="write benchmarks/results/latest/ (the results the README cites); needs a full run of the whole matrix")
    parser.add_argument("--rounds", type=positive_int, help="rounds (default 3; 1 with --quick)")
    parser.add_argument("--out", help="where the results go (default benchmarks/results/tmp/run; not with --record)")
    parser.add_argument("--only", type=names(SERVERS), help="comma-separated servers to run (default: all that are built): " + ",".join(SERVERS))
    parser.add_argument("--kinds", type=names(KINDS), default=list(KINDS),
                        help="comma-separated parts of the matrix to run (default: all): " + ",".join(KINDS))
    parser.add_argument("--dry-run", action="store_true", help="check the arguments, say where results would go, run nothing")
    parser.add_argument("--replot", metavar="DIR", help="only draw DIR/sessions.png again from DIR/raw.jsonl and DIR/machine.json")
    args = parser.parse_args(argv)
    if args.replot is not None:
        if argv != ["--replot", args.replot] and argv != ["--replot=" + args.replot]:
            parser.error("--replot takes no other option")
        if not os.path.isfile(os.path.join(args.replot, "raw.jsonl")):
            parser.error("--replot %s: no raw.jsonl there" % args.replot)
        return args
    if args.record:
        # results/latest/ is what the README cites: only a full run of the whole matrix goes there.
        if args.quick:
            parser.error("--quick runs are never recorded: drop --record, or drop --quick for a full run")
        if args.out:
            parser.error("--record writes benchmarks/results/latest/: drop --out")
        if args.only or args.kinds != list(KINDS):
            parser.error("--record records the whole matrix: drop --only and --kinds")
        if args.rounds is not None and args.rounds < RECORD_MIN_ROUNDS:
            parser.error("--record needs at least %d rounds (medians with min–max)" % RECORD_MIN_ROUNDS)
    args.out = RECORD if args.record else (args.out or SCRATCH)
    return args


def main():
    argv = sys.argv[1:]
    args = parse_arguments(argv)
    if args.replot is not None:
        replot(args.replot)
        return
    out = args.out
    where = "%s (recorded: the README cites it)" % relative(out) if args.record else \
        "%s (scratch, not committed%s)" % (relative(out), "" if args.quick else "; --record to record a full run")
    if args.dry_run:
        print("benchmarks/run: arguments fine; results would go to %s" % where)
        return
    started = time.monotonic()
    quick = args.quick
    kinds = set(args.kinds)
    rounds = args.rounds or (1 if quick else RECORD_MIN_ROUNDS)
    duration, warmup = (1.0, 0.3) if quick else (3.0, 1.0)
    concurrencies = [1, 50, 500]
    idle_connections = 2000 if quick else 10000
    deadlock_bytes = (256 << 20) if quick else (1 << 30)
    reactors = CORES

    if not os.access(SIXTEEN, os.X_OK):
        sys.exit("benchmarks/run: no sixteen binary at %s (build it, or set SIXTEEN_BIN)" % SIXTEEN)
    table = servers(reactors)
    available = {name: make for name, make in table.items() if os.path.exists(make("sixteen")[0]) or make("sixteen")[0] == sys.executable}
    missing = sorted(set(table) - set(available))
    if args.record and missing:
        sys.exit("benchmarks/run: --record needs every server, and these are not built: %s" % ", ".join(missing))
    if args.only:
        unbuilt = [n for n in args.only if n not in available]
        if unbuilt:
            sys.exit("benchmarks/run: --only names servers that are not built: %s" % ", ".join(unbuilt))
        available = {k: v for k, v in available.items() if k in args.only}
    elif missing:
        print("not built, left out: %s" % ", ".join(missing), file=sys.stderr)

    # The plot needs matplotlib: checked now, not after minutes of runs.
    if "sixteen" in kinds and importlib.util.find_spec("matplotlib") is None:
        sys.exit("benchmarks/run: no matplotlib in %s: run benchmarks/run, which installs it into benchmarks/.venv" % sys.executable)

    os.makedirs(out, exist_ok=True)
    # Clear the previous run's files so that a partial run leaves none behind
    # (only these names: --out may be a folder with other things in it).
    for name in OUTPUTS:
        if os.path.exists(os.path.join(out, name)):
            os.remove(os.path.join(out, name))
    print("benchmarks/run: results go to %s" % where, file=sys.stderr, flush=True)
    run = {"date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           "command": " ".join(["benchmarks/run"] + argv), "quick": quick, "recorded": args.record,
           "rounds": rounds, "duration": duration, "warmup": warmup, "cores": CORES,
           "sixteen": SIXTEEN, "commit": git_commit()}
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
    facts["date"] = run["date"]
    # The measuring alone, without the builds that benchmarks/run does first.
    run["wall_seconds"] = round(time.monotonic() - started)
    facts["run"] = run
    with open(os.path.join(out, "machine.json"), "w") as f:
        json.dump(facts, f, indent=2)
    plotted = plot([r for r in records if r["kind"] == "sixteen"], os.path.join(out, "sessions.png"), run)
    summary = render(records, facts, run, idle_connections, deadlock_bytes, concurrencies, plotted)
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write(summary)
    print(summary)
    print("benchmarks/run: took %d s; results in %s" % (run["wall_seconds"], where), file=sys.stderr)


def pick(records, kind, server, key, **match):
    out = []
    for r in records:
        if r["kind"] != kind or r["server"] != server or any(r.get(k) != v for k, v in match.items()):
            continue
        value = r["result"].get(key) if key in r.get("result", {}) else r.get(key)
        out.append(value)
    return out


def render(records, facts, run, idle_connections, deadlock_bytes, concurrencies, plotted):
    order = list(SERVERS)
    names = sorted({r["server"] for r in records if r["server"] in order}, key=order.index)
    rounds = run["rounds"]
    lines = ["# Benchmark results", ""]
    if run["quick"]:
        lines += ["**A quick run (`--quick`): a check that the benchmark works, not figures to quote.**", ""]
    lines += ["`%s` on %s (commit %s), %d s; %d cores (%s), kernel %s, %s. Client (`sixteen load`, %d threads) and server share the cores. "
              "Medians of %d round%s, min–max in brackets; every server started fresh for every run, runs interleaved across servers. "
              "Each sixteen run: %.1f s measured after %.1f s warm-up." % (
                  run["command"], run["date"], run["commit"], run["wall_seconds"], facts["cores"], facts["cpu"], facts["kernel"],
                  facts["swift"], CORES, rounds, "" if rounds == 1 else "s", run["duration"], run["warmup"]), ""]
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
        lines.append("| %s | %s | %s | %s | %s | %s |" % (LABELS.get(name, name), " | ".join(cells), cpu, client, p99,
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
            LABELS.get(name, name), "verified" if ok else runs[0]["outcome"].replace("sixteen: ", "").replace("|", "/"),
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
