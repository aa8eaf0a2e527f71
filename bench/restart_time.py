#!/usr/bin/python3
"""restart_time.py: how long coordd takes from start to serving a big tree.

Makes a data directory once (a single coordd on its defaults holding
--znodes znodes of 100 bytes under one parent, then --writes setData
that cross snapshots, so that the log holds entries after its last
snapshot; then kill -9), and starts coordd on a fresh copy of it
--runs times. Each run is timed from the process's start until it
answers exists(parent) with every child there, over fresh connections
polled every 10 ms, as bench/compare.py's big tree does; the process's
CPU time (user + system, from /proc) is read at that moment, which on a
shared machine is steadier than the wall time. Prints each run, then
the medians as one JSON line.

    bench/restart_time.py --build-dir build/release --data /var/tmp/big --runs 5
    bench/restart_time.py --data /var/tmp/big --make-only     # the directory alone

The directory given with --data is made when it does not exist and kept
for the next invocation; each run copies it, so runs start from the same
state. Every process started is killed by its pid.
"""

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import statistics
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import compare  # noqa: E402
import zkwire  # noqa: E402

ROOT = "/restart-big"
SERVE_TIMEOUT_S = 300.0
POLL_S = 0.01


def log(*args):
    print("restart_time:", *args, file=sys.stderr, flush=True)


def spawn(coordd, data_dir, log_path):
    out = open(log_path, "ab")
    try:
        return subprocess.Popen(
            [coordd, "--client-port", "0", "--http-port", "0", "--data-dir", data_dir],
            stdout=out, stderr=out)
    finally:
        out.close()


def port_from_log(log_path):
    try:
        with open(log_path, "rb") as f:
            text = f.read().decode(errors="replace")
    except OSError:
        return None
    m = re.search(r"serving ZooKeeper clients on [0-9.]+:(\d+)", text)
    return int(m.group(1)) if m else None


def wait_port(proc, log_path, timeout_s):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("coordd exited with %s" % proc.returncode)
        port = port_from_log(log_path)
        if port is not None:
            return port
        time.sleep(POLL_S)
    raise RuntimeError("coordd did not say its port in time")


def children(port):
    c = zkwire.Conn(port, timeout_s=5.0)
    try:
        c.handshake(timeout_ms=30000)
        _, f = c.call(zkwire.EXISTS, zkwire.path_watch_body(ROOT))
        return zkwire.Reader(f.body).stat()["numChildren"] if f.err == 0 else None
    finally:
        c.close()


def kill(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)


def make(coordd, target, znodes, writes):
    work = tempfile.mkdtemp(prefix="restart-make-")
    data = os.path.join(work, "data")
    proc = spawn(coordd, data, os.path.join(work, "coordd.log"))
    try:
        port = wait_port(proc, os.path.join(work, "coordd.log"), 60)
        paths = ["%s/n%07d" % (ROOT, k) for k in range(znodes)]

        async def fill():
            if await compare.raw_requests(port, [(zkwire.CREATE, zkwire.create_body(ROOT))], 1):
                raise RuntimeError("creating %s failed" % ROOT)
            if await compare.raw_requests(port, [(zkwire.CREATE, zkwire.create_body(p, b"d" * 100))
                                                 for p in paths]):
                raise RuntimeError("creates failed")
            sets = [(zkwire.SET_DATA, zkwire.set_data_body(paths[k % znodes], b"e" * 100))
                    for k in range(writes)]
            if await compare.raw_requests(port, sets):
                raise RuntimeError("setData failed")

        t = time.monotonic()
        asyncio.run(fill())
        log("%d znodes and %d writes in %.1f s" % (znodes, writes, time.monotonic() - t))
        # Snapshots run in a child process; let the last one finish so that
        # the directory does not depend on where it was cut.
        time.sleep(5)
    finally:
        kill(proc)
    shutil.copytree(data, target, symlinks=True)
    shutil.rmtree(work, ignore_errors=True)


def one_run(coordd, source, znodes, keep_log):
    work = tempfile.mkdtemp(prefix="restart-run-")
    data = os.path.join(work, "data")
    shutil.copytree(source, data, symlinks=True)
    # A fresh copy is dirty in the page cache: the server's first fsync
    # would write all of it out, which a server restarted in place does
    # not do.
    os.sync()
    log_path = os.path.join(work, "coordd.log")
    t0 = time.monotonic()
    proc = spawn(coordd, data, log_path)
    try:
        port = wait_port(proc, log_path, SERVE_TIMEOUT_S)
        while True:
            if time.monotonic() - t0 > SERVE_TIMEOUT_S:
                raise RuntimeError("not serving after %.0f s" % SERVE_TIMEOUT_S)
            try:
                if children(port) == znodes:
                    break
            except (OSError, EOFError, RuntimeError, struct.error, zkwire.DecodeError,
                    zkwire.Closed):
                pass
            time.sleep(POLL_S)
        wall = time.monotonic() - t0
        cpu = compare.cpu_seconds(proc.pid)
    finally:
        kill(proc)
        if keep_log:
            with open(log_path, "rb") as f:
                sys.stderr.write(f.read().decode(errors="replace"))
        shutil.rmtree(work, ignore_errors=True)
    return wall, cpu


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build", "release"))
    ap.add_argument("--data", required=True, help="the data directory to make once and copy")
    ap.add_argument("--znodes", type=int, default=1_000_000)
    ap.add_argument("--writes", type=int, default=150_000,
                    help="setData after the creates, crossing snapshots")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--make-only", action="store_true")
    ap.add_argument("--show-log", action="store_true", help="print coordd's log of each run")
    args = ap.parse_args()
    coordd = os.path.join(args.build_dir, "coordd", "coordd")
    if not os.path.isdir(args.data):
        make(coordd, args.data, args.znodes, args.writes)
    if args.make_only:
        return
    walls, cpus = [], []
    for k in range(args.runs):
        wall, cpu = one_run(coordd, args.data, args.znodes, args.show_log)
        log("run %d: serving after %.2f s, CPU %.2f s" % (k + 1, wall, cpu))
        walls.append(wall)
        cpus.append(cpu)
    print(json.dumps({"znodes": args.znodes, "runs": args.runs,
                      "wall_s_median": round(statistics.median(walls), 2),
                      "cpu_s_median": round(statistics.median(cpus), 2),
                      "wall_s": [round(w, 2) for w in walls], "cpu_s": [round(c, 2) for c in cpus]}))


if __name__ == "__main__":
    main()
