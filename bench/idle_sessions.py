#!/usr/bin/python3
"""Memory per idle client session: coordd and ZooKeeper 3.8 side by side.

Starts a single coordd (its defaults, free ports, data in a temporary
directory) and, in the same run, a standalone ZooKeeper 3.8; opens N
sessions against each with a light opener (raw asyncio sockets doing the
handshake and a ping now and then, so the client costs next to nothing),
holds them idle, and reads the server's resident memory (VmRSS) before the
sessions open and after they have been held idle. Prints the bytes per
session for each server and the ratio, as markdown and then one JSON line.

    bench/idle_sessions.py                        # 5,000 sessions, build/release
    bench/idle_sessions.py --sessions 20000 --hold-s 20 --build-dir build/release

ZooKeeper is skipped, with the reason, when java or the jars are missing.
Only the server's own connection cap per address is lifted (coordd's
--max-connections-per-address, ZooKeeper's maxClientCnxns); everything else
is each server's default. Every process started is killed by its pid.
"""

import argparse
import asyncio
import json
import os
import random
import resource
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import zkwire  # noqa: E402

# The opener's own limits: handshakes in flight at once (below the listen
# backlog), and how long one may take.
CONNECTS_IN_FLIGHT_MAX = 200
HANDSHAKE_TIMEOUT_S = 30.0
# Sessions opened and closed before the baseline, so that code paths run
# once (and the JVM's first allocations happen) before memory is read.
WARMUP_SESSIONS = 50
# Descriptors kept beyond one per session for everything else.
SPARE_FDS = 256


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS for pid %d" % pid)


def raise_fd_limit(needed):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(hard, needed)
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        soft = target
    if soft < needed:
        sys.exit("idle_sessions.py: %d sessions need %d descriptors; the hard limit "
                 "(ulimit -Hn) is %d" % (needed - SPARE_FDS, needed, hard))


async def read_frame(reader):
    head = await reader.readexactly(4)
    (n,) = struct.unpack(">i", head)
    if n < 0 or n > (64 << 20):
        raise zkwire.DecodeError("frame length %d" % n)
    return await reader.readexactly(n)


class Session:
    __slots__ = ("reader", "writer", "session_id", "drain")

    async def open(self, port, timeout_ms):
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", port)
        body = zkwire.connect_body(timeout_ms=timeout_ms)
        self.writer.write(struct.pack(">i", len(body)) + body)
        payload = await read_frame(self.reader)
        r = zkwire.Reader(payload)
        r.int()  # protocol version
        r.int()  # negotiated timeout
        self.session_id = r.long()
        if self.session_id == 0:
            raise RuntimeError("the server refused a session")
        self.drain = None
        return self

    def start_draining(self):
        """Reads and drops what the server sends (ping replies) while idle."""
        async def drain():
            try:
                while True:
                    await read_frame(self.reader)
            except (asyncio.IncompleteReadError, ConnectionError, asyncio.CancelledError):
                pass
        self.drain = asyncio.ensure_future(drain())

    def ping(self):
        self.writer.write(struct.pack(">iii", 8, -2, zkwire.PING))

    async def close(self):
        if self.drain is not None:
            self.drain.cancel()
        self.writer.close()
        try:
            await self.writer.wait_closed()
        except (ConnectionError, OSError):
            pass


async def open_sessions(port, count, timeout_ms):
    gate = asyncio.Semaphore(CONNECTS_IN_FLIGHT_MAX)

    async def one():
        async with gate:
            return await asyncio.wait_for(Session().open(port, timeout_ms), HANDSHAKE_TIMEOUT_S)

    results = await asyncio.gather(*(one() for _ in range(count)), return_exceptions=True)
    sessions = [s for s in results if isinstance(s, Session)]
    errors = [e for e in results if not isinstance(e, Session)]
    if errors:
        await asyncio.gather(*(s.close() for s in sessions))
        raise RuntimeError("%d of %d sessions did not open; the first: %r" %
                           (len(errors), count, errors[0]))
    return sessions


async def measure(pid, port, args):
    warm = await open_sessions(port, WARMUP_SESSIONS, args.timeout_ms)
    await asyncio.gather(*(s.close() for s in warm))
    await asyncio.sleep(1.0)
    before = rss_bytes(pid)
    started = time.monotonic()
    sessions = await open_sessions(port, args.sessions, args.timeout_ms)
    open_s = time.monotonic() - started
    for s in sessions:
        s.start_draining()
    # Held idle: a ping per session every interval, spread over it, as
    # clients do well within their timeout.
    deadline = time.monotonic() + args.hold_s
    next_ping = {id(s): time.monotonic() + random.uniform(0, args.ping_interval_s)
                 for s in sessions}
    while time.monotonic() < deadline:
        now = time.monotonic()
        for s in sessions:
            if next_ping[id(s)] <= now:
                s.ping()
                next_ping[id(s)] = now + args.ping_interval_s
        await asyncio.sleep(0.1)
    after = rss_bytes(pid)
    dead = sum(1 for s in sessions if s.drain.done())
    await asyncio.gather(*(s.close() for s in sessions))
    if dead:
        raise RuntimeError("%d sessions were closed by the server while idle" % dead)
    return {"rss_before_bytes": before, "rss_after_bytes": after,
            "per_session_bytes": round((after - before) / args.sessions),
            "open_s": round(open_s, 2)}


def run_coordd(args):
    import coordd_harness
    coordd_harness.COORDD = args.coordd or os.path.join(args.build_dir, "coordd", "coordd")
    if not os.access(coordd_harness.COORDD, os.X_OK):
        sys.exit("idle_sessions.py: %s is not built (cmake --preset release && "
                 "cmake --build --preset release --target coordd)" % coordd_harness.COORDD)
    server = coordd_harness.Coordd(extra_args=[
        "--max-connections-per-address", str(args.sessions + WARMUP_SESSIONS + 16),
])
    try:
        server.start()
        return asyncio.run(measure(server.proc.pid, server.port, args))
    finally:
        server.cleanup()


def run_zookeeper(args):
    import zookeeper_harness
    if not zookeeper_harness.available():
        return None, "java or the ZooKeeper jars are missing (apt install zookeeper)"
    server = zookeeper_harness.ZooKeeper(
        max_client_cnxns=args.sessions + WARMUP_SESSIONS + 16)
    try:
        server.start()
        return asyncio.run(measure(server.proc.pid, server.port, args)), None
    finally:
        server.cleanup()


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sessions", type=int, default=5000)
    p.add_argument("--hold-s", type=float, default=10.0,
                   help="how long the sessions are held idle before memory is read")
    p.add_argument("--ping-interval-s", type=float, default=5.0)
    p.add_argument("--timeout-ms", type=int, default=30000, help="session timeout asked for")
    p.add_argument("--build-dir", default=os.path.join(REPO, "build", "release"))
    p.add_argument("--coordd", help="the coordd binary (default: BUILD_DIR/coordd/coordd)")
    p.add_argument("--no-zookeeper", action="store_true")
    args = p.parse_args()
    if args.sessions < 1:
        sys.exit("idle_sessions.py: --sessions must be at least 1")
    raise_fd_limit(args.sessions + WARMUP_SESSIONS + SPARE_FDS)

    coordd = run_coordd(args)
    zk, zk_skipped = (None, "--no-zookeeper") if args.no_zookeeper else run_zookeeper(args)
    if zk_skipped:
        print("ZooKeeper skipped: " + zk_skipped, file=sys.stderr)

    print("| %d idle sessions | RSS before | RSS after | per session |" % args.sessions)
    print("|---|---|---|---|")
    for name, r in (("coordd", coordd), ("ZooKeeper 3.8", zk)):
        if r:
            print("| %s | %.1f MiB | %.1f MiB | %s B |" % (
                name, r["rss_before_bytes"] / 2**20, r["rss_after_bytes"] / 2**20,
                format(r["per_session_bytes"], ",")))
    ratio = None
    if zk and coordd["per_session_bytes"] > 0:
        ratio = round(zk["per_session_bytes"] / coordd["per_session_bytes"], 2)
        print("\nZooKeeper / coordd: %.2f× the memory per idle session" % ratio)
    print(json.dumps({"bench": "idle_sessions", "sessions": args.sessions,
                      "hold_s": args.hold_s, "coordd": coordd, "zookeeper": zk,
                      "zookeeper_skipped": zk_skipped, "zookeeper_over_coordd": ratio}))


if __name__ == "__main__":
    main()
