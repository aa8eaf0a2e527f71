#!/usr/bin/python3
"""compare.py: coordd against ZooKeeper 3.8, the whole performance table,
in one run on one machine (bench/compare.sh runs it).

One node (a coordd on its defaults; a standalone ZooKeeper):
  setData, getData   ops/s with 32 sessions x 8 outstanding, 100-byte data
                     (coord-bench on libcoord: 32 Clients with two threads
                     each, as 32 applications would hold them; again with
                     the 32 on one shared runtime, two threads for all, as
                     one program holding many sessions would run them; and
                     from raw sessions on one thread, its ops-raw mode, a
                     load generator that costs a fifth as much CPU per
                     operation), and the server's CPU time per operation:
                     utime + stime from /proc/PID/stat over the bench run,
                     divided by the operations acknowledged. The CPU figure
                     measures the server alone: on a small machine the load
                     generator shares the cores, so ops/s compresses toward
                     1x as the client saturates. The JSON keeps the load
                     generator's CPU per operation too (its utime + stime,
                     from getrusage) and how many cores the run kept busy
                     (from /proc/stat).
  1 x 1              one session, one request in flight: setData and
                     getData p50 latency, with a bare client (coord-bench's
                     latency mode: a blocking socket in one thread, so the
                     figure is the server's and the kernel's) and with
                     libcoord (its I/O and event threads hand each request
                     over twice)
  watch latency      a set on one session to the event on another, p50/p99,
                     with the bare client and with libcoord
  session opens      coord-bench's session-open mode: 64 handshakes kept in
                     flight on raw sockets (open, then close the session),
                     sessions opened per second
  RSS per znode      resident memory the server gains from 200,000 znodes of
                     100 bytes (made with pipelined raw requests), per znode
  RSS per watch      then an exists watch on each of them, per watch
  RSS per session    a fresh server each: idle sessions held open and
                     pinging (bench/idle_sessions.py's opener), per session
  big tree           a fresh server each with 1,000,000 znodes of 100 bytes
                     (--big-znodes): getData one at a time (coord-bench) while
                     4 x 8 setData cross at least one snapshot, its worst
                     wait; coordd's log of how long each snapshot's fork
                     paused its apply loop; then kill -9 and the time until
                     the restarted server answers exists on the tree's root
                     with every child there
Three nodes (a coordd cluster through deploy/local-cluster.sh; a ZooKeeper
ensemble): setData and getData with the 32 x 8 sessions spread evenly over
the servers (one coord-bench per server, at once, rates summed), and the
servers' CPU per operation summed over the three.

Each server measured for its rates (throughput and session opens) or its
latencies first takes 2 s each of setData and getData at 32 x 8,
unmeasured: ZooKeeper's JVM compiles its hot paths in its first seconds.

The rates move with the machine's load, and on a small shared machine
that moves from minute to minute: with --rounds N (odd) each system runs
them N times on a fresh server, the two systems alternating, and each
rate is the median round's (its CPU per operation from the same run);
the JSON keeps every round.

Both systems keep their data in one temporary directory on the same disk,
with default durability (every acknowledged write fsync'ed, on a majority
for three nodes). ZooKeeper runs with -Xmx1g and its defaults otherwise.
Prints the table as markdown, then one JSON line; --json FILE writes the
JSON there too. Every process started is killed by its pid at the end.

  /usr/bin/python3 bench/compare.py                       # release build
  /usr/bin/python3 bench/compare.py --duration-s 10 --nodes 1 --json out.json
  /usr/bin/python3 bench/compare.py --rounds 3 --big-znodes 0

Needs coordd and coord-bench built (cmake --preset release && cmake --build
--preset release --target coordd coord-bench), java and Debian's zookeeper
jars.
"""

import argparse
import asyncio
import json
import os
import platform
import re
import resource
import struct
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))

import cluster_compare as cc  # noqa: E402
import idle_sessions  # noqa: E402
import zkwire  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")
MEMORY_SETTLE_S = 2.0  # after a phase, before resident memory is read
RAW_WINDOW = 256  # raw requests in flight per session
RAW_SESSIONS = 8
RAW_TIMEOUT_S = 600.0
WARMUP_S = 2.0  # of each of setData and getData on a fresh server, unmeasured


def log(*args):
    print("compare:", *args, file=sys.stderr, flush=True)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime and stime are the 14th and 15th fields; fields[0] is the 3rd.
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def children_cpu_seconds():
    """CPU of the children waited for so far: the load generators (a
    server is waited for only once it has stopped)."""
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def machine_busy():
    """(busy, all) jiffies of every core since boot, from /proc/stat: what
    share of the machine a run kept busy, whoever ran."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest time is already
    # in user). Idle and iowait are time nothing ran here, and so is steal:
    # the hypervisor ran something else.
    user, nice, system, _idle, _iowait, irq, softirq = fields[:7]
    return user + nice + system + irq + softirq, sum(fields[:8])


# ---------------------------------------------------------------- servers


class CoorddOne:
    """A single coordd on its defaults, through the integration harness."""

    name = "coordd"

    def __init__(self, coordd, max_connections):
        import coordd_harness
        coordd_harness.COORDD = coordd
        self.server = coordd_harness.Coordd(extra_args=[
            "--max-connections-per-address", str(max_connections)])
        self.ids = [1]

    def start(self):
        self.server.start()

    def client_port(self, i):
        return self.server.port

    def pid(self, i):
        return self.server.proc.pid

    def whole(self):
        return self.server.proc.poll() is None

    def kill9(self):
        self.server.kill9()

    def relaunch(self):
        """Starts the killed server again on its data; returns a function
        that gives its client port once it listens (None before)."""
        self.server.spawn()

        def port():
            m = None
            for m in re.finditer(r"serving ZooKeeper clients on [0-9.]+:(\d+)",
                                 self.server.log()[self.server.log_start:]):
                pass
            return int(m.group(1)) if m else None
        return port

    def log_text(self):
        return self.server.log()

    def stop(self):
        self.server.cleanup()


class ZkOne(cc.ZkEnsemble):
    """A standalone ZooKeeper: the ensemble's launcher with no server lines."""

    def __init__(self, work):
        super().__init__(work)
        self.work = os.path.join(work, "zk-one")
        self.ids = [1]
        self.ports = {1: cc.free_port()}
        self.quorum = {}

    def write_config(self, i):
        d = self.dir(i)
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        lines = ["tickTime=2000", "dataDir=%s" % os.path.join(d, "data"),
                 "clientPort=%d" % self.ports[i], "clientPortAddress=127.0.0.1",
                 "4lw.commands.whitelist=*", "admin.enableServer=false", "maxClientCnxns=0"]
        with open(os.path.join(d, "zoo.cfg"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def whole(self):
        return self.pid(1) and self.mode(1) == "standalone"

    def kill9(self):
        self.kill(1)
        self.procs[1].wait(timeout=30)

    def relaunch(self):
        self.launch(1)
        return lambda: self.ports[1]

    def log_text(self):
        return ""


def launch_heap_1g(ensemble):
    """ZooKeeper with -Xmx1g for every node (the launcher's own is 2g)."""
    java = cc.JAVA

    def launch(i):
        d = ensemble.dir(i)
        logf = open(os.path.join(d, "log"), "ab")
        ensemble.procs[i] = subprocess.Popen(
            [java, "-Xmx1g", "-cp", ":".join(cc.ZK_JARS),
             "-Dzookeeper.extendedTypesEnabled=true",
             "org.apache.zookeeper.server.quorum.QuorumPeerMain", os.path.join(d, "zoo.cfg")],
            stdout=logf, stderr=logf, preexec_fn=cc.die_with_parent)
        logf.close()
    ensemble.launch = launch
    return ensemble


# ------------------------------------------------------------ measurements


def run_bench(system, bench, flags, duration_s, root):
    """coord-bench on every server of `system` at once (the sessions
    spread evenly); the rates summed, the worst latencies, and the
    servers' CPU over the run summed."""
    cc.wait_until("%s whole" % system.name, system.whole)
    sessions = flags.get("sessions", 1)
    n = len(system.ids)
    per = [sessions // n + (1 if k < sessions % n else 0) for k in range(n)]
    pids = [system.pid(i) for i in system.ids]
    cpu0 = sum(cpu_seconds(p) for p in pids)
    clients0 = children_cpu_seconds()
    busy0 = machine_busy()
    procs = []
    for k, i in enumerate(system.ids):
        args = [bench, "-s", "127.0.0.1:%d" % system.client_port(i),
                "--duration-s", str(duration_s), "--payload-bytes", "100", "--keys", "1000",
                "--root", "%s-%d" % (root, i), "--clean", "--label", "%s@%d" % (root, i)]
        for key, value in flags.items():
            args += ["--" + key.replace("_", "-"), str(per[k] if key == "sessions" else value)]
        procs.append(subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True, preexec_fn=cc.die_with_parent))
    rows = []
    for p in procs:
        out, err = p.communicate(timeout=duration_s + 600)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if p.returncode != 0 or not lines:
            raise RuntimeError("coord-bench %s on %s failed (exit %s): %s" %
                               (flags, system.name, p.returncode, err[-2000:]))
        rows.append(json.loads(lines[-1]))
    cpu = sum(cpu_seconds(p) for p in pids) - cpu0
    clients = children_cpu_seconds() - clients0
    busy, total = (b - a for a, b in zip(busy0, machine_busy()))
    ops = sum(r["ops"] for r in rows)
    # What the errors were, summed over the servers: a figure with errors
    # says which.
    error_codes = {}
    for r in rows:
        for code, count in r.get("error_codes", {}).items():
            error_codes[code] = error_codes.get(code, 0) + count
    if error_codes:
        log("%s %s: errors %s" % (system.name, flags, error_codes))
    return {"ops_per_s": sum(r["ops_per_s"] for r in rows), "ops": ops,
            "errors": sum(r["errors"] for r in rows), "error_codes": error_codes,
            "p50_us": max(r["latency_us"]["p50"] for r in rows),
            "p99_us": max(r["latency_us"]["p99"] for r in rows),
            "server_cpu_s": round(cpu, 3),
            "server_cpu_us_per_op": round(cpu * 1e6 / ops, 2) if ops else None,
            "client_cpu_us_per_op": round(clients * 1e6 / ops, 2) if ops else None,
            "cores_busy": round(os.cpu_count() * busy / total, 2) if total else None}


async def raw_requests(port, requests, sessions=RAW_SESSIONS, window=RAW_WINDOW):
    """Sends (op, body) requests over `sessions` raw sessions, `window` in
    flight on each; returns the number answered with an error."""
    chunks = [requests[k::sessions] for k in range(sessions)]
    opened = [await idle_sessions.Session().open(port, 30000) for _ in range(sessions)]
    errors = 0

    async def drive(s, reqs):
        nonlocal errors
        gate = asyncio.Semaphore(window)

        async def reader():
            nonlocal errors
            for _ in range(len(reqs)):
                payload = await idle_sessions.read_frame(s.reader)
                r = zkwire.Reader(payload)
                r.int()  # xid
                r.long()  # zxid
                if r.int() != 0:
                    errors += 1
                gate.release()

        task = asyncio.ensure_future(reader())
        for xid, (op, body) in enumerate(reqs, 1):
            await gate.acquire()
            frame = struct.pack(">ii", xid, op) + body
            s.writer.write(struct.pack(">i", len(frame)) + frame)
            if xid % 64 == 0:
                await s.writer.drain()
        await s.writer.drain()
        await task

    try:
        await asyncio.wait_for(asyncio.gather(*(drive(s, c) for s, c in zip(opened, chunks))),
                               RAW_TIMEOUT_S)
    finally:
        for s in opened:
            await s.close()
    return errors


def memory_per_item(system, znodes):
    """RSS the server gains per znode, then per exists watch on each,
    the watches held by sessions that stay open while memory is read."""
    port, pid = system.client_port(1), system.pid(1)
    root = "/cmp-mem"
    paths = ["%s/n%07d" % (root, k) for k in range(znodes)]

    async def run():
        if await raw_requests(port, [(zkwire.CREATE, zkwire.create_body(root))], sessions=1):
            raise RuntimeError("creating %s on %s failed" % (root, system.name))
        await asyncio.sleep(MEMORY_SETTLE_S)
        before = idle_sessions.rss_bytes(pid)
        t = time.monotonic()
        errors = await raw_requests(port, [(zkwire.CREATE, zkwire.create_body(p, b"d" * 100))
                                           for p in paths])
        if errors:
            raise RuntimeError("%d creates failed on %s" % (errors, system.name))
        create_s = time.monotonic() - t
        await asyncio.sleep(MEMORY_SETTLE_S)
        with_znodes = idle_sessions.rss_bytes(pid)
        # The watches belong to these sessions' connections: they stay open
        # until memory is read.
        holders = [await idle_sessions.Session().open(port, 30000) for _ in range(RAW_SESSIONS)]
        try:
            for s in holders:
                s.start_draining()
            # One watch set and dropped first, so that its code has run.
            await raw_requests(port, [(zkwire.EXISTS, zkwire.path_watch_body(root, True))],
                               sessions=1)
            await asyncio.sleep(MEMORY_SETTLE_S)
            before_watches = idle_sessions.rss_bytes(pid)
            for k, s in enumerate(holders):
                mine = paths[k::len(holders)]
                for xid, p in enumerate(mine, 1):
                    body = struct.pack(">ii", xid, zkwire.EXISTS) + zkwire.path_watch_body(p, True)
                    s.writer.write(struct.pack(">i", len(body)) + body)
                    if xid % 256 == 0:
                        await s.writer.drain()
                await s.writer.drain()
            # The replies are read and dropped by the draining task; wait
            # until the server has answered them all (its watch count).
            deadline = time.monotonic() + RAW_TIMEOUT_S
            next_ping = 0.0
            while watch_count(port) < znodes:
                if time.monotonic() > deadline:
                    raise RuntimeError("the watches did not register on %s" % system.name)
                if time.monotonic() >= next_ping:
                    for s in holders:
                        s.ping()
                    next_ping = time.monotonic() + 5.0
                await asyncio.sleep(0.2)
            await asyncio.sleep(MEMORY_SETTLE_S)
            with_watches = idle_sessions.rss_bytes(pid)
        finally:
            for s in holders:
                await s.close()
        return {"znodes": znodes, "create_s": round(create_s, 2),
                "rss_per_znode_bytes": round((with_znodes - before) / znodes),
                "rss_per_watch_bytes": round((with_watches - before_watches) / znodes)}

    return asyncio.run(run())


def snapshot_pauses_ms(log_text):
    """coordd's own account of each snapshot: how long the fork paused
    its apply loop."""
    return [int(m.group(1)) for m in re.finditer(r"apply paused (\d+) ms", log_text)]


def serving_after(port_of, root, znodes, timeout_s):
    """Seconds until a server answers exists(root) with all `znodes`
    children, polled every 10 ms over fresh connections."""
    t0 = time.monotonic()
    while time.monotonic() - t0 < timeout_s:
        port = port_of()
        if port is not None:
            try:
                c = zkwire.Conn(port, timeout_s=5.0)
                try:
                    c.handshake(timeout_ms=30000)
                    _, f = c.call(zkwire.EXISTS, zkwire.path_watch_body(root))
                    if f.err == 0 and zkwire.Reader(f.body).stat()["numChildren"] == znodes:
                        return time.monotonic() - t0
                finally:
                    c.close()
            except (OSError, EOFError, RuntimeError, struct.error, zkwire.DecodeError,
                    zkwire.Closed):
                pass
        time.sleep(0.01)
    raise RuntimeError("the server did not serve %s again within %.0f s" % (root, timeout_s))


def big_tree(system, bench, args):
    """A tree of --big-znodes znodes of 100 bytes: the worst wait of a
    getData issued one at a time while a setData load crosses snapshots,
    then the time from kill -9 to serving the whole tree again."""
    port = system.client_port(1)
    root = "/cmp-big"
    znodes = args.big_znodes
    paths = ["%s/n%07d" % (root, k) for k in range(znodes)]

    async def populate():
        if await raw_requests(port, [(zkwire.CREATE, zkwire.create_body(root))], sessions=1):
            raise RuntimeError("creating %s on %s failed" % (root, system.name))
        errors = await raw_requests(port, [(zkwire.CREATE, zkwire.create_body(p, b"d" * 100))
                                           for p in paths])
        if errors:
            raise RuntimeError("%d creates failed on %s" % (errors, system.name))

    t = time.monotonic()
    asyncio.run(populate())
    res = {"znodes": znodes, "create_s": round(time.monotonic() - t, 1)}
    log("%s: %d znodes made in %.1f s" % (system.name, znodes, res["create_s"]))
    paused_before = len(snapshot_pauses_ms(system.log_text()))
    probe = subprocess.Popen(
        [bench, "-s", "127.0.0.1:%d" % port, "--op", "get", "--sessions", "1",
         "--outstanding", "1", "--duration-s", str(args.big_probe_s), "--payload-bytes", "100",
         "--keys", "10", "--root", "/cmp-probe", "--clean", "--label", "probe"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=cc.die_with_parent)
    load = run_bench(system, bench, {"op": "set", "sessions": 4, "outstanding": 8},
                     args.big_probe_s, "/cmp-big-load")
    out, err = probe.communicate(timeout=args.big_probe_s + 600)
    lines = [line for line in out.splitlines() if line.startswith("{")]
    if probe.returncode != 0 or not lines:
        raise RuntimeError("the probe failed on %s: %s" % (system.name, err[-2000:]))
    lat = json.loads(lines[-1])["latency_us"]
    pauses = snapshot_pauses_ms(system.log_text())[paused_before:]
    res.update({"probe_max_ms": round(lat["max"] / 1000, 1),
                "probe_p999_ms": round(lat["p999"] / 1000, 1),
                "load_ops": load["ops"], "snapshots_in_window": len(pauses) or None,
                "snapshot_pause_max_ms": max(pauses) if pauses else None})
    log("%s: getData one at a time under %d writes: max %.1f ms, p99.9 %.1f ms; "
        "snapshot pauses %s ms" % (system.name, load["ops"], res["probe_max_ms"],
                                   res["probe_p999_ms"], pauses or "(not reported)"))
    system.kill9()
    port_of = system.relaunch()
    res["restart_s"] = round(serving_after(port_of, root, znodes, RAW_TIMEOUT_S), 2)
    log("%s: serving %d znodes %.2f s after kill -9 and restart" % (
        system.name, znodes, res["restart_s"]))
    return res


def watch_count(port):
    value = cc.mntr_value(port, "zk_watch_count")
    return int(value) if value is not None else 0


def idle_session_memory(system, sessions, hold_s):
    args = argparse.Namespace(sessions=sessions, timeout_ms=30000, hold_s=hold_s,
                              ping_interval_s=5.0)
    r = asyncio.run(idle_sessions.measure(system.pid(1), system.client_port(1), args))
    return {"sessions": sessions, "rss_per_session_bytes": r["per_session_bytes"],
            "open_s": r["open_s"]}


# -------------------------------------------------------------------- runs


def with_system(make, what):
    system = make()
    try:
        system.start()
        return what(system)
    finally:
        system.stop()


def throughput_32x8(s, bench, args, res, nodes):
    """setData and getData, 32 sessions x 8 in flight, into res: from 32
    libcoord Clients with their own threads, from 32 sharing one runtime
    (op + "_rt"), then from raw sessions (op + "_raw")."""
    variants = (("", {"mode": "ops", "runtimes": 0}), ("_rt", {"mode": "ops", "runtimes": 1}),
                ("_raw", {"mode": "ops-raw"}))
    for op in ("set", "get"):
        for suffix, flags in variants:
            key = op + suffix
            res[key] = run_bench(s, bench, dict(flags, op=op, sessions=32, outstanding=8),
                                 args.duration_s, "/cmp%d-%s" % (nodes, key))
            log("%s %d node(s): %s 32x8 (%s) %.0f ops/s, %.1f us server CPU/op" % (
                s.name, nodes, op, " ".join("%s=%s" % kv for kv in flags.items()),
                res[key]["ops_per_s"], res[key]["server_cpu_us_per_op"]))


def warm_up(s, bench):
    """Unmeasured writes and reads on a fresh server first: ZooKeeper's JVM
    compiles its hot paths in its first seconds, and the first figure
    would otherwise pay for that."""
    for op in ("set", "get"):
        run_bench(s, bench, {"op": op, "sessions": 32, "outstanding": 8}, WARMUP_S,
                  "/cmp-warm")


def rates_one_node(s, bench, args):
    """The one-node figures that are rates: the 32 x 8 throughputs and the
    session opens."""
    res = {}
    warm_up(s, bench)
    throughput_32x8(s, bench, args, res, 1)
    res["churn"] = run_bench(s, bench, {"mode": "session-open", "sessions": 64},
                             args.duration_s, "/cmp-churn")
    log("%s 1 node: %.0f opens/s" % (s.name, res["churn"]["ops_per_s"]))
    return res


def rates_three_nodes(s, bench, args):
    res = {}
    warm_up(s, bench)
    throughput_32x8(s, bench, args, res, 3)
    return res


def alternate(makers, what, rounds):
    """what(system) on a fresh server (or cluster) of each of `makers`
    (name -> make) in turn, `rounds` times over, so that each system's runs
    sit between the other's and a change in the machine's load reaches
    both. Each figure (a dict with ops_per_s) is the one of the round
    with the median rate, whole: its CPU per operation and latencies come
    from the same run. With more than one round the runs are kept too,
    under "rounds"."""
    runs = {name: [] for name in makers}
    for r in range(rounds):
        for name, make in makers.items():
            if rounds > 1:
                log("%s: round %d of %d" % (name, r + 1, rounds))
            runs[name].append(with_system(make, what))
    out = {}
    for name, done in runs.items():
        merged = {key: sorted((run[key] for run in done),
                              key=lambda f: f["ops_per_s"])[len(done) // 2]
                  for key in done[0]}
        if rounds > 1:
            merged["rounds"] = done
        out[name] = merged
    return out


def rest_one_node(make, bench, args):
    """The one-node figures that are not rates: latencies with one request
    in flight, then memory, each on a fresh server."""
    res = {}

    def latencies(s):
        warm_up(s, bench)
        for op in ("set", "get"):
            res[op + "_1x1"] = run_bench(s, bench, {"mode": "latency", "op": op},
                                         args.duration_s, "/cmp-%s1" % op)
            res[op + "_1x1_lib"] = run_bench(s, bench, {"op": op, "sessions": 1,
                                                        "outstanding": 1},
                                             args.duration_s, "/cmp-%s1l" % op)
        res["watch"] = run_bench(s, bench, {"mode": "watch-latency-raw"}, args.duration_s,
                                 "/cmp-watch")
        res["watch_lib"] = run_bench(s, bench, {"mode": "watch-latency"}, args.duration_s,
                                     "/cmp-watchl")
        log("%s 1 node: 1x1 set p50 %d us, get p50 %d us; watch p50 %d us" % (
            s.name, res["set_1x1"]["p50_us"], res["get_1x1"]["p50_us"], res["watch"]["p50_us"]))

    with_system(make, latencies)
    res["memory"] = with_system(make, lambda s: memory_per_item(s, args.znodes))
    log("1 node: memory %s" % res["memory"])
    res["idle"] = with_system(make, lambda s: idle_session_memory(s, args.idle_sessions,
                                                                  args.idle_hold_s))
    log("idle sessions: %s" % res["idle"])
    if args.big_znodes:
        res["big"] = with_system(make, lambda s: big_tree(s, bench, args))
    return res


# ------------------------------------------------------------------- table


def table(results, args):
    """Rows: figure, coordd, ZooKeeper, ratio (how many times better coordd
    is: its rate over ZooKeeper's, or ZooKeeper's cost over its), target."""
    rows = []

    def add(label, c, z, unit, higher_better, target):
        if c is None or z is None:
            ratio = "-"
        elif higher_better:
            ratio = "%.2f×" % (c / z) if z else "-"
        else:
            ratio = "%.2f×" % (z / c) if c else "-"
        fmt = (lambda v: "-" if v is None else ("{:,.0f}".format(v) if v >= 100 else
                                               "{:,.1f}".format(v)))
        rows.append((label, *("-" if v is None else fmt(v) + unit for v in (c, z)), ratio, target))

    def pair(nodes, *keys):
        out = []
        for system in ("coordd", "zookeeper"):
            v = results.get(system + "-" + nodes)
            for k in keys:
                v = None if v is None else v.get(k)
            out.append(v)
        return out

    if "coordd-1" in results:
        add("setData 32×8, 100 B", *pair("1", "set", "ops_per_s"), " ops/s", True, "≥ 8×")
        add("getData 32×8", *pair("1", "get", "ops_per_s"), " ops/s", True, "≥ 5×")
        add("server CPU per setData", *pair("1", "set", "server_cpu_us_per_op"), " µs", False,
            "≤ 10 µs")
        add("server CPU per getData", *pair("1", "get", "server_cpu_us_per_op"), " µs", False,
            "≤ 5 µs")
        add("setData 32×8, one libcoord runtime", *pair("1", "set_rt", "ops_per_s"), " ops/s",
            True, "")
        add("getData 32×8, one libcoord runtime", *pair("1", "get_rt", "ops_per_s"), " ops/s",
            True, "")
        add("server CPU per setData, one runtime", *pair("1", "set_rt", "server_cpu_us_per_op"),
            " µs", False, "")
        add("server CPU per getData, one runtime", *pair("1", "get_rt", "server_cpu_us_per_op"),
            " µs", False, "")
        add("setData 32×8, raw sessions", *pair("1", "set_raw", "ops_per_s"), " ops/s", True,
            "")
        add("getData 32×8, raw sessions", *pair("1", "get_raw", "ops_per_s"), " ops/s", True,
            "")
        add("server CPU per setData, raw sessions", *pair("1", "set_raw", "server_cpu_us_per_op"),
            " µs", False, "")
        add("server CPU per getData, raw sessions", *pair("1", "get_raw", "server_cpu_us_per_op"),
            " µs", False, "")
        add("setData 1×1, p50", *pair("1", "set_1x1", "p50_us"), " µs", False, "≤ 300 µs")
        add("getData 1×1, p50", *pair("1", "get_1x1", "p50_us"), " µs", False, "≤ 50 µs")
        add("watch latency p50", *pair("1", "watch", "p50_us"), " µs", False, "≤ 250 µs")
        add("watch latency p99", *pair("1", "watch", "p99_us"), " µs", False, "")
        add("setData 1×1, p50, libcoord", *pair("1", "set_1x1_lib", "p50_us"), " µs", False, "")
        add("getData 1×1, p50, libcoord", *pair("1", "get_1x1_lib", "p50_us"), " µs", False, "")
        add("watch latency p50, libcoord", *pair("1", "watch_lib", "p50_us"), " µs", False, "")
        add("session opens (64 in flight)", *pair("1", "churn", "ops_per_s"), " /s", True,
            "≥ 10,000/s")
        add("RSS per znode (%s × 100 B)" % "{:,}".format(args.znodes),
            *pair("1", "memory", "rss_per_znode_bytes"), " B", False, "≤ 300 B")
        add("RSS per watch", *pair("1", "memory", "rss_per_watch_bytes"), " B", False,
            "≤ 100 B")
        add("RSS per idle session (%s)" % "{:,}".format(args.idle_sessions),
            *pair("1", "idle", "rss_per_session_bytes"), " B", False, "≤ 2,048 B")
        if args.big_znodes:
            big = "{:,}".format(args.big_znodes)
            add("restart with %s znodes, kill -9 to serving" % big,
                *pair("1", "big", "restart_s"), " s", False, "≤ 3 s")
            add("getData wait under writes crossing snapshots, max",
                *pair("1", "big", "probe_max_ms"), " ms", False, "≤ 50 ms")
            add("snapshot: apply loop paused, max", *pair("1", "big", "snapshot_pause_max_ms"),
                " ms", False, "")
    if "coordd-3" in results:
        add("3 nodes: setData 32×8 spread", *pair("3", "set", "ops_per_s"), " ops/s", True,
            "≥ 8×")
        add("3 nodes: getData 32×8 spread", *pair("3", "get", "ops_per_s"), " ops/s", True,
            "≥ 5×")
        add("3 nodes: CPU per setData, summed", *pair("3", "set", "server_cpu_us_per_op"), " µs",
            False, "≥ 10× leaner")
        add("3 nodes: CPU per getData, summed", *pair("3", "get", "server_cpu_us_per_op"), " µs",
            False, "≥ 10× leaner")
        add("3 nodes: setData 32×8 spread, one runtime per server",
            *pair("3", "set_rt", "ops_per_s"), " ops/s", True, "")
        add("3 nodes: getData 32×8 spread, one runtime per server",
            *pair("3", "get_rt", "ops_per_s"), " ops/s", True, "")
        add("3 nodes: setData 32×8 spread, raw sessions", *pair("3", "set_raw", "ops_per_s"),
            " ops/s", True, "")
        add("3 nodes: getData 32×8 spread, raw sessions", *pair("3", "get_raw", "ops_per_s"),
            " ops/s", True, "")
        add("3 nodes: CPU per setData, summed, raw sessions",
            *pair("3", "set_raw", "server_cpu_us_per_op"), " µs", False, "")
    lines = ["| figure | coordd | ZooKeeper 3.8 | coordd better by | target |",
             "|---|---|---|---|---|"]
    lines += ["| %s |" % " | ".join(r) for r in rows]
    return "\n".join(lines)


def machine():
    cpus = os.cpu_count()
    model = ""
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    load = os.getloadavg()
    return {"cpus": cpus, "cpu_model": model, "kernel": platform.release(),
            "load_before": [round(x, 2) for x in load]}


def built_binaries(build_dir, prog):
    """coordd and coord-bench of `build_dir`; exits saying how to build them
    when they are not there."""
    coordd = os.path.join(build_dir, "coordd", "coordd")
    bench = os.path.join(build_dir, "bench", "coord-bench", "coord-bench")
    for b in (coordd, bench):
        if not os.access(b, os.X_OK):
            sys.exit("%s: %s is not built (cmake --preset release && cmake --build "
                     "--preset release --target coordd coord-bench)" % (prog, b))
    return coordd, bench


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--build-dir", default=os.path.join(REPO, "build", "release"))
    p.add_argument("--duration-s", type=float, default=5.0,
                   help="seconds per coord-bench workload")
    p.add_argument("--nodes", default="1,3", help="1, 3 or 1,3")
    p.add_argument("--znodes", type=int, default=200000)
    p.add_argument("--idle-sessions", type=int, default=5000)
    p.add_argument("--idle-hold-s", type=float, default=10.0)
    p.add_argument("--big-znodes", type=int, default=1000000,
                   help="znodes of the restart and snapshot figures (0: skip them)")
    p.add_argument("--big-probe-s", type=float, default=10.0,
                   help="seconds of writes crossing snapshots while getData is probed")
    p.add_argument("--rounds", type=int, default=1,
                   help="rounds of the rate figures, coordd and ZooKeeper alternating; "
                   "each figure is the median round's (an odd number)")
    p.add_argument("--no-zookeeper", action="store_true", help="coordd's column only")
    p.add_argument("--json", help="also write the JSON result to this file")
    args = p.parse_args()
    nodes = {int(n) for n in args.nodes.split(",") if n}
    if not nodes <= {1, 3}:
        sys.exit("compare.py: --nodes takes 1, 3 or 1,3")
    if args.rounds < 1 or args.rounds % 2 == 0:
        sys.exit("compare.py: --rounds takes an odd number, 1 or more (the median is a run)")
    coordd, bench = built_binaries(args.build_dir, "compare.py")
    zk = not args.no_zookeeper and os.access(cc.JAVA, os.X_OK) and \
        all(os.path.exists(j) for j in cc.ZK_JARS)
    if not zk and not args.no_zookeeper:
        log("ZooKeeper skipped: java or the zookeeper jars are missing (apt install zookeeper)")
    need_fds = args.idle_sessions + idle_sessions.WARMUP_SESSIONS + idle_sessions.SPARE_FDS
    idle_sessions.raise_fd_limit(need_fds)

    info = {"bench": "compare", "machine": machine(), "duration_s": args.duration_s,
            "rounds": args.rounds,
            "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    results = {}
    with tempfile.TemporaryDirectory(prefix="coord-compare-") as work:
        max_conns = need_fds
        if 1 in nodes:
            makers = {"coordd-1": lambda: CoorddOne(coordd, max_conns)}
            if zk:
                makers["zookeeper-1"] = lambda: launch_heap_1g(
                    ZkOne(tempfile.mkdtemp(dir=work)))
            results.update(alternate(makers, lambda s: rates_one_node(s, bench, args),
                                     args.rounds))
            for name, make in makers.items():
                results[name].update(rest_one_node(make, bench, args))
        if 3 in nodes:
            makers = {"coordd-3": lambda: cc.CoorddCluster(tempfile.mkdtemp(dir=work), coordd)}
            if zk:
                makers["zookeeper-3"] = lambda: launch_heap_1g(
                    cc.ZkEnsemble(tempfile.mkdtemp(dir=work)))
            results.update(alternate(makers, lambda s: rates_three_nodes(s, bench, args),
                                     args.rounds))
    info["results"] = results
    info["load_after"] = [round(x, 2) for x in os.getloadavg()]
    report(table(results, args), info, args.json)


def report(md, info, json_path):
    """The table as markdown, then the JSON on one line; with json_path the
    JSON (the markdown in it) to that file too."""
    print(md)
    print()
    print(json.dumps(info))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(dict(info, markdown=md), f, indent=1)


if __name__ == "__main__":
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    main()
