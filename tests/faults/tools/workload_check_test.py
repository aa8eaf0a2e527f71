"""coord-faults-workload and coord-faults-check end to end, with no fault:
against a real 3-server coordd cluster, the workload runs in registers and
sequential modes for about 5 s while a kazoo writer and a kazoo watcher
record a watched node in the same format (their time.monotonic_ns() is the
workload's clock); then final mode reads every key and the sequential
parent once per server, and the checker must find the run correct. The
same histories with one forged final read and one forged listing must then
fail, which shows the check is not vacuous.

A second run has faults, made here rather than by the harness's nemeses:
the leader killed and restarted, then every server frozen (SIGSTOP) for
longer than the sessions' timeout. The workload must record lost replies
as unknown, the expired sessions as failures, go on with new sessions,
and the checker must still find the run correct.

Run by ctest (tests/faults/tools/CMakeLists.txt) with COORDD_BINARY,
COORD_FAULTS_WORKLOAD and COORD_FAULTS_CHECK in the environment.
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "integration"))

import ctest_main  # noqa: E402
from coordd_harness import CoorddCluster  # noqa: E402

try:
    from kazoo.client import KazooClient
    KAZOO_MISSING = ""
except ImportError as e:
    KAZOO_MISSING = "kazoo is missing (Debian python3-kazoo): %s" % e

WORKLOAD = os.environ.get("COORD_FAULTS_WORKLOAD", "coord-faults-workload")
CHECK = os.environ.get("COORD_FAULTS_CHECK", "coord-faults-check")
RUN_MS = 5000
KEYS = 4
PREFIX = "/faults"
# A workload ends within its duration plus two request timeouts.
REQUEST_TIMEOUT_MS = 2000
PROCESS_WAIT_S = RUN_MS / 1000 + 3 * REQUEST_TIMEOUT_MS / 1000 + 10
WAIT_S = 20.0


def read_history(path):
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def write_history(path, records):
    with open(path, "w") as f:
        for r in records:
            f.write(json.dumps(r) + "\n")


class KazooWatchWorkload:
    """A kazoo writer setting one node to unique values, and a kazoo
    watcher recording every version it is shown (watch_seen), then whether
    it reached the last one (watch_done)."""

    def __init__(self, hosts, path, out):
        self.path = path
        self.out = out
        self.records = []
        self.lock = threading.Lock()
        self.writer = KazooClient(hosts=hosts, timeout=10.0)
        self.watcher = KazooClient(hosts=hosts, timeout=10.0)
        self.seen_version = -1
        self.seen = threading.Condition(self.lock)

    def record(self, r):
        with self.lock:
            self.records.append(r)

    def on_change(self, data, stat):
        if stat is None:
            return
        now = time.monotonic_ns()
        self.record({"process": "kazoo-watcher", "f": "watch_seen", "key": self.path,
                     "data": data.decode(), "version": stat.version, "outcome": "ok",
                     "call_ns": now, "ret_ns": now})
        with self.seen:
            self.seen_version = max(self.seen_version, stat.version)
            self.seen.notify_all()

    def run(self, stop_at):
        self.writer.start(timeout=WAIT_S)
        self.watcher.start(timeout=WAIT_S)
        try:
            call = time.monotonic_ns()
            self.writer.create(self.path, b"kazoo-writer-0", makepath=True)
            self.record({"process": "kazoo-writer", "f": "create", "key": self.path,
                         "data": "kazoo-writer-0", "version": 0, "outcome": "ok",
                         "call_ns": call, "ret_ns": time.monotonic_ns()})
            self.watcher.DataWatch(self.path, self.on_change)
            n = 0
            version = 0
            while time.monotonic() < stop_at:
                n += 1
                value = "kazoo-writer-%d" % n
                call = time.monotonic_ns()
                stat = self.writer.set(self.path, value.encode())
                version = stat.version
                self.record({"process": "kazoo-writer", "f": "set", "key": self.path,
                             "data": value, "expected_version": -1, "version": version,
                             "outcome": "ok", "call_ns": call, "ret_ns": time.monotonic_ns()})
                time.sleep(0.02)
            deadline = time.monotonic() + WAIT_S
            with self.seen:
                while self.seen_version < version and time.monotonic() < deadline:
                    self.seen.wait(0.1)
                reached = self.seen_version >= version
                last = self.seen_version
            now = time.monotonic_ns()
            self.record({"process": "kazoo-watcher", "f": "watch_done", "key": self.path,
                         "reached": reached, "version": last, "final_version": version,
                         "outcome": "ok", "call_ns": now, "ret_ns": now})
        finally:
            for k in (self.writer, self.watcher):
                k.stop()
                k.close()
            with self.lock:
                write_history(self.out, self.records)


class WorkloadCheckTest(unittest.TestCase):
    def setUp(self):
        if KAZOO_MISSING:
            self.skipTest(KAZOO_MISSING)
        self.dir = tempfile.mkdtemp(prefix="faults-tools-")
        self.addCleanup(shutil.rmtree, self.dir, True)
        self.procs = []
        self.addCleanup(self.kill_procs)

    def start_cluster(self, extra_args=()):
        self.cluster = CoorddCluster(3, extra_args=extra_args)
        self.addCleanup(self.cluster.cleanup)
        self.cluster.start()
        self.cluster.wait_leader(WAIT_S)

    def kill_procs(self):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()

    def workload(self, mode, process, servers, threads=1, seed=1, duration_ms=RUN_MS,
                 request_timeout_ms=REQUEST_TIMEOUT_MS, session_timeout_ms=6000):
        out = os.path.join(self.dir, "%s.jsonl" % process)
        args = [WORKLOAD, "--servers", servers, "--process", process, "--out", out,
                "--duration-ms", str(duration_ms), "--seed", str(seed), "--mode", mode,
                "--keys", str(KEYS), "--prefix", PREFIX, "--threads", str(threads),
                "--request-timeout-ms", str(request_timeout_ms),
                "--session-timeout-ms", str(session_timeout_ms)]
        p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p, out

    def finish(self, p):
        output, _ = p.communicate(timeout=PROCESS_WAIT_S)
        self.assertEqual(p.returncode, 0, output.decode(errors="replace"))

    def check(self, files, name):
        verdict = os.path.join(self.dir, name + ".json")
        r = subprocess.run([CHECK, "--json", verdict] + files, stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, timeout=60)
        with open(verdict) as f:
            return r.returncode, r.stdout.decode(errors="replace"), json.load(f)

    def final_reads(self):
        finals = []
        for sid in self.cluster.ids:
            p, out = self.workload("final", "final-%d" % sid,
                                   "127.0.0.1:%d" % self.cluster.port(sid))
            self.finish(p)
            finals.append(out)
        return finals

    def test_a_run_without_faults_is_correct(self):
        self.start_cluster()
        hosts = self.cluster.hosts()
        t0 = time.monotonic()
        registers, reg_out = self.workload("registers", "reg", hosts, threads=3, seed=7)
        sequential, seq_out = self.workload("sequential", "seq", hosts, threads=2, seed=8)
        watch_out = os.path.join(self.dir, "kazoo-watch.jsonl")
        watch = KazooWatchWorkload(hosts, PREFIX + "/w", watch_out)
        watch.run(stop_at=t0 + RUN_MS / 1000)
        self.finish(registers)
        self.finish(sequential)
        files = [reg_out, seq_out, watch_out] + self.final_reads()
        elapsed = time.monotonic() - t0

        # The histories hold a real run: enough of every kind, and each
        # thread's records one after another (one request in flight).
        records = [r for f in files for r in read_history(f)]
        ok = [r for r in records if r["outcome"] == "ok"]
        kinds = {}
        for r in ok:
            kinds[r["f"]] = kinds.get(r["f"], 0) + 1
        self.assertGreaterEqual(kinds.get("read", 0), 3 * KEYS, kinds)
        self.assertGreaterEqual(kinds.get("set", 0), 10, kinds)
        self.assertGreaterEqual(kinds.get("create", 0), 1, kinds)
        self.assertGreaterEqual(kinds.get("seq_create", 0), 20, kinds)
        self.assertEqual(kinds.get("seq_list", 0), 3, kinds)
        self.assertGreaterEqual(kinds.get("watch_seen", 0), 3, kinds)
        final_reads = [r for r in records if r.get("note") == "final" and r["f"] == "read"
                       and r["outcome"] in ("ok", "no_node")]
        self.assertEqual(len(final_reads), 3 * KEYS)
        by_process = {}
        for r in read_history(reg_out) + read_history(seq_out):
            by_process.setdefault(r["process"], []).append(r)
        self.assertEqual(sorted(by_process), ["reg.0", "reg.1", "reg.2", "seq.0", "seq.1"])
        for name, rs in by_process.items():
            for a, b in zip(rs, rs[1:]):
                if a["ret_ns"] is not None:
                    self.assertLessEqual(a["ret_ns"], b["call_ns"], name)

        rc, summary, verdict = self.check(files, "verdict")
        self.assertEqual(rc, 0, summary)
        self.assertEqual(verdict["verdict"], "ok", summary)
        self.assertEqual(verdict["ops"], len(records))
        self.assertEqual(verdict["checks"]["sequential"]["lists"], 3)
        self.assertEqual(verdict["checks"]["watches"]["done"], 1)
        print(summary)
        print("run, final reads and check: %.1f s" % elapsed)

        # One forged final read of a value nobody wrote, and one listing
        # missing an acknowledged child: both are found.
        end = max(r["ret_ns"] or r["call_ns"] for r in records)
        forged_read = {"process": "forged", "f": "read", "key": PREFIX + "/r/0",
                       "data": "never-written", "version": 0, "outcome": "ok",
                       "call_ns": end + 10, "ret_ns": end + 20, "server": "forged"}
        listing = next(r for r in records if r["f"] == "seq_list" and r["outcome"] == "ok")
        acked = next(r for r in records if r["f"] == "seq_create" and r["outcome"] == "ok")
        dropped = acked["path"].rsplit("/", 1)[1]
        forged_list = dict(listing, process="forged", server="forged",
                           children=[c for c in listing["children"] if c != dropped],
                           call_ns=end + 30, ret_ns=end + 40)
        forged = os.path.join(self.dir, "forged.jsonl")
        write_history(forged, [forged_read, forged_list])
        rc, summary, verdict = self.check(files + [forged], "forged")
        self.assertEqual(rc, 1, summary)
        self.assertEqual(verdict["verdict"], "anomalies")
        found = {(a["check"], a["key"]) for a in verdict["anomalies"]}
        self.assertIn(("linearizability", PREFIX + "/r/0"), found, summary)
        self.assertIn(("sequential", PREFIX + "/seq"), found, summary)

    def test_a_run_through_a_leader_kill_and_a_frozen_cluster_is_correct(self):
        # Sessions of 1.5 s (the servers' minimum lowered to allow it), so
        # that a 2.5 s freeze expires them at the clients.
        self.start_cluster(extra_args=["--min-session-timeout-ms", "1000"])
        hosts = self.cluster.hosts()
        run_ms = 10000  # 3 to 4 s left after the freeze
        kw = dict(duration_ms=run_ms, request_timeout_ms=1000, session_timeout_ms=1500)
        t0 = time.monotonic()
        registers, reg_out = self.workload("registers", "reg", hosts, threads=3, seed=11, **kw)
        sequential, seq_out = self.workload("sequential", "seq", hosts, threads=2, seed=12, **kw)
        time.sleep(1.5)
        leader = self.cluster.leader()
        if leader is not None:
            self.cluster.kill(leader)
            time.sleep(0.5)
            self.cluster.restart(leader)
        self.cluster.wait_leader(WAIT_S)
        for sid in self.cluster.ids:
            self.cluster.sigstop(sid)
        time.sleep(2.5)
        for sid in self.cluster.ids:
            self.cluster.sigcont(sid)
        thaw_ns = time.monotonic_ns()
        self.finish(registers)
        self.finish(sequential)
        self.cluster.wait_leader(WAIT_S)
        files = [reg_out, seq_out] + self.final_reads()
        elapsed = time.monotonic() - t0

        records = [r for f in files for r in read_history(f)]
        unknown = [r for r in records if r["outcome"] == "unknown"]
        expired = [r for r in records
                   if r["outcome"] == "fail" and r.get("error") == "SessionExpired"]
        self.assertGreater(len(unknown), 0)
        self.assertTrue(all(r["ret_ns"] is None and r.get("error") for r in unknown), unknown[:3])
        self.assertGreater(len(expired), 0)
        sessions = {}
        for r in records:
            if r.get("session"):
                sessions.setdefault(r["process"], set()).add(r["session"])
        self.assertTrue(any(len(s) > 1 for s in sessions.values()), sessions)
        # Every thread went on after the freeze.
        for name in ("reg.0", "reg.1", "reg.2", "seq.0", "seq.1"):
            self.assertTrue(any(r["process"] == name and r["outcome"] == "ok"
                                and r["call_ns"] > thaw_ns for r in records), name)

        rc, summary, verdict = self.check(files, "verdict")
        self.assertEqual(rc, 0, summary)
        self.assertEqual(verdict["verdict"], "ok", summary)
        print(summary)
        print("%d unknown, %d expired; run, final reads and check: %.1f s"
              % (len(unknown), len(expired), elapsed))


if __name__ == "__main__":
    ctest_main.main()
