#!/usr/bin/python3
"""Time from a worker's death to its replacement registering, under
coord-healer.

Starts a single coordd (free ports, data in a temporary directory), one
coord-healer keeping N coord-flaky-worker processes alive, each living a
random time in [--min-life-ms, --max-life-ms] and then closing its session
and exiting (so the node goes at once, as with a crash the server hears of
at once). Every worker prints the wall-clock time of its registration and
of its death with its index; the replacement of a death is the next
registration of the same index. Prints the median, 90th percentile and
worst over the first --deaths deaths, and the healer's own part (death to
its "launching" log line; the rest is the new process starting and
registering), as markdown and then one JSON line.

    bench/healer_replacement.py                          # build/release
    bench/healer_replacement.py --build-dir build/ci --deaths 50

A worker killed with SIGKILL is noticed only when its session expires, so
its replacement comes that much later (the workers' --session-timeout-ms).
Every process started is killed by its pid (process group) at the end.
"""

import argparse
import datetime
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
sys.path.insert(0, os.path.join(REPO, "tests", "healer"))

import coordd_harness  # noqa: E402
from coordd_harness import Coordd  # noqa: E402
from healer_test import worker_pids  # noqa: E402

REGISTERED = re.compile(r"coord-flaky-worker: registered (\S+) \(index (\d+)\) at (\d+) ms")
DYING = re.compile(r"coord-flaky-worker: dying (\S+) \(index (\d+)\) \(.*\) at (\d+) ms")
LAUNCHING = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z INFO  coord-healer: "
                       r"launching \S+ \(index (\d+)\)")


def pair(log, deaths_wanted):
    """(death ms, launch ms, replacement ms) for each death whose
    replacement has registered, in order of death."""
    registrations = {}  # index -> registration times
    launches = {}  # index -> times the healer logged the launch
    deaths = []
    for line in log.splitlines():
        m = LAUNCHING.search(line)
        if m:
            t = datetime.datetime.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S.%f")
            ms = int(t.replace(tzinfo=datetime.timezone.utc).timestamp() * 1000)
            launches.setdefault(int(m.group(2)), []).append(ms)
            continue
        m = REGISTERED.search(line)
        if m:
            registrations.setdefault(int(m.group(2)), []).append(int(m.group(3)))
            continue
        m = DYING.search(line)
        if m:
            deaths.append((int(m.group(3)), int(m.group(2))))
    deaths.sort()
    out = []
    for t, index in deaths:
        later = [r for r in sorted(registrations.get(index, [])) if r >= t]
        launched = [x for x in sorted(launches.get(index, [])) if x >= t]
        if later and launched:
            out.append((t, launched[0], later[0]))
        if len(out) == deaths_wanted:
            break
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build", "release"))
    ap.add_argument("--workers", type=int, default=5)
    ap.add_argument("--deaths", type=int, default=50)
    ap.add_argument("--min-life-ms", type=int, default=500)
    ap.add_argument("--max-life-ms", type=int, default=2000)
    ap.add_argument("--timeout-s", type=float, default=300.0)
    args = ap.parse_args()

    coordd = os.path.join(args.build_dir, "coordd", "coordd")
    healer = os.path.join(args.build_dir, "healer", "coord-healer")
    worker = os.path.join(args.build_dir, "healer", "coord-flaky-worker")
    for b in (coordd, healer, worker):
        if not os.access(b, os.X_OK):
            sys.exit("missing %s (build it, or pass --build-dir)" % b)
    coordd_harness.COORDD = coordd

    server = Coordd(extra_args=["--min-session-timeout-ms", "1000"])
    try:
        server.start()
    except Exception:
        server.cleanup()
        raise
    tmp = tempfile.mkdtemp(prefix="healer-bench-")
    marker = "/healer-bench-%d" % os.getpid()
    log_path = os.path.join(tmp, "healer.log")
    proc = None
    try:
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                [healer, "-s", server.hosts(), "--workers-path", marker + "/workers",
                 "--count", str(args.workers), "--max-launches-per-min", "10000",
                 "--grace-ms", "10000", "--session-timeout-ms", "2000", "--",
                 worker, "-s", server.hosts(), "--path", marker + "/workers", "--id", "{id}",
                 "--index", "{index}", "--min-life-ms", str(args.min_life_ms),
                 "--max-life-ms", str(args.max_life_ms), "--session-timeout-ms", "1000"],
                stdout=log, stderr=log, start_new_session=True)
        deadline = time.monotonic() + args.timeout_s
        pairs = []
        max_processes = 0
        while time.monotonic() < deadline:
            max_processes = max(max_processes, len(worker_pids(marker)))
            with open(log_path, "rb") as f:
                pairs = pair(f.read().decode(errors="replace"), args.deaths)
            if len(pairs) >= args.deaths:
                break
            if proc.poll() is not None:
                sys.exit("coord-healer exited; see %s" % log_path)
            time.sleep(0.05)
        if len(pairs) < args.deaths:
            sys.exit("only %d deaths replaced within %.0f s" % (len(pairs), args.timeout_s))
        ms = sorted(r - d for d, _, r in pairs)
        decide = sorted(x - d for d, x, _ in pairs)
        result = {
            "decide_median_ms": statistics.median(decide),
            "decide_worst_ms": decide[-1],
            "deaths": len(ms),
            "workers": args.workers,
            "median_ms": statistics.median(ms),
            "p90_ms": ms[int(0.9 * (len(ms) - 1))],
            "worst_ms": ms[-1],
            "best_ms": ms[0],
            "max_worker_processes": max_processes,
            "build": os.path.basename(os.path.normpath(args.build_dir)),
        }
        print("| deaths | median | p90 | worst | best | most worker processes seen |")
        print("|---|---|---|---|---|---|")
        print("| %d | %d ms | %d ms | %d ms | %d ms | %d of %d |" %
              (result["deaths"], result["median_ms"], result["p90_ms"], result["worst_ms"],
               result["best_ms"], max_processes, args.workers))
        print("The healer's part, from the death to its launch decision: median %d ms, "
              "worst %d ms; the rest is the new worker starting and registering." %
              (result["decide_median_ms"], result["decide_worst_ms"]))
        print(json.dumps(result))
        shutil.rmtree(tmp, ignore_errors=True)  # kept when the run fails, for its log
    finally:
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        for _ in range(3):
            for pid in worker_pids(marker):
                try:
                    os.killpg(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        server.cleanup()


if __name__ == "__main__":
    main()
