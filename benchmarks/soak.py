#!/usr/bin/env python3
"""A soak: one daemon under mixed load for MINUTES (default 10), watched.

The daemon serves both protocols (`--listen sixteen:0 --listen upper:0`)
with its admin listener. Against it, all at once, for the whole run:
  - `sixteen load --rate` (a fixed rate of book sessions);
  - `sixteen load --protocol upper`, send-all and interleaved streams;
  - `sixteen load --protocol idle`: a few thousand connections held open
    (in 7 s rounds, inside the request timeout: see IdleHolders);
  - hostile clients (threads here): resetters (a partial request, then a
    reset), tricklers (one octet every 2 s: the request timeout must close
    them) and never-readers (8 MiB to upper, never read, closed after 15 s:
    their output spills).
Every few seconds it samples /metrics (parsed by prometheus_client, the
reference Python parser): resident memory, open descriptors, spill files,
connections; and takes each interval's client-side p99 from the sixteen
load's per-interval series.

It fails (exit 1) when, between the warm-up (the first minute, or tenth of
the run) and the last 20 s (the ramp-down), resident memory or descriptors
trend upward (the Theil-Sen rise over that window exceeds the allowance);
when the p99 of the last third is more than twice that of the first (plus
1 ms); when a good client's session failed; when the daemon's replied
sessions differ from what the good clients counted; when a trickler
outlived the request timeout; when no sample saw a spill file (the
never-readers must make the daemon spill); or when spill files remain once
every client has gone. It writes summary.json, samples.csv and soak.png
(memory, descriptors and p99 against time) to benchmarks/results/tmp/soak/,
or with --record to benchmarks/results/soak/.
"""
import csv, datetime, json, os, socket, statistics, subprocess, sys, threading, time, urllib.request

from common import OneLineParser, machine_line, process_cpu_seconds

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAMPLE_SECONDS = 5
# How much an upward trend may add over the measured window before it fails.
RSS_ALLOWANCE = (4 << 20, 0.05)   # 4 MiB, or 5% of the mean, whichever is more
FD_ALLOWANCE = (20, 0.02)         # 20 descriptors, or 2% of the mean


def start_daemon(binary):
    """The daemon (spilling to the default directory: its spill files are unnamed, and vanish with it)."""
    argv = [binary, "server", "127.0.0.1", "--listen", "sixteen:0", "--listen", "upper:0",
            "--admin", "127.0.0.1:0", "--reactors", "2"]
    daemon = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [daemon.stdout.readline() for _ in range(2)]
    if not all(line.startswith("Listening at") for line in lines):
        daemon.kill()
        sys.exit("benchmarks/soak: the daemon did not start: %s" % daemon.stderr.read().strip())
    ports = [int(line.rsplit(",", 1)[1].strip(" )\n")) for line in lines]
    # The admin port is in the info line that names it; a daemon that never
    # prints it is killed after 10 s, which ends the readline below.
    admin = None
    watchdog = threading.Timer(10, daemon.kill)
    watchdog.start()
    for line in daemon.stderr:
        if "Admin listener at" in line:
            admin = int(line.split("Admin listener at 127.0.0.1:")[1].split(":")[0])
            break
    watchdog.cancel()
    if admin is None:
        daemon.kill()
        sys.exit("benchmarks/soak: the daemon did not start")
    # Keep draining its stderr (warnings about the hostile clients) so it never blocks.
    log = []
    reader = threading.Thread(target=lambda: log.extend(daemon.stderr), daemon=True)
    reader.start()
    return daemon, ports[0], ports[1], admin, log, reader


def scrape(admin):
    from prometheus_client.parser import text_string_to_metric_families
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % admin, timeout=5) as response:
        text = response.read().decode()
    values = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if not sample.labels:
                values[sample.name] = sample.value
    return values


class Hostile:
    """Clients that misbehave, each kind on its own thread, and what they saw."""

    def __init__(self, sixteen_port, upper_port, until):
        self.sixteen, self.upper, self.until = sixteen_port, upper_port, until
        self.counts = {"resets": 0, "tricklers": 0, "tricklers_closed_in_time": 0, "never_readers": 0}
        self.lock = threading.Lock()

    def add(self, key):
        with self.lock:
            self.counts[key] += 1

    def resetter(self):
        while time.monotonic() < self.until:
            s = socket.create_connection(("127.0.0.1", self.sixteen))
            s.sendall(b"Hi th")
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
            s.close()
            self.add("resets")
            time.sleep(0.2)

    def trickler(self):
        """One octet every 2 s: the server's 10 s request timeout must end it by 14 s."""
        s = socket.create_connection(("127.0.0.1", self.sixteen))
        self.add("tricklers")
        started = time.monotonic()
        s.settimeout(2)
        try:
            while time.monotonic() - started < 20:
                s.send(b"H")
                try:
                    if s.recv(64) == b"":
                        break
                except socket.timeout:
                    continue
        except OSError:
            pass
        if time.monotonic() - started < 14:
            self.add("tricklers_closed_in_time")
        s.close()

    def every(self, seconds, client):
        """Starts `client` on a thread of its own every `seconds` until 20 s
        before the end, then waits for them all."""
        threads = []
        while time.monotonic() < self.until - 20:
            t = threading.Thread(target=client, daemon=True)
            t.start()
            threads.append(t)
            time.sleep(seconds)
        for t in threads:
            t.join()

    def tricklers(self):
        self.every(1, self.trickler)

    def never_reader(self):
        """8 MiB to upper, nothing read, a small receive buffer: past what the
        sockets hold, the daemon's output for it spills to a file, which must
        go when it closes 15 s later."""
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", self.upper))
        s.setblocking(False)
        chunk, sent = b"x" * 65536, 0
        started = time.monotonic()
        while sent < 8 << 20 and time.monotonic() - started < 10:
            try:
                sent += s.send(chunk)
            except BlockingIOError:
                time.sleep(0.01)
        time.sleep(max(0, 15 - (time.monotonic() - started)))
        s.close()
        self.add("never_readers")

    def never_readers(self):
        self.every(5, self.never_reader)


class IdleHolders:
    """A few thousand idle connections for the whole run. The daemon's request
    timeout (10 s) rightly ends a connection that sends nothing, so they are
    held in rounds of HOLD seconds (`sixteen load --protocol idle -d HOLD`,
    which then completes every session), by two holders half a round apart:
    at any time at least half of them are open, most of the time all."""
    HOLD = 7

    def __init__(self, start_round, count, until):
        self.start_round, self.count, self.until = start_round, count, until
        self.ok = self.errors = self.rounds = 0
        self.failures = []
        self.lock = threading.Lock()

    def holder(self, delay):
        time.sleep(delay)
        while time.monotonic() + self.HOLD + 2 < self.until:
            process = self.start_round(self.count // 2, self.HOLD)
            stdout, stderr = process.communicate(timeout=self.HOLD + 60)
            summary = json.loads(stdout) if stdout.strip() else None
            with self.lock:
                self.rounds += 1
                if process.returncode != 0 or summary is None:
                    self.failures.append("exit %s: %s" % (process.returncode, stderr.strip()[-200:]))
                else:
                    self.ok += summary["sessions_ok"]
                    self.errors += summary["errors_total"]

    def first(self):
        self.holder(0)

    def second(self):
        self.holder(self.HOLD / 2)

    def result(self):
        """The rounds together, shaped as one load's result."""
        return {"status": 0 if not self.failures else 1, "stderr": "; ".join(self.failures[:3]),
                "summary": {"sessions_ok": self.ok, "errors_total": self.errors, "rounds": self.rounds}}


def rise(times, values):
    """The trend's slope over the window, times the window's length. The
    slope is Theil-Sen's (the median of the slopes between every two
    samples), not least squares': a brief dip (the idle rounds' holders
    between rounds at once) moves a least-squares line by half the allowance
    at the start of the window, and not this one; a steady climb moves both."""
    slopes = [(values[j] - values[i]) / (times[j] - times[i])
              for i in range(len(times)) for j in range(i + 1, len(times)) if times[j] != times[i]]
    if not slopes:
        return 0.0
    return statistics.median(slopes) * (times[-1] - times[0])


def plot(samples, series, path, title):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
    t = [s["t"] for s in samples]
    axes[0].plot(t, [s["rss"] / (1 << 20) for s in samples], color="#D55E00", marker="o", markersize=3)
    axes[0].set_ylabel("resident memory (MiB)")
    axes[1].plot(t, [s["fds"] for s in samples], color="#0072B2", marker="s", markersize=3, label="open descriptors")
    axes[1].plot(t, [s["connections"] for s in samples], color="#009E73", linestyle="--", label="client connections")
    axes[1].set_ylabel("count")
    axes[1].legend(loc="lower right")
    axes[2].plot([p["t"] for p in series], [p["p99_ms"] for p in series], color="#CC79A7", marker="^", markersize=3)
    axes[2].set_ylabel("sixteen p99 (ms)")
    axes[2].set_xlabel("seconds")
    for ax in axes:
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    parser = OneLineParser(prog="benchmarks/soak", description=__doc__.split("\n\n")[0])
    parser.add_argument("minutes", nargs="?", type=float, default=10, help="how long (default 10)")
    parser.add_argument("--record", action="store_true", help="write benchmarks/results/soak/ (the README cites it)")
    parser.add_argument("--rate", type=int, default=2000, help="sixteen sessions/s (default 2000)")
    parser.add_argument("--idle", type=int, default=3000, help="idle connections held (default 3000)")
    parser.add_argument("--dry-run", action="store_true", help="check the arguments, say where results would go, and stop")
    args = parser.parse_args()
    if args.rate < 1 or args.idle < 2:
        parser.error("--rate must be at least 1 and --idle at least 2")
    if args.minutes < 2:
        parser.error("at least 2 minutes: the warm-up takes one, and the last 20 s ramp down")
    if args.record and args.minutes < 10:
        parser.error("--record takes a run of 10 minutes or more")
    binary = os.environ.get("SIXTEEN_BIN") or os.path.join(ROOT, ".build", "release", "sixteen")
    out = os.path.join(ROOT, "benchmarks", "results", "soak" if args.record else os.path.join("tmp", "soak"))
    if args.dry_run:
        print("benchmarks/soak: %g minutes; results would go to %s" % (args.minutes, os.path.relpath(out, ROOT)))
        return
    os.makedirs(out, exist_ok=True)
    seconds = int(args.minutes * 60)
    warmup = max(60, seconds // 10)

    daemon, sixteen_port, upper_port, admin, daemon_log, log_reader = start_daemon(binary)
    started_wall = time.time()
    started = time.monotonic()

    def load(*extra):
        argv = [binary, "load", "127.0.0.1", "--json", "--threads", "1"] + list(extra)
        return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    loads = {
        "sixteen": load("-p", str(sixteen_port), "--rate", str(args.rate), "-c", "64", "-d", str(seconds), "--interval", str(SAMPLE_SECONDS)),
        "upper send-all": load("-p", str(upper_port), "--protocol", "upper", "--pattern", "send-all", "--bytes", "256K",
                               "--rate", "20", "-c", "8", "-d", str(seconds)),
        "upper interleaved": load("-p", str(upper_port), "--protocol", "upper", "--pattern", "interleaved", "--bytes", "256K",
                                  "--rate", "20", "-c", "8", "-d", str(seconds)),
    }
    idle = IdleHolders(lambda count, hold: load("-p", str(sixteen_port), "--protocol", "idle", "-c", str(count), "-d", str(hold)),
                       args.idle, started + seconds)
    hostile = Hostile(sixteen_port, upper_port, started + seconds)
    threads = [threading.Thread(target=f, daemon=True)
               for f in (hostile.resetter, hostile.tricklers, hostile.never_readers, idle.first, idle.second)]
    for t in threads:
        t.start()

    samples = []
    while time.monotonic() - started < seconds + 5:
        time.sleep(SAMPLE_SECONDS - ((time.monotonic() - started) % SAMPLE_SECONDS))
        values = scrape(admin)
        samples.append({"t": round(time.monotonic() - started, 1), "rss": values["process_resident_memory_bytes"],
                        "fds": values["process_open_fds"], "spill_files": values.get("sixteen_spill_files", 0),
                        "connections": values["sixteen_connections_active"],
                        "cpu_seconds": process_cpu_seconds(daemon.pid)})
        print("%5.0f s: RSS %.1f MiB, %d descriptors, %d connections, %d spill files" % (
            samples[-1]["t"], samples[-1]["rss"] / (1 << 20), samples[-1]["fds"], samples[-1]["connections"],
            samples[-1]["spill_files"]), file=sys.stderr)
    results = {}
    for name, process in loads.items():
        stdout, stderr = process.communicate(timeout=120)
        results[name] = {"status": process.returncode, "summary": json.loads(stdout) if stdout.strip() else None, "stderr": stderr.strip()}
    for t in threads:
        t.join(timeout=60)
    results["idle"] = idle.result()
    time.sleep(2)
    final = scrape(admin)
    daemon.terminate()
    daemon.wait(timeout=30)
    # Its totals are the last line it writes: wait until the reader has it
    # (the reader ends at EOF), or a busy machine loses the race.
    log_reader.join(timeout=30)
    totals = {}
    for line in daemon_log:
        if "Stopped. Totals:" in line:
            totals = dict(pair.split("=", 1) for pair in line.split("Totals: ", 1)[1].split())

    # The verdict.
    failures = []
    # From the warm-up's end to the last full load: the hostile clients stop
    # starting 20 s before the end and the idle rounds soon after, so the
    # last 20 s ramp down (a fall there would hide a rise).
    steady_end = seconds - 20
    measured = [s for s in samples if warmup <= s["t"] <= steady_end]
    times = [s["t"] for s in measured]
    rss_mean, fd_mean = statistics.fmean(s["rss"] for s in measured), statistics.fmean(s["fds"] for s in measured)
    rss_rise, fd_rise = rise(times, [s["rss"] for s in measured]), rise(times, [s["fds"] for s in measured])
    rss_allowed = max(RSS_ALLOWANCE[0], RSS_ALLOWANCE[1] * rss_mean)
    fd_allowed = max(FD_ALLOWANCE[0], FD_ALLOWANCE[1] * fd_mean)
    if rss_rise > rss_allowed:
        failures.append("resident memory rose %.1f MiB over the run after the warm-up (allowed %.1f)" % (rss_rise / (1 << 20), rss_allowed / (1 << 20)))
    if fd_rise > fd_allowed:
        failures.append("descriptors rose %.0f over the run after the warm-up (allowed %.0f)" % (fd_rise, fd_allowed))
    sixteen = results["sixteen"]["summary"] or {}
    series = [{"t": p["start_seconds"] + p["seconds"], "p99_ms": p["p99_us"] / 1000} for p in sixteen.get("series", [])
              if p["sessions"] > 0]
    window = [p for p in series if warmup <= p["t"] <= steady_end]
    third = max(1, len(window) // 3)
    p99_first = statistics.median(p["p99_ms"] for p in window[:third]) if window else 0
    p99_last = statistics.median(p["p99_ms"] for p in window[-third:]) if window else 0
    if p99_last > 2 * p99_first + 1:
        failures.append("p99 grew from %.2f ms (first third) to %.2f ms (last third)" % (p99_first, p99_last))
    for name, result in results.items():
        summary = result["summary"]
        if result["status"] != 0 or summary is None or summary["errors_total"] != 0:
            failures.append("%s: exit %s, %s errors %s" % (name, result["status"], summary and summary["errors_total"], result["stderr"][-300:]))
    ok = {name: (r["summary"] or {}).get("sessions_ok", 0) for name, r in results.items()}
    expected_sixteen = ok["sixteen"] + ok["idle"]
    expected_upper = ok["upper send-all"] + ok["upper interleaved"]
    if int(totals.get("sessions_sixteen_replied", -1)) != expected_sixteen:
        failures.append("the daemon replied to %s sixteen sessions; the good clients counted %d" % (totals.get("sessions_sixteen_replied"), expected_sixteen))
    if int(totals.get("sessions_upper_replied", -1)) != expected_upper:
        failures.append("the daemon completed %s upper streams; the good clients counted %d" % (totals.get("sessions_upper_replied"), expected_upper))
    if hostile.counts["tricklers_closed_in_time"] != hostile.counts["tricklers"]:
        failures.append("%d of %d tricklers outlived the request timeout" % (hostile.counts["tricklers"] - hostile.counts["tricklers_closed_in_time"], hostile.counts["tricklers"]))
    spill_most = max(s["spill_files"] for s in samples)
    if spill_most == 0:
        failures.append("no sample saw a spill file: the never-readers did not exercise the spill")
    if final.get("sixteen_spill_files", 0) != 0:
        failures.append("%d spill files remain once every client has gone" % final["sixteen_spill_files"])

    summary = {
        "minutes": args.minutes, "warmup_seconds": warmup, "machine": machine_line(),
        "date": datetime.datetime.fromtimestamp(started_wall, datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "command": "benchmarks/soak %g%s" % (args.minutes, " --record" if args.record else ""),
        "rss_mib": {"mean": rss_mean / (1 << 20), "rise_after_warmup": rss_rise / (1 << 20), "allowed": rss_allowed / (1 << 20),
                    "min": min(s["rss"] for s in measured) / (1 << 20), "max": max(s["rss"] for s in measured) / (1 << 20)},
        "descriptors": {"mean": fd_mean, "rise_after_warmup": fd_rise, "allowed": fd_allowed,
                        "min": min(s["fds"] for s in measured), "max": max(s["fds"] for s in measured)},
        "p99_ms": {"first_third": p99_first, "last_third": p99_last},
        "spill_files": {"most_at_once": spill_most, "at_the_end": final.get("sixteen_spill_files", 0)},
        "daemon_cpu_seconds": samples[-1]["cpu_seconds"],
        "sessions_ok": ok, "idle_rounds": results["idle"]["summary"]["rounds"], "hostile": hostile.counts,
        "daemon_totals": {key: int(value) for key, value in totals.items() if key.startswith(("sessions_", "connections_"))},
        "failures": failures, "passed": not failures,
    }
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    with open(os.path.join(out, "samples.csv"), "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(samples[0]))
        writer.writeheader()
        writer.writerows(samples)
    plot(samples, series, os.path.join(out, "soak.png"),
         "%s: %g min, sixteen %d/s, upper 2 x 20 streams/s, %d idle, hostile clients\n%s" % (
             summary["date"], args.minutes, args.rate, args.idle, machine_line()))
    print(json.dumps({k: summary[k] for k in ("rss_mib", "descriptors", "p99_ms", "spill_files", "sessions_ok", "hostile", "failures")}, indent=1))
    print("benchmarks/soak: %s; wrote %s" % ("passed" if not failures else "FAILED", os.path.relpath(out, ROOT)), file=sys.stderr)
    sys.exit(0 if not failures else 1)


if __name__ == "__main__":
    main()
