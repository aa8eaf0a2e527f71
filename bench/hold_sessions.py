#!/usr/bin/python3
"""Many idle sessions on one server: does it hold them without trouble?

Starts a single coordd (free ports, data in a temporary directory, the
connection caps lifted to the sessions asked for) and has coord-bench's
idle-sessions mode open N sessions against it (100,000 by default) on raw
sockets in one thread, each pinging once a third of its timeout as
ZooKeeper's clients do. While they are held it measures what the server
costs and how it serves:

  - sessions lost (closed or expired by the server) and pings left
    unanswered for a whole ping interval: both must be 0;
  - the round trip of the pings;
  - getData and setData with one request in flight (coord-bench's latency
    mode), before the sessions open and while they are held;
  - the server's resident memory per session and its CPU while the sessions
    only ping;
  - then every session closes at once: how long until all are answered,
    and whether the server is still well afterwards.

    bench/hold_sessions.py                          # 100,000 sessions
    bench/hold_sessions.py --sessions 20000 --hold-s 20 --zookeeper

Each session takes a descriptor in the server and one in coord-bench, so the
descriptor limit must allow the count plus a margin: the script raises its
own (which both inherit) and says so if it may not. One loopback source
address has about 28,000 ephemeral ports toward one server port; coord-bench
spreads the sessions over 127.0.0.1, 127.0.0.2, ... as needed. Every process
started is killed by its pid. Prints markdown, then one JSON line.
"""

import argparse
import json
import os
import queue
import resource
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

from compare import cpu_seconds  # noqa: E402
from idle_sessions import rss_bytes  # noqa: E402

# Descriptors for everything but the sessions, in each process.
SPARE_FDS = 1024
# Sessions per loopback source address: under the 28,232 ephemeral ports
# of Linux's default range, with room for other connections.
SESSIONS_PER_SOURCE_ADDRESS = 20000
# How long the opening may take before the run is called failed.
OPEN_TIMEOUT_S = 600.0
# Beyond the hold: the closing of every session, and coord-bench's exit.
CLOSE_TIMEOUT_S = 120.0


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft >= needed:
        return
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (needed, max(hard, needed)))
    except (ValueError, OSError):
        sys.exit("hold_sessions.py: %d sessions need %d descriptors per process; the limit is "
                 "%d (hard %d) and may not be raised here: run as root, or lower --sessions"
                 % (needed - SPARE_FDS, needed, soft, hard))


def bench_path(args):
    path = args.bench or os.path.join(args.build_dir, "bench", "coord-bench", "coord-bench")
    if not os.access(path, os.X_OK):
        sys.exit("hold_sessions.py: %s is not built (cmake --build --preset release "
                 "--target coordd coord-bench)" % path)
    return path


def latency_probe(bench, port, op, seconds):
    """One request at a time on a raw socket: coord-bench's latency mode."""
    out = subprocess.run(
        [bench, "-s", "127.0.0.1:%d" % port, "--mode", "latency", "--op", op,
         "--duration-s", str(seconds), "--root", "/hold-sessions-probe"],
        capture_output=True, text=True, timeout=seconds + 60)
    if out.returncode != 0:
        raise RuntimeError("the %s probe failed: %s" % (op, out.stderr.strip()))
    lat = json.loads(out.stdout.strip().splitlines()[-1])["latency_us"]
    return {"p50_us": lat["p50"], "p99_us": lat["p99"], "max_us": lat["max"]}


def stderr_lines(proc, lines):
    for line in proc.stderr:
        lines.put(line)
    lines.put(None)


def measure(server, args):
    """Runs the whole scenario against a started server; returns a dict."""
    bench = bench_path(args)
    pid, port = server.proc.pid, server.port
    res = {"sessions": args.sessions}
    res["before"] = {op: latency_probe(bench, port, op, args.probe_s) for op in ("get", "set")}
    rss_before = rss_bytes(pid)
    sources = max(1, -(-args.sessions // SESSIONS_PER_SOURCE_ADDRESS))
    holder = subprocess.Popen(
        [bench, "-s", "127.0.0.1:%d" % port, "--mode", "idle-sessions",
         "--sessions", str(args.sessions), "--outstanding", str(args.handshakes),
         "--duration-s", str(args.hold_s), "--session-timeout-ms", str(args.timeout_ms),
         "--source-addresses", str(sources), "--root", "/hold-sessions"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        lines = queue.Queue()
        threading.Thread(target=stderr_lines, args=(holder, lines), daemon=True).start()
        deadline = time.monotonic() + OPEN_TIMEOUT_S
        seen = []
        while True:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                raise RuntimeError("the sessions were not open within %.0f s" % OPEN_TIMEOUT_S)
            if line is None:
                raise RuntimeError("coord-bench ended while opening: " + "".join(seen))
            seen.append(line)
            if line.startswith("idle-sessions:"):
                break
        held_at = time.monotonic()
        res["during"] = {op: latency_probe(bench, port, op, args.probe_s)
                         for op in ("get", "set")}
        # The server's cost with nothing but pings, after the probes.
        cpu0, t0 = cpu_seconds(pid), time.monotonic()
        time.sleep(args.idle_measure_s)
        cpu1, t1 = cpu_seconds(pid), time.monotonic()
        rss_held = rss_bytes(pid)
        if t1 - held_at > args.hold_s:
            raise RuntimeError("the probes outlasted the hold: raise --hold-s")
        out, _ = holder.communicate(timeout=args.hold_s + CLOSE_TIMEOUT_S)
        if holder.returncode != 0:
            raise RuntimeError("coord-bench idle-sessions failed: " + "".join(seen))
        held = json.loads(out.strip().splitlines()[-1])
    finally:
        if holder.poll() is None:
            holder.kill()
            holder.wait()
    res.update({
        "opened": held["opened"], "open_s": held["open_s"], "opens_per_s": held["opens_per_s"],
        "lost": held["lost"], "pings_sent": held["pings_sent"], "pings_late": held["pings_late"],
        "ping_us": {"p50": held["latency_us"]["p50"], "p99": held["latency_us"]["p99"],
                    "max": held["latency_us"]["max"]},
        "closed": held["closed"], "close_s": held["close_s"],
        "rss_per_session_bytes": round((rss_held - rss_before) / max(1, held["opened"])),
        "server_cpu_share_idle": round((cpu1 - cpu0) / (t1 - t0), 4),
        "server_alive_after": server.proc.poll() is None,
    })
    res["after"] = {op: latency_probe(bench, port, op, args.probe_s) for op in ("get",)}
    return res


def run_coordd(args):
    import coordd_harness
    coordd_harness.COORDD = args.coordd or os.path.join(args.build_dir, "coordd", "coordd")
    if not os.access(coordd_harness.COORDD, os.X_OK):
        sys.exit("hold_sessions.py: %s is not built" % coordd_harness.COORDD)
    cap = str(args.sessions + SPARE_FDS)
    return measure_on(coordd_harness.Coordd(extra_args=[
        "--max-connections", cap, "--max-connections-per-address", cap]), args)


def run_zookeeper(args):
    import zookeeper_harness
    if not zookeeper_harness.available():
        return None
    return measure_on(zookeeper_harness.ZooKeeper(
        jvm_args=["-Xmx%dm" % args.zookeeper_heap_mb],
        max_client_cnxns=args.sessions + SPARE_FDS), args)


def measure_on(server, args):
    try:
        server.start()
        return measure(server, args)
    finally:
        server.cleanup()


def table(results):
    names = list(results)

    def row(label, fn):
        cells = []
        for n in names:
            try:
                cells.append(fn(results[n]))
            except (KeyError, TypeError):
                cells.append("-")
        return "| %s | %s |" % (label, " | ".join(cells))

    def lat(r, phase, op):
        p = r[phase][op]
        return "%d / %d / %d µs" % (p["p50_us"], p["p99_us"], p["max_us"])

    lines = ["| figure | %s |" % " | ".join(names), "|---|%s" % ("---|" * len(names)),
             row("sessions opened", lambda r: "{:,} in {:.1f} s ({:,.0f}/s)".format(
                 r["opened"], r["open_s"], r["opens_per_s"])),
             row("sessions lost while held", lambda r: "{:,}".format(r["lost"])),
             row("pings late (unanswered a whole interval)",
                 lambda r: "{:,} of {:,}".format(r["pings_late"], r["pings_sent"])),
             row("ping round trip p50 / p99 / max", lambda r: "%d / %d / %d µs" % (
                 r["ping_us"]["p50"], r["ping_us"]["p99"], r["ping_us"]["max"])),
             row("getData 1×1 p50 / p99 / max, before", lambda r: lat(r, "before", "get")),
             row("getData 1×1 p50 / p99 / max, while held", lambda r: lat(r, "during", "get")),
             row("setData 1×1 p50 / p99 / max, before", lambda r: lat(r, "before", "set")),
             row("setData 1×1 p50 / p99 / max, while held", lambda r: lat(r, "during", "set")),
             row("RSS per idle session", lambda r: "{:,} B".format(r["rss_per_session_bytes"])),
             row("server CPU while the sessions ping",
                 lambda r: "%.1f%% of a core" % (100 * r["server_cpu_share_idle"])),
             row("all sessions closed at once", lambda r: "{:,} in {:.2f} s".format(
                 r["closed"], r["close_s"])),
             row("getData 1×1 p50 / p99 / max, after", lambda r: lat(r, "after", "get")),
             row("server still up", lambda r: "yes" if r["server_alive_after"] else "NO")]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sessions", type=int, default=100000)
    p.add_argument("--hold-s", type=float, default=40.0,
                   help="how long the sessions are held (the probes and the CPU window "
                        "run within it)")
    p.add_argument("--timeout-ms", type=int, default=30000, help="session timeout asked for")
    p.add_argument("--handshakes", type=int, default=256, help="handshakes in flight")
    p.add_argument("--probe-s", type=float, default=3.0, help="seconds of each latency probe")
    p.add_argument("--idle-measure-s", type=float, default=8.0,
                   help="seconds over which the server's CPU is read while only pings come")
    p.add_argument("--build-dir", default=os.path.join(REPO, "build", "release"))
    p.add_argument("--coordd", help="the coordd binary (default: BUILD_DIR/coordd/coordd)")
    p.add_argument("--bench", help="coord-bench (default: BUILD_DIR/bench/coord-bench/...)")
    p.add_argument("--zookeeper", action="store_true", help="also run ZooKeeper 3.8")
    p.add_argument("--zookeeper-heap-mb", type=int, default=4096)
    p.add_argument("--json", help="also write the JSON result to this file")
    args = p.parse_args()
    raise_fd_limit(args.sessions + SPARE_FDS)
    results = {"coordd": run_coordd(args)}
    if args.zookeeper:
        zk = run_zookeeper(args)
        if zk is None:
            print("ZooKeeper skipped: java or the jars are missing", file=sys.stderr)
        else:
            results["ZooKeeper 3.8"] = zk
    print(table(results))
    line = json.dumps(results, sort_keys=True)
    print(line)
    if args.json:
        with open(args.json, "w") as f:
            f.write(line + "\n")


if __name__ == "__main__":
    main()
