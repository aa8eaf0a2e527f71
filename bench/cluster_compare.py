#!/usr/bin/python3
"""cluster_compare.py: a 3-server coordd cluster against a 3-server
ZooKeeper 3.8 ensemble, in one run on one machine.

For each system:
  failover   kill -9 the leader; the time from the kill to the first write
             acknowledged to a kazoo client on the full connection string,
             which retries at once (5 kills by default; the killed server is
             restarted and the cluster whole again before the next kill);
  setData    ops/s with 32 sessions x 8 outstanding, spread evenly over the
  getData    three servers (one coord-bench per server, run at the same
             time, their rates summed), after 2 s of each unmeasured: a
             JVM compiles its hot paths in its first seconds under load;
  catch-up   (--catchup) with N znodes (1,000,000 by default) in the tree,
             a follower stopped, its data directory wiped and the server
             started again: the time until it holds the whole tree
             (for coordd: until its applied index reaches the leader's
             commit index; for ZooKeeper: its znode count).

coordd runs through deploy/local-cluster.sh with its default timing
(--tick-ms 25, --election-timeout-ms 150); ZooKeeper with its own defaults
(tickTime 2000, initLimit 10, syncLimit 5). Both keep their data in one
temporary directory on the same disk. Every process started is killed by its
pid at the end. Prints a table, and with --json FILE every measurement.

  /usr/bin/python3 bench/cluster_compare.py                  # release build
  /usr/bin/python3 bench/cluster_compare.py --build-dir build/ci --kills 7 --catchup

Needs: coordd and coord-bench built (the release preset: cmake --preset
release && cmake --build --preset release --target coordd coord-bench),
kazoo for /usr/bin/python3, java and Debian's zookeeper jars.
"""

import argparse
import ctypes
import json
import logging
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LOCAL_CLUSTER = os.path.join(REPO, "deploy", "local-cluster.sh")
JAVA = "/usr/bin/java"
ZK_JARS = ["/usr/share/java/zookeeper.jar", "/usr/share/java/zookeeper-jute.jar",
           "/usr/share/java/slf4j-api.jar"]

START_TIMEOUT_S = 120.0
FAILOVER_TIMEOUT_S = 60.0
CATCHUP_TIMEOUT_S = 900.0
WARMUP_S = 2.0  # of each of setData and getData before the measured runs


def log(*args):
    print("cluster_compare:", *args, file=sys.stderr, flush=True)


def die_with_parent():
    """In the child before exec: SIGKILL when this script dies."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, int(signal.SIGKILL))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter(port, word, timeout_s=2.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
            s.sendall(word.encode())
            out = b""
            while True:
                d = s.recv(65536)
                if not d:
                    break
                out += d
            return out.decode(errors="replace")
    except OSError:
        return ""


def mntr_value(port, key):
    m = re.search(r"^%s\t(\S+)" % re.escape(key), four_letter(port, "mntr"), re.M)
    return m.group(1) if m else None


def wait_until(what, pred, timeout_s=START_TIMEOUT_S, step_s=0.05):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step_s)
    raise RuntimeError("%s: not within %.0f s" % (what, timeout_s))


def pid_alive(pid):
    """Running, not a zombie waiting for its parent."""
    try:
        with open("/proc/%d/stat" % pid) as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


# ---------------------------------------------------------------- coordd


class CoorddCluster:
    name = "coordd"

    def __init__(self, work, coordd):
        self.state = os.path.join(work, "coordd")
        self.env = dict(os.environ, COORD_CLUSTER_DIR=self.state, COORDD=coordd,
                        COORD_CLUSTER_START_TIMEOUT_S=str(int(START_TIMEOUT_S)))
        self.ids = [1, 2, 3]
        self.ports = {}

    def script(self, *args):
        p = subprocess.run(["bash", LOCAL_CLUSTER] + list(args), env=self.env,
                           capture_output=True, text=True, timeout=START_TIMEOUT_S * 2)
        if p.returncode != 0:
            raise RuntimeError("local-cluster.sh %s: %s%s" % (" ".join(args), p.stdout, p.stderr))
        return p.stdout

    def start(self):
        self.script("start", "3")
        for i in self.ids:
            kv = dict(line.split("=", 1) for line in
                      open(os.path.join(self.state, "server-%d" % i, "ports")).read().split())
            self.ports[i] = {k: int(v) for k, v in kv.items()}

    def client_port(self, i):
        return self.ports[i]["client"]

    def hosts(self):
        return ",".join("127.0.0.1:%d" % self.client_port(i) for i in self.ids)

    def pid(self, i):
        try:
            pid = int(open(os.path.join(self.state, "server-%d" % i, "coordd.pid")).read())
        except (OSError, ValueError):
            return None
        return pid if pid_alive(pid) else None

    def cluster_status(self, i):
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/v1/cluster/status" %
                                        self.ports[i]["http"], timeout=1.0) as r:
                return json.loads(r.read().decode())
        except (OSError, ValueError):
            return None

    def leader(self):
        """The id every live server names as leader, once they agree."""
        seen = set()
        for i in self.ids:
            if self.pid(i) is None:
                continue
            st = self.cluster_status(i)
            if st is None:
                return None
            seen.add(st["leader_id"])
        if len(seen) == 1 and 0 not in seen:
            return seen.pop()
        return None

    def whole(self):
        """Every server up and agreeing on a leader."""
        return all(self.pid(i) for i in self.ids) and self.leader()

    def kill(self, i):
        os.kill(self.pid(i), signal.SIGKILL)

    def restart(self, i):
        wait_until("server %d gone" % i, lambda: self.pid(i) is None, 10)
        self.script("restart", str(i))

    def stop_one(self, i):
        pid = self.pid(i)
        os.kill(pid, signal.SIGTERM)
        wait_until("server %d to stop" % i, lambda: not pid_alive(pid), 60)

    def wipe(self, i):
        data = os.path.join(self.state, "server-%d" % i, "data")
        shutil.rmtree(data)
        os.makedirs(data)

    def caught_up(self, i, target):
        st = self.cluster_status(i)
        return st is not None and st["applied_index"] >= target

    def catchup_target(self):
        st = self.cluster_status(self.leader())
        return st["commit_index"]

    def stop(self):
        if os.path.exists(os.path.join(self.state, "cluster")):
            try:
                self.script("stop")
            except (RuntimeError, subprocess.TimeoutExpired) as e:
                log("stopping coordd:", e)
        for i in self.ids:
            pid = self.pid(i)
            if pid is not None:
                os.kill(pid, signal.SIGKILL)


# ------------------------------------------------------------- ZooKeeper


class ZkEnsemble:
    name = "ZooKeeper"

    def __init__(self, work):
        self.work = os.path.join(work, "zk")
        self.ids = [1, 2, 3]
        self.ports = {i: free_port() for i in self.ids}
        self.quorum = {i: (free_port(), free_port()) for i in self.ids}
        self.procs = {}

    def dir(self, i):
        return os.path.join(self.work, "zk-%d" % i)

    def write_config(self, i):
        d = self.dir(i)
        os.makedirs(os.path.join(d, "data"), exist_ok=True)
        with open(os.path.join(d, "data", "myid"), "w") as f:
            f.write("%d\n" % i)
        lines = ["tickTime=2000", "initLimit=10", "syncLimit=5",
                 "dataDir=%s" % os.path.join(d, "data"), "clientPort=%d" % self.ports[i],
                 "clientPortAddress=127.0.0.1", "4lw.commands.whitelist=*",
                 "admin.enableServer=false", "maxClientCnxns=0"]
        lines += ["server.%d=127.0.0.1:%d:%d" % (j, *self.quorum[j]) for j in self.ids]
        with open(os.path.join(d, "zoo.cfg"), "w") as f:
            f.write("\n".join(lines) + "\n")

    def launch(self, i):
        logf = open(os.path.join(self.dir(i), "log"), "ab")
        self.procs[i] = subprocess.Popen(
            [JAVA, "-Xmx2g", "-cp", ":".join(ZK_JARS), "-Dzookeeper.extendedTypesEnabled=true",
             "org.apache.zookeeper.server.quorum.QuorumPeerMain",
             os.path.join(self.dir(i), "zoo.cfg")],
            stdout=logf, stderr=logf, preexec_fn=die_with_parent)
        logf.close()

    def start(self):
        for i in self.ids:
            self.write_config(i)
            self.launch(i)
        wait_until("the ZooKeeper ensemble", self.whole)

    def client_port(self, i):
        return self.ports[i]

    def hosts(self):
        return ",".join("127.0.0.1:%d" % self.ports[i] for i in self.ids)

    def pid(self, i):
        p = self.procs.get(i)
        return p.pid if p is not None and p.poll() is None else None

    def mode(self, i):
        m = re.search(r"^Mode: (\S+)", four_letter(self.ports[i], "srvr"), re.M)
        return m.group(1) if m else None

    def leader(self):
        leaders = [i for i in self.ids if self.pid(i) and self.mode(i) == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def whole(self):
        return all(self.pid(i) and self.mode(i) in ("leader", "follower") for i in self.ids) and \
            self.leader()

    def kill(self, i):
        self.procs[i].send_signal(signal.SIGKILL)

    def restart(self, i):
        self.procs[i].wait(timeout=10)
        self.launch(i)
        wait_until("ZooKeeper server %d" % i, lambda: self.mode(i) in ("leader", "follower"))

    def stop_one(self, i):
        p = self.procs[i]
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=60)

    def wipe(self, i):
        data = os.path.join(self.dir(i), "data")
        shutil.rmtree(data)
        self.write_config(i)

    def catchup_target(self):
        return int(mntr_value(self.ports[self.leader()], "zk_znode_count"))

    def caught_up(self, i, target):
        v = mntr_value(self.ports[i], "zk_znode_count")
        return v is not None and int(v) >= target

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                p.wait(timeout=10)


# ----------------------------------------------------------- measurements


def failover_once(system, path):
    """Kills the leader with SIGKILL; seconds until a write is acknowledged."""
    from kazoo.client import KazooClient
    from kazoo.retry import KazooRetry

    wait_until("%s whole before a kill" % system.name, system.whole)
    # Reconnects at once, then every 10 ms: the figure is the servers',
    # not kazoo's backoff.
    retry = KazooRetry(max_tries=-1, delay=0.01, backoff=1, max_jitter=0.0, max_delay=0.01)
    z = KazooClient(hosts=system.hosts(), timeout=10.0, connection_retry=retry)
    z.start(timeout=30)
    try:
        if not z.exists(path):
            z.create(path, b"0")
        z.set(path, b"before")
        leader = system.leader()
        try:  # kazoo keeps its socket private; only for the report
            on_leader = z._connection._socket.getpeername()[1] == system.client_port(leader)
        except (AttributeError, OSError):
            on_leader = None
        t0 = time.monotonic()
        system.kill(leader)
        deadline = t0 + FAILOVER_TIMEOUT_S
        attempts = 0
        while True:
            attempts += 1
            try:
                z.set_async(path, b"after").get(timeout=max(0.0, deadline - time.monotonic()))
                elapsed = time.monotonic() - t0
                break
            except Exception as e:  # ConnectionLoss, SessionMoved, a timeout: retry
                if time.monotonic() >= deadline:
                    raise RuntimeError("no write acknowledged within %.0f s after the kill: %r" %
                                       (FAILOVER_TIMEOUT_S, e))
                time.sleep(0.002)
    finally:
        z.stop()
        z.close()
    system.restart(leader)
    return {"seconds": elapsed, "killed": leader, "client_on_leader": on_leader,
            "attempts": attempts}


def bench_ops(system, bench, op, sessions, outstanding, duration_s):
    """One coord-bench per server at once; their rates summed."""
    wait_until("%s whole before %s" % (system.name, op), system.whole)
    per = [sessions // 3 + (1 if k < sessions % 3 else 0) for k in range(3)]
    procs = []
    errs = []
    for k, i in enumerate(system.ids):
        errs.append(tempfile.TemporaryFile(mode="w+"))
        procs.append(subprocess.Popen(
            [bench, "-s", "127.0.0.1:%d" % system.client_port(i), "--op", op,
             "--sessions", str(per[k]), "--outstanding", str(outstanding),
             "--duration-s", str(duration_s), "--payload-bytes", "100", "--keys", "1000",
             "--root", "/cc-%s-%d" % (op, i), "--clean", "--label", "%s@%d" % (op, i)],
            stdout=subprocess.PIPE, stderr=errs[-1], text=True, preexec_fn=die_with_parent))
    rows = []
    for p, err in zip(procs, errs):
        out, _ = p.communicate(timeout=duration_s + 300)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        err.seek(0)
        if p.returncode != 0 or not lines:
            raise RuntimeError("coord-bench %s on %s failed (exit %s): %s" %
                               (op, system.name, p.returncode, err.read()[-2000:]))
        rows.append(json.loads(lines[-1]))
    return {"ops_per_s": sum(r["ops_per_s"] for r in rows),
            "errors": sum(r["errors"] for r in rows),
            "p50_us": max(r["latency_us"]["p50"] for r in rows),
            "p99_us": max(r["latency_us"]["p99"] for r in rows),
            "per_server": rows}


def catchup(system, bench, znodes):
    """Fills the tree, wipes a follower and times its way back."""
    wait_until("%s whole before the catch-up" % system.name, system.whole)
    leader = system.leader()
    log("%s: creating %d znodes" % (system.name, znodes))
    t = time.monotonic()
    p = subprocess.run(
        [bench, "-s", "127.0.0.1:%d" % system.client_port(leader), "--op", "create",
         "--sessions", "8", "--outstanding", "32", "--ops", str(znodes), "--keys", "1",
         "--payload-bytes", "100", "--root", "/cc-catchup", "--label", "fill"],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, timeout=CATCHUP_TIMEOUT_S,
        preexec_fn=die_with_parent)
    if p.returncode != 0:
        raise RuntimeError("filling %s failed" % system.name)
    fill_s = time.monotonic() - t
    target = system.catchup_target()
    follower = next(i for i in system.ids if i != leader)
    system.stop_one(follower)
    system.wipe(follower)
    t0 = time.monotonic()
    system.restart(follower)
    # A coordd leader finds a follower's empty log when it next replicates
    # a write: one write, as a cluster in use would make anyway.
    from kazoo.client import KazooClient
    z = KazooClient(hosts="127.0.0.1:%d" % system.client_port(leader), timeout=10.0)
    z.start(timeout=30)
    try:
        z.set("/cc-catchup", b"poke")
    finally:
        z.stop()
        z.close()
    wait_until("%s server %d to catch up" % (system.name, follower),
               lambda: system.caught_up(follower, target), CATCHUP_TIMEOUT_S, 0.02)
    return {"seconds": time.monotonic() - t0, "znodes": znodes, "fill_seconds": fill_s,
            "target": target}


def measure(system, bench, args):
    res = {"failover": [], "set": None, "get": None, "catchup": None}
    for k in range(args.kills):
        r = failover_once(system, "/cc-failover")
        log("%s: kill %d of %d: leader %d, %.0f ms%s" %
            (system.name, k + 1, args.kills, r["killed"], r["seconds"] * 1000,
             " (client was on the leader)" if r["client_on_leader"] else ""))
        res["failover"].append(r)
    # Unmeasured first: a JVM compiles its hot paths in its first seconds
    # under load, and each kill left a server that started afresh.
    for op in ("set", "get"):
        bench_ops(system, bench, op, args.sessions, args.outstanding, WARMUP_S)
    for op in ("set", "get"):
        res[op] = bench_ops(system, bench, op, args.sessions, args.outstanding, args.duration_s)
        log("%s: %s %.0f ops/s" % (system.name, op, res[op]["ops_per_s"]))
    if args.catchup:
        res["catchup"] = catchup(system, bench, args.catchup_znodes)
        log("%s: catch-up %.1f s" % (system.name, res["catchup"]["seconds"]))
    return res


# ------------------------------------------------------------------ table


def table(c, z, args, build_dir):
    def ms(v):
        return "%.0f ms" % (v * 1000)

    def rate(v):
        return "{:,.0f} ops/s".format(v)

    def ratio(a, b, lower_is_better, words=("faster", "slower")):
        if not a or not b:
            return "-"
        better = a < b if lower_is_better else a > b
        return "%.2f× %s" % (max(a, b) / min(a, b), words[0] if better else words[1])

    rows = []
    cf = [r["seconds"] for r in c["failover"]]
    zf = [r["seconds"] for r in z["failover"]]
    rows.append(("failover, median of %d kills" % args.kills, ms(statistics.median(cf)),
                 ms(statistics.median(zf)),
                 ratio(statistics.median(cf), statistics.median(zf), True)))
    rows.append(("failover, worst", ms(max(cf)), ms(max(zf)), ratio(max(cf), max(zf), True)))
    for op, name in (("set", "setData"), ("get", "getData")):
        rows.append(("%s, %d sessions × %d outstanding" % (name, args.sessions, args.outstanding),
                     rate(c[op]["ops_per_s"]), rate(z[op]["ops_per_s"]),
                     ratio(c[op]["ops_per_s"], z[op]["ops_per_s"], False)))
        rows.append(("%s p99 (worst server)" % name, "{:,} µs".format(c[op]["p99_us"]),
                     "{:,} µs".format(z[op]["p99_us"]),
                     ratio(c[op]["p99_us"], z[op]["p99_us"], True, ("lower", "higher"))))
    if c["catchup"] and z["catchup"]:
        rows.append(("catch-up of a wiped follower, %s znodes" %
                     "{:,}".format(args.catchup_znodes),
                     "%.1f s" % c["catchup"]["seconds"], "%.1f s" % z["catchup"]["seconds"],
                     ratio(c["catchup"]["seconds"], z["catchup"]["seconds"], True)))
    head = ("3 servers each", "coordd", "ZooKeeper 3.8", "coordd vs ZooKeeper")
    widths = [max(len(r[k]) for r in rows + [head]) for k in range(4)]
    out = ["coordd (%s) and ZooKeeper 3.8 (tickTime 2000), 3 servers each on 127.0.0.1; "
           "%g s per throughput run" % (build_dir, args.duration_s),
           "| " + " | ".join(h.ljust(widths[k]) for k, h in enumerate(head)) + " |",
           "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    for r in rows:
        out.append("| " + " | ".join(v.ljust(widths[k]) for k, v in enumerate(r)) + " |")
    out.append("failover, each kill (ms): coordd %s; ZooKeeper %s" %
               (" ".join("%.0f" % (v * 1000) for v in cf), " ".join("%.0f" % (v * 1000) for v in zf)))
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--build-dir", default=os.path.join(REPO, "build", "release"),
                    help="where coordd and coord-bench are built (default build/release)")
    ap.add_argument("--kills", type=int, default=5, help="leader kills per system (default 5)")
    ap.add_argument("--sessions", type=int, default=32)
    ap.add_argument("--outstanding", type=int, default=8)
    ap.add_argument("--duration-s", type=float, default=10.0,
                    help="seconds per throughput run (default 10)")
    ap.add_argument("--catchup", action="store_true",
                    help="also time a wiped follower's catch-up on --catchup-znodes znodes")
    ap.add_argument("--catchup-znodes", type=int, default=1_000_000)
    ap.add_argument("--only", choices=["coordd", "zookeeper"], help="measure one system")
    ap.add_argument("--json", help="write every measurement to this file")
    ap.add_argument("--keep", action="store_true",
                    help="keep the data directories and logs (the path is printed)")
    args = ap.parse_args()
    if args.kills < 1:
        ap.error("--kills must be at least 1")

    build_dir = os.path.abspath(args.build_dir)
    coordd = os.path.join(build_dir, "coordd", "coordd")
    bench = os.path.join(build_dir, "bench", "coord-bench", "coord-bench")
    for b in (coordd, bench):
        if not os.access(b, os.X_OK):
            sys.exit("cluster_compare: %s is not built (cmake --preset release && "
                     "cmake --build --preset release --target coordd coord-bench)" % b)
    if args.only != "coordd" and not (os.access(JAVA, os.X_OK) and
                                      all(os.path.exists(j) for j in ZK_JARS)):
        sys.exit("cluster_compare: java or the zookeeper jars are missing (apt install zookeeper)")
    try:
        import kazoo  # noqa: F401
    except ImportError:
        sys.exit("cluster_compare: kazoo is missing (apt install python3-kazoo)")

    # SIGTERM (a timeout, ctrl-c's cousin) still runs the clean-up below.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    # kazoo logs every dropped connection; the kills drop them on purpose.
    logging.basicConfig(level=logging.CRITICAL)
    work = tempfile.mkdtemp(prefix="coord-cluster-compare-")
    results = {}
    systems = []
    try:
        if args.only != "zookeeper":
            systems.append(("coordd", CoorddCluster(work, coordd)))
        if args.only != "coordd":
            systems.append(("zookeeper", ZkEnsemble(work)))
        # One system at a time: each has the machine to itself.
        for key, system in systems:
            log("starting", system.name)
            system.start()
            try:
                results[key] = measure(system, bench, args)
            finally:
                system.stop()
    finally:
        for _, system in systems:
            system.stop()
        if args.keep:
            log("data and logs kept in", work)
        else:
            shutil.rmtree(work, ignore_errors=True)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    if "coordd" in results and "zookeeper" in results:
        shown = os.path.relpath(build_dir, REPO)
        print(table(results["coordd"], results["zookeeper"], args,
                    build_dir if shown.startswith("..") else shown))
    else:
        print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
