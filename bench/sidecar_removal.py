#!/usr/bin/python3
"""Time from a failing health check to the instance's removal from every
sidecar's discovery.

    COORDD_BINARY=build/release/coordd/coordd \\
    COORD_SIDECAR_BINARY=build/release/sidecar/coord-sidecar \\
        /usr/bin/python3 bench/sidecar_removal.py [--flips 20] [--interval-ms 200] [--fall 2]

Starts a single coordd, a small HTTP service, one coord-sidecar that
registers the service with an http check, and three coord-sidecars that
watch it (all on 127.0.0.1, free ports). Then, --flips times: the service's
/health starts failing; the time until no watcher's /v1/services/web lists
the instance any more is measured (each watcher polled every 5 ms); the
service is made healthy again and the script waits until every watcher has
it back. Prints each flip and the median and worst of:

  total      from the first failing answer's moment to gone from all three
  after-fall from the sidecar's "down, removing" decision (its log line's
             timestamp) to gone from all three: the removal's own cost

The check phase (total minus after-fall) is about interval x fall by
design.
"""

import argparse
import datetime
import os
import re
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "sidecar"))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "integration"))

from coordd_harness import Coordd  # noqa: E402
from sidecar_harness import Processes, wait_for  # noqa: E402

DECISION = re.compile(r"^(\S+) INFO  sidecar: check .* down, removing web-1$", re.M)


def log_time(stamp):
    """Seconds since the epoch of a log line's "2026-12-06T05:15:02.123Z"."""
    return datetime.datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--flips", type=int, default=20)
    ap.add_argument("--interval-ms", type=int, default=200)
    ap.add_argument("--fall", type=int, default=2)
    ap.add_argument("--rise", type=int, default=1)
    args = ap.parse_args()

    coordd = Coordd().start()
    procs = Processes()
    try:
        svc = procs.health_service(healthy=True)
        addr = "127.0.0.1:%d" % svc.port
        reg = procs.sidecar("register", [
            "-s", coordd.hosts(), "--service", "web", "--id", "web-1", "--address", addr,
            "--check", "http://%s/health" % addr, "--interval-ms", str(args.interval_ms),
            "--timeout-ms", str(args.interval_ms), "--rise", str(args.rise),
            "--fall", str(args.fall)])
        watchers = [procs.sidecar("watch-%d" % k, ["-s", coordd.hosts(), "--watch", "web"])
                    for k in range(3)]

        def everywhere(present):
            for w in watchers:
                if ("web-1" in w.ids("web")) != present:
                    return False
            return True

        wait_for("registered everywhere", lambda: everywhere(True), 30.0, 0.005)
        totals, after_fall = [], []
        for flip in range(args.flips):
            decisions_before = len(DECISION.findall(reg.log()))
            t0_wall = time.time()
            t0 = time.monotonic()
            svc.set_healthy(False)
            wait_for("removed everywhere", lambda: everywhere(False), 30.0, 0.005)
            gone = time.monotonic()
            gone_wall = t0_wall + (gone - t0)
            found = DECISION.findall(reg.log())
            if len(found) <= decisions_before:
                raise AssertionError("no decision line for flip %d" % flip)
            decided = log_time(found[-1])
            totals.append(gone - t0)
            after_fall.append(gone_wall - decided)
            print("flip %2d: total %6.1f ms, after the fall decision %5.1f ms"
                  % (flip, 1000 * totals[-1], 1000 * after_fall[-1]), flush=True)
            svc.set_healthy(True)
            wait_for("back everywhere", lambda: everywhere(True), 30.0, 0.005)
        print("interval %d ms, fall %d, %d flips, 3 watching sidecars"
              % (args.interval_ms, args.fall, args.flips))
        print("total:      median %6.1f ms, worst %6.1f ms"
              % (1000 * statistics.median(totals), 1000 * max(totals)))
        print("after fall: median %6.1f ms, worst %6.1f ms"
              % (1000 * statistics.median(after_fall), 1000 * max(after_fall)))
    finally:
        procs.cleanup()
        coordd.cleanup()


if __name__ == "__main__":
    main()
