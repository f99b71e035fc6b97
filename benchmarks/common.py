"""What the benchmark scripts (run.py, capacity.py, soak.py) share."""
import argparse, json, os, platform, sys


class OneLineParser(argparse.ArgumentParser):
    """argparse, but a bad argument is one line on stderr and exit status 2,
    not the usage block followed by the error."""

    def error(self, message):
        print("%s: %s (see --help)" % (self.prog, message), file=sys.stderr)
        sys.exit(2)


def cpu_model():
    """The CPU's model name from /proc/cpuinfo, or "?"."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "?"


def machine_line():
    """The machine in one line, for a table's header."""
    return "%d CPUs (%s), Linux %s" % (os.cpu_count() or 0, cpu_model(), platform.release())


def process_cpu_seconds(pid):
    """User plus system CPU seconds of a process, from /proc."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def write_summary(out, summary, lines, prog):
    """Writes summary.json and summary.md (the table `lines`) to `out`, prints
    the table, and says where it went and how long the run took."""
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print("%s: wrote %s (%d s)" % (prog, os.path.relpath(out, root), summary["wall_seconds"]), file=sys.stderr)
