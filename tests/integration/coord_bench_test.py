"""coord-bench's raw modes against a real coordd: `latency` (one request at
a time on a blocking socket), `watch-latency-raw` (a write on one raw
session, the event on another), `ops-raw` (sessions on one thread,
each with requests pipelined) and `idle-sessions` (many sessions held
idle, pinging). The figures of docs/PERFORMANCE.md come
from them, so each run must do exactly the operations asked, without
errors, and a server that goes away must end the run with an error
instead of hanging it."""
import json
import os
import resource
import subprocess
import sys
import threading
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ctest_main  # noqa: E402
from coordd_harness import Coordd, four_letter  # noqa: E402

try:
    from kazoo.client import KazooClient
except ImportError:  # reported by the test that needs it
    KazooClient = None

BENCH = os.environ.get("COORD_BENCH_BINARY", "")
RUN_S = 60


def run_bench(port, *flags):
    out = subprocess.run([BENCH, "-s", "127.0.0.1:%d" % port, "--payload-bytes", "100",
                          "--keys", "50", "--root", "/rawbench"] + list(flags),
                         capture_output=True, text=True, timeout=RUN_S)
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    return out.returncode, (json.loads(lines[-1]) if lines else None), out.stderr


class OnCoordd(unittest.TestCase):
    """Each test on a fresh coordd."""

    def setUp(self):
        if not BENCH:
            self.skipTest("COORD_BENCH_BINARY is not set")
        self.server = Coordd()
        self.server.start()
        self.addCleanup(self.server.cleanup)


class RawModes(OnCoordd):
    def test_latency_does_each_op_asked(self):
        for op in ("get", "set", "exists"):
            code, r, err = run_bench(self.server.port, "--mode", "latency", "--op", op,
                                     "--ops", "300")
            self.assertEqual(code, 0, err)
            self.assertEqual((r["mode"], r["op"], r["ops"], r["errors"]), ("latency", op, 300, 0))
            self.assertGreater(r["latency_us"]["p50"], 0)

    def test_ops_raw_keeps_requests_in_flight_and_counts_each_reply(self):
        if KazooClient is None:
            self.skipTest("kazoo is not installed for /usr/bin/python3")
        code, r, err = run_bench(self.server.port, "--mode", "ops-raw", "--op", "set",
                                 "--sessions", "4", "--outstanding", "16", "--ops", "2000")
        self.assertEqual(code, 0, err)
        self.assertEqual((r["mode"], r["op"], r["ops"], r["errors"]), ("ops-raw", "set", 2000, 0))
        # Each write counted was applied once: the keys' versions add up.
        zk = KazooClient(hosts="127.0.0.1:%d" % self.server.port, timeout=10.0)
        zk.start(timeout=30)
        self.addCleanup(zk.stop)
        keys = zk.get_children("/rawbench")
        self.assertEqual(len(keys), 50)
        self.assertEqual(sum(zk.get("/rawbench/" + k)[1].version for k in keys), 2000)
        for op in ("get", "exists"):
            code, r, err = run_bench(self.server.port, "--mode", "ops-raw", "--op", op,
                                     "--sessions", "3", "--outstanding", "8", "--ops", "1000")
            self.assertEqual(code, 0, err)
            self.assertEqual((r["op"], r["ops"], r["errors"]), (op, 1000, 0))

    def test_latency_refuses_an_op_it_does_not_time(self):
        code, r, err = run_bench(self.server.port, "--mode", "latency", "--op", "create",
                                 "--ops", "10")
        self.assertEqual(code, 2)
        self.assertIn("latency mode takes --op get, set or exists", err)

    def test_watch_latency_raw_counts_each_event(self):
        code, r, err = run_bench(self.server.port, "--mode", "watch-latency-raw", "--ops", "100")
        self.assertEqual(code, 0, err)
        self.assertEqual((r["ops"], r["errors"]), (100, 0))
        # The watched node is removed at the end: a second run starts anew.
        code, r, err = run_bench(self.server.port, "--mode", "watch-latency-raw", "--ops", "20")
        self.assertEqual((code, r["ops"], r["errors"]), (0, 20, 0), err)

    def test_a_server_that_goes_away_ends_the_run_with_an_error(self):
        result = {}

        def bench():
            result["run"] = run_bench(self.server.port, "--mode", "latency", "--op", "get",
                                      "--duration-s", "30")

        t = threading.Thread(target=bench)
        t.start()
        # Killed while the run is under way; it ends long before its 30 s.
        threading.Event().wait(1.0)
        self.server.kill9()
        t.join(RUN_S)
        self.assertFalse(t.is_alive())
        code, r, err = result["run"]
        self.assertEqual(code, 0, err)
        self.assertEqual(r["errors"], 1)
        self.assertEqual(r["error_codes"], {"ConnectionLoss": 1})
        self.assertLess(r["seconds"], 20)


def mntr(port):
    lines = four_letter(port, "mntr").splitlines()
    return dict(line.split("\t", 1) for line in lines if "\t" in line)


class IdleSessions(OnCoordd):
    SESSIONS = 1500

    def test_holds_every_session_pinging_then_closes_each(self):
        # Two source addresses, 750 sessions from each: within the default
        # cap per client address. Pings every 4000 / 3 ms, held 3 s.
        holder = subprocess.Popen(
            [BENCH, "-s", "127.0.0.1:%d" % self.server.port, "--mode", "idle-sessions",
             "--sessions", str(self.SESSIONS), "--outstanding", "64", "--duration-s", "3",
             "--session-timeout-ms", "4000", "--source-addresses", "2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.addCleanup(lambda: holder.poll() is None and (holder.kill(), holder.wait()))
        line = holder.stderr.readline()
        self.assertIn("idle-sessions: %d sessions open" % self.SESSIONS, line)
        # While they are held, the server counts every one of them.
        held = mntr(self.server.port)
        self.assertGreaterEqual(int(held["zk_global_sessions"]), self.SESSIONS)
        self.assertGreaterEqual(int(held["zk_num_alive_connections"]), self.SESSIONS)
        out, err = holder.communicate(timeout=RUN_S)
        self.assertEqual(holder.returncode, 0, err)
        r = json.loads(out.strip().splitlines()[-1])
        self.assertEqual((r["opened"], r["lost"], r["pings_late"], r["closed"], r["errors"]),
                         (self.SESSIONS, 0, 0, self.SESSIONS, 0), err)
        # Each session pinged at least twice in the hold, and every ping was
        # answered (before its session's close, which the server answers
        # in order).
        self.assertGreaterEqual(r["pings_sent"], 2 * self.SESSIONS)
        self.assertEqual(r["ops"], r["pings_sent"])
        # Closed, not left to expire: the server holds none of them now
        # (the session coord-bench prepared with may still be closing).
        after = mntr(self.server.port)
        self.assertLessEqual(int(after["zk_global_sessions"]), 1)

    def test_refuses_more_sessions_than_descriptors(self):
        def low_limit():
            resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))
        out = subprocess.run([BENCH, "-s", "127.0.0.1:%d" % self.server.port, "--mode",
                              "idle-sessions", "--sessions", "2000", "--duration-s", "1"],
                             capture_output=True, text=True, timeout=RUN_S, preexec_fn=low_limit)
        self.assertEqual(out.returncode, 1, out.stderr)
        self.assertIn("idle-sessions needs 2256 descriptors; the limit is 1024", out.stderr)

    def test_other_modes_keep_their_session_bound(self):
        code, r, err = run_bench(self.server.port, "--mode", "ops", "--sessions", "10001",
                                 "--duration-s", "1")
        self.assertEqual(code, 2)
        self.assertIn("--sessions is at most 10000 in ops mode", err)


if __name__ == "__main__":
    ctest_main.main()
