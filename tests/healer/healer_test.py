"""coord-healer, coord-healer wrap and coord-flaky-worker as processes
against a real coordd.

Every test runs under its own root path; the workers it counts are the
coord-flaky-worker processes whose command line names that root (argv[0]
the worker binary), read from /proc. Every process started here leads its
own process group and is killed by pid at the end, workers included (found
the same way). Every wait is bounded in count and time.
"""

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import unittest
import urllib.request
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))

import ctest_main  # noqa: E402
from coordd_harness import Coordd  # noqa: E402

try:
    from kazoo.client import KazooClient
except ImportError:  # pragma: no cover
    KazooClient = None

HEALER = os.environ.get("COORD_HEALER_BINARY", "coord-healer")
WORKER = os.environ.get("COORD_FLAKY_WORKER_BINARY", "coord-flaky-worker")
# Sessions as short as coordd allows here, so that a kill -9 is noticed
# within about a second.
SESSION_MS = 1000
N = 5


def worker_pids(marker):
    """pids of coord-flaky-worker processes whose arguments name `marker`."""
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % entry, "rb") as f:
                args = f.read().split(b"\0")
        except OSError:
            continue
        if not args or os.path.basename(args[0]) != b"coord-flaky-worker":
            continue
        if any(marker.encode() in a for a in args[1:]):
            # A zombie has no cmdline, so only live processes get here.
            pids.append(int(entry))
    return pids


def pids_naming(text):
    """pids of processes with `text` in one of their arguments."""
    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open("/proc/%s/cmdline" % entry, "rb") as f:
                    if text.encode() in f.read():
                        out.append(int(entry))
            except OSError:
                pass
    return out


def socket_inodes(pid):
    """The sockets a process holds open, by inode."""
    out = set()
    fd_dir = "/proc/%d/fd" % pid
    try:
        names = os.listdir(fd_dir)
    except OSError:
        return out
    for fd in names:
        try:
            target = os.readlink(os.path.join(fd_dir, fd))
        except OSError:
            continue
        if target.startswith("socket:"):
            out.add(target)
    return out


def worker_id(pid):
    """The --id argument of a worker process."""
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        args = f.read().split(b"\0")
    return args[args.index(b"--id") + 1].decode()


def kill_group(pid, sig=signal.SIGKILL):
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


class ProcessCounter(threading.Thread):
    """Samples the number of worker processes every few milliseconds and
    keeps the largest seen, with when."""

    def __init__(self, marker, period_s=0.01):
        super().__init__(daemon=True)
        self.marker = marker
        self.period_s = period_s
        self.stop = threading.Event()
        self.max_seen = 0
        self.samples = 0
        self.over = []  # (time, pids) of every sample above N

    def run(self):
        while not self.stop.is_set():
            pids = worker_pids(self.marker)
            self.samples += 1
            self.max_seen = max(self.max_seen, len(pids))
            if len(pids) > N:
                self.over.append((time.monotonic(), pids))
            self.stop.wait(self.period_s)

    def finish(self):
        self.stop.set()
        self.join(timeout=10)


class Healer:
    """One coord-healer process with its log file."""

    def __init__(self, test, args, command):
        self.log_path = os.path.join(test.dir, "healer-%d.log" % len(test.healers))
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([HEALER] + args + ["--"] + command, stdout=log, stderr=log,
                                     start_new_session=True)
        log.close()
        test.healers.append(self)
        self.port = None

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def status_port(self, timeout_s=20.0):
        deadline = time.monotonic() + timeout_s
        while self.port is None and time.monotonic() < deadline:
            m = re.search(r"status on http://127\.0\.0\.1:(\d+)/metrics", self.log())
            if m:
                self.port = int(m.group(1))
                break
            if self.proc.poll() is not None:
                raise AssertionError("coord-healer exited:\n" + self.log())
            time.sleep(0.05)
        if self.port is None:
            raise AssertionError("no status port in the log:\n" + self.log())
        return self.port

    def get(self, path):
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.status_port(), path),
                                    timeout=5) as r:
            return r.status, r.read().decode()

    def metrics(self):
        _, text = self.get("/metrics")
        out = {}
        for line in text.splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                out[name] = float(value)
        return out

    def kill9(self):
        kill_group(self.proc.pid)
        self.proc.wait(timeout=10)


@unittest.skipIf(KazooClient is None, "kazoo is not installed")
class HealerTestBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Coordd(extra_args=["--min-session-timeout-ms", str(SESSION_MS)]).start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="healer-it-")
        self.root = "/healer-it-" + uuid.uuid4().hex[:10]
        self.workers = self.root + "/workers"
        self.healers = []
        self.zk = KazooClient(hosts=self.server.hosts(), timeout=10)
        self.zk.start(timeout=20)

    def tearDown(self):
        for h in self.healers:
            if h.proc.poll() is None:
                h.kill9()
        # Workers, and launch commands that are not workers yet (a shell
        # sleeping before it execs one): everything naming this test's root.
        for _ in range(3):
            for pid in set(worker_pids(self.root)) | set(pids_naming(self.root)):
                kill_group(pid)
            time.sleep(0.05)
        self.zk.stop()
        self.zk.close()
        if self._outcome_failed():
            for h in self.healers:
                print("---- %s\n%s" % (h.log_path, h.log()[-20000:]))
        shutil.rmtree(self.dir, ignore_errors=True)

    def _outcome_failed(self):
        outcome = getattr(self, "_outcome", None)
        errors = getattr(outcome, "errors", None) or []
        result = getattr(outcome, "result", None)
        if result is not None and (result.failures or result.errors):
            return True
        return any(exc for _, exc in errors)

    def assert_no_launch_failed(self, healer):
        """No launch failed but those whose record's write had an unknown
        outcome (the healer's connection lost under load): each of those
        it leaves unstarted, and gives up on at its deadline if the record
        was written after all."""
        unknown = len(re.findall(r"not launching w-\S+: recording it failed: ConnectionLoss",
                                 healer.log()))
        self.assertLessEqual(healer.metrics()["coord_healer_failed_launches_total"], unknown)

    def worker_command(self, life_ms=(600_000, 600_000), prefix=()):
        return list(prefix) + [WORKER, "-s", self.server.hosts(), "--path", self.workers,
                               "--id", "{id}", "--index", "{index}",
                               "--min-life-ms", str(life_ms[0]), "--max-life-ms",
                               str(life_ms[1]), "--session-timeout-ms", str(SESSION_MS)]

    def start_healer(self, command, *extra):
        args = ["-s", self.server.hosts(), "--workers-path", self.workers, "--count", str(N),
                "--listen", "127.0.0.1:0", "--session-timeout-ms", str(SESSION_MS)] + list(extra)
        return Healer(self, args, command)

    def registered(self):
        try:
            return set(self.zk.get_children(self.workers))
        except Exception:  # NoNodeError before the first registration
            return set()

    def wait_for(self, what, predicate, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            time.sleep(0.02)
        self.fail("%s not within %.1f s" % (what, timeout_s))

    def wait_full(self, timeout_s, without=()):
        """Waits until N workers are registered, none of them in `without`,
        and N worker processes run; returns the ids."""
        def full():
            ids = self.registered()
            if len(ids) == N and not ids & set(without) and len(worker_pids(self.root)) == N:
                return ids
            return None
        return self.wait_for("%d workers" % N, full, timeout_s)


class Healing(HealerTestBase):
    def test_workers_killed_at_random_come_back(self):
        counter = ProcessCounter(self.root)
        counter.start()
        healer = self.start_healer(self.worker_command(), "--grace-ms", "10000")
        started = time.monotonic()
        ids = self.wait_full(30)
        print("first %d workers registered in %.2f s" % (N, time.monotonic() - started))
        code, body = healer.get("/healthz")
        self.assertEqual(code, 200)
        self.assertIn("active", body)
        # The healer's own count follows at its next look.
        self.wait_for("the healer counting %d" % N,
                      lambda: healer.metrics()["coord_healer_alive_workers"] == N, 10)
        # A worker holds none of the healer's sockets (its status port, its
        # session): they outlive it, and would keep that port taken.
        healer_sockets = socket_inodes(healer.proc.pid)
        self.assertTrue(healer_sockets)
        for pid in worker_pids(self.root):
            self.assertEqual(socket_inodes(pid) & healer_sockets, set(),
                             "worker %d holds the healer's sockets" % pid)
        m = healer.metrics()
        self.assertEqual(m["coord_healer_desired_workers"], N)
        self.assertEqual(m["coord_healer_active"], 1)
        self.assertEqual(m["coord_healer_launches_total"], N)

        rng = random.Random(15)
        worst = 0.0
        times = []
        for round_ in range(8):
            pids = worker_pids(self.root)
            self.assertEqual(len(pids), N)
            # One or two at once; SIGKILL (the node lives until the session
            # expires) or SIGTERM (the worker closes its session).
            victims = rng.sample(pids, rng.choice([1, 1, 2]))
            sig = rng.choice([signal.SIGKILL, signal.SIGTERM])
            gone_ids = set()
            for pid in victims:
                gone_ids.add(worker_id(pid))
                kill_group(pid, sig)
            t0 = time.monotonic()
            ids = self.wait_full(15, without=gone_ids)
            took = time.monotonic() - t0
            times.append(took)
            worst = max(worst, took)
            print("round %d: %s of %d worker(s): back to %d in %.2f s" %
                  (round_, signal.Signals(sig).name, len(victims), N, took))
        counter.finish()
        print("worst %.2f s; at most %d worker processes in %d samples" %
              (worst, counter.max_seen, counter.samples))
        self.assertEqual(counter.over, [], "more than %d worker processes" % N)
        self.assertLessEqual(worst, 10.0)
        self.wait_for("the healer counting %d" % N,
                      lambda: healer.metrics()["coord_healer_alive_workers"] == N, 10)
        self.assert_no_launch_failed(healer)
        # One decision per line: each launch is logged with its index.
        self.assertGreaterEqual(len(re.findall(r"launching w-\S+ \(index \d\)", healer.log())),
                                N + 8)

    def test_flaky_workers_that_die_by_themselves(self):
        counter = ProcessCounter(self.root)
        counter.start()
        healer = self.start_healer(self.worker_command(life_ms=(300, 1500)), "--grace-ms",
                                   "10000", "--max-launches-per-min", "1000")
        # Replacements keep coming: 25 launches within a bounded time.
        self.wait_for("25 launches",
                      lambda: healer.metrics().get("coord_healer_launches_total", 0) >= 25, 30)
        counter.finish()
        self.assertEqual(counter.over, [], "more than %d worker processes" % N)
        self.assert_no_launch_failed(healer)


class Failover(HealerTestBase):
    def active_and_standby(self, healers):
        def pick():
            try:
                flags = [h.metrics().get("coord_healer_active", 0) for h in healers]
            except OSError:
                return None
            if sorted(flags) != [0, 1]:
                return None
            return (healers[0], healers[1]) if flags[0] == 1 else (healers[1], healers[0])
        return self.wait_for("one active healer", pick, 20)

    def test_kill9_of_the_active_healer(self):
        counter = ProcessCounter(self.root)
        counter.start()
        # The launch command takes 3 s before the worker starts, so a launch
        # is still in flight when the next healer takes over: it must count
        # it and not launch a sixth.
        command = ["sh", "-c", "sleep 3; exec \"$0\" \"$@\""] + self.worker_command()
        a = self.start_healer(command, "--grace-ms", "10000")
        b = self.start_healer(command, "--grace-ms", "10000")
        self.wait_full(30)
        active, standby = self.active_and_standby([a, b])
        self.assertEqual(standby.metrics()["coord_healer_launches_total"], 0)

        # A worker dies; as soon as the active healer has recorded its
        # replacement, the active healer is killed. (First the records of
        # the first launches must be gone, or one of them would be taken
        # for the replacement's.)
        launches = self.root + "/workers-launches"
        self.wait_for("the first launches done", lambda: self.zk.get_children(launches) == [], 10)
        victim = worker_pids(self.root)[0]
        kill_group(victim, signal.SIGTERM)
        record = self.wait_for("a launch record", lambda: self.zk.get_children(launches), 10)[0]
        # Its command started (a healer killed between the record and the
        # start leaves a launch the next one gives up on at the deadline;
        # the last part below covers that).
        self.wait_for("the launch command running", lambda: pids_naming(record), 10)
        t0 = time.monotonic()
        active.kill9()
        # The standby takes over and finds the launch in flight.
        self.wait_for("the standby active",
                      lambda: standby.metrics().get("coord_healer_active") == 1, 15)
        took_over = time.monotonic() - t0
        print("took over in %.2f s" % took_over)
        self.wait_full(15)
        self.assertEqual(standby.metrics()["coord_healer_launches_total"], 0,
                         "the new healer launched although a launch was in flight")
        # It saw the launch through: its record is gone, and said so.
        self.wait_for("the inherited launch registered",
                      lambda: re.search(r"launch w-\S+ \(index \d\) registered", standby.log()),
                      10)
        self.wait_for("no launch record left", lambda: self.zk.get_children(launches) == [], 10)

        # And it keeps healing: two more deaths, SIGKILL this time.
        gone = set()
        for pid in worker_pids(self.root)[:2]:
            gone.add(worker_id(pid))
            kill_group(pid)
        self.wait_full(20, without=gone)
        self.assertGreaterEqual(standby.metrics()["coord_healer_launches_total"], 2)
        # Once more with the healer killed right away: the launch record
        # may be written or not; either way never more than N.
        victim = worker_pids(self.root)[0]
        kill_group(victim)
        c = self.start_healer(command, "--grace-ms", "10000")
        time.sleep(1.2)
        standby.kill9()
        self.wait_for("healer c active", lambda: c.metrics().get("coord_healer_active") == 1, 20)
        self.wait_full(20)
        counter.finish()
        print("at most %d worker processes in %d samples" % (counter.max_seen, counter.samples))
        self.assertEqual(counter.over, [], "more than %d worker processes" % N)

    def test_inherited_launch_that_never_started(self):
        # A predecessor recorded a launch and died before running it: the
        # record alone holds the place until its deadline, then the launch
        # is given up and made again.
        import json
        launches = self.root + "/workers-launches"
        now_ms = int(time.time() * 1000)
        deadline_ms = now_ms + 3000
        self.zk.create(launches + "/ghost-1", json.dumps(
            {"id": "ghost-1", "index": 0, "launched_ms": now_ms, "deadline_ms": deadline_ms,
             "healer": "gone"}).encode(), makepath=True)
        h = Healer(self, ["-s", self.server.hosts(), "--workers-path", self.workers, "--count",
                          "1", "--grace-ms", "10000", "--listen", "127.0.0.1:0"],
                   self.worker_command())
        h.status_port()
        while time.time() * 1000 < deadline_ms - 300:
            self.assertEqual(worker_pids(self.root), [])
            self.assertEqual(h.metrics().get("coord_healer_launches_total", 0), 0)
            time.sleep(0.1)
        self.wait_for("a worker after the deadline", lambda: len(self.registered()) == 1, 10)
        self.assertGreaterEqual(time.time() * 1000, deadline_ms)
        self.assertIn("giving up on launch ghost-1 (index 0): no worker registered within the "
                      "grace period", h.log())
        self.assertEqual(len(worker_pids(self.root)), 1)


class FailingCommand(HealerTestBase):
    def test_backoff_and_cap(self):
        # Two healer groups side by side: one with a cap that binds, one
        # with only the backoff. Each launch appends a line to its file.
        capped_file = os.path.join(self.dir, "capped")
        backoff_file = os.path.join(self.dir, "backoff")
        fail = "date +%s%N >> \"$0\"; exit 1"
        capped = Healer(self, ["-s", self.server.hosts(), "--workers-path", self.root + "/capped",
                               "--count", str(N), "--max-launches-per-min", "8",
                               "--backoff-ms", "100", "--backoff-cap-ms", "400",
                               "--listen", "127.0.0.1:0"],
                        ["sh", "-c", fail, capped_file])
        backoff = Healer(self, ["-s", self.server.hosts(), "--workers-path",
                                self.root + "/backoff", "--count", str(N),
                                "--max-launches-per-min", "1000", "--backoff-ms", "200",
                                "--backoff-cap-ms", "1600", "--listen", "127.0.0.1:0"],
                         ["sh", "-c", fail, backoff_file])
        capped.status_port()
        backoff.status_port()
        run_s = 6.0
        time.sleep(run_s)

        def launches(path):
            try:
                with open(path) as f:
                    return [int(x) / 1e9 for x in f.read().split()]
            except OSError:
                return []

        n_capped = launches(capped_file)
        n_backoff = launches(backoff_file)
        print("in %.0f s: %d launches under a cap of 8/min, %d with the backoff alone" %
              (run_s, len(n_capped), len(n_backoff)))
        # The cap binds exactly: 8 launches in the first minute.
        self.assertEqual(len(n_capped), 8)
        # The backoff: 5 at first, then one at a time, 200 ms doubling up to
        # 1600 ms after each failure: a handful, never a storm.
        self.assertGreaterEqual(len(n_backoff), 6)
        self.assertLessEqual(len(n_backoff), 5 + int(run_s / 0.2))
        gaps = [b - a for a, b in zip(n_backoff[5:], n_backoff[6:])]
        print("gaps after the first five: %s" % ", ".join("%.2f" % g for g in gaps))
        for g in gaps:
            self.assertGreaterEqual(g, 1.6 * 0.9)  # five failures in: at the cap
        m = backoff.metrics()
        # A probe may be starting as this reads.
        self.assertLessEqual(abs(m["coord_healer_launches_total"] - len(launches(backoff_file))), 1)
        self.assertGreaterEqual(m["coord_healer_failed_launches_total"], len(n_backoff) - 1)
        self.assertGreaterEqual(m["coord_healer_consecutive_failed_launches"], 5)
        self.assertIn("backing off after", backoff.log())
        self.assertIn("launch cap of 8 per minute reached", capped.log())
        # Nothing registered, nothing left running.
        self.assertEqual(self.zk.get_children(self.root + "/capped"), [])

    def test_launcher_that_exits_zero_and_never_registers(self):
        # Like ssh or systemd-run: the command returns at once; the launch
        # fails only when no worker registers within the grace period.
        marks = os.path.join(self.dir, "marks")
        h = Healer(self, ["-s", self.server.hosts(), "--workers-path", self.workers, "--count",
                          "1", "--grace-ms", "700", "--backoff-ms", "3000", "--listen",
                          "127.0.0.1:0"],
                   ["sh", "-c", "date +%s%N >> \"$0\"", marks])
        self.wait_for("a failed launch",
                      lambda: h.metrics().get("coord_healer_failed_launches_total", 0) >= 1, 10)
        with open(marks) as f:
            first = [int(x) / 1e9 for x in f.read().split()]
        self.assertEqual(len(first), 1)
        self.assertIn("no worker registered within the grace period", h.log())


class Wrap(HealerTestBase):
    def test_registers_while_the_child_lives(self):
        log = open(os.path.join(self.dir, "wrap.log"), "ab")
        p = subprocess.Popen([HEALER, "wrap", "-s", self.server.hosts(), "--workers-path",
                              self.workers, "--id", "w1", "--index", "3", "--session-timeout-ms",
                              str(SESSION_MS), "--", "sleep", "30"],
                             stdout=log, stderr=log, start_new_session=True)
        try:
            self.wait_for("w1 registered", lambda: "w1" in self.registered(), 20)
            data, _ = self.zk.get(self.workers + "/w1")
            self.assertIn(b'"index":3', data)
            child = int(re.search(rb'"pid":(\d+)', data).group(1))

            def argv0():
                with open("/proc/%d/cmdline" % child, "rb") as f:
                    return f.read().split(b"\0")[0] == b"sleep"
            self.wait_for("the child to exec sleep", argv0, 10)  # it registers as it forks
            os.kill(child, signal.SIGTERM)
            self.assertEqual(p.wait(timeout=10), 128 + signal.SIGTERM)
            self.assertNotIn("w1", self.registered())

            # kill -9 of the wrapper: the child goes with it.
            p = subprocess.Popen([HEALER, "wrap", "-s", self.server.hosts(), "--workers-path",
                                  self.workers, "--id", "w2", "--", "sleep", "30"],
                                 stdout=log, stderr=log, start_new_session=True)
            self.wait_for("w2 registered", lambda: "w2" in self.registered(), 20)
            data, _ = self.zk.get(self.workers + "/w2")
            child = int(re.search(rb'"pid":(\d+)', data).group(1))
            kill_group(p.pid)
            p.wait(timeout=10)
            self.wait_for("the child gone", lambda: not os.path.exists("/proc/%d" % child), 10)
        finally:
            log.close()
            if p.poll() is None:
                kill_group(p.pid)
                p.wait(timeout=10)

    def test_lost_registration_stops_the_child(self):
        # The wrapper paused past its session: on waking it finds the
        # session expired (its node is gone, a replacement may be on its
        # way) and stops the child instead of letting it run unregistered.
        log = open(os.path.join(self.dir, "wrap-expiry.log"), "ab")
        p = subprocess.Popen([HEALER, "wrap", "-s", self.server.hosts(), "--workers-path",
                              self.workers, "--id", "w3", "--session-timeout-ms",
                              str(SESSION_MS), "--", "sleep", "30"],
                             stdout=log, stderr=log, start_new_session=True)
        log.close()
        try:
            self.wait_for("w3 registered", lambda: "w3" in self.registered(), 20)
            data, _ = self.zk.get(self.workers + "/w3")
            child = int(re.search(rb'"pid":(\d+)', data).group(1))
            os.kill(p.pid, signal.SIGSTOP)
            self.wait_for("w3 expired", lambda: "w3" not in self.registered(), 10)
            self.assertTrue(os.path.exists("/proc/%d" % child))
            os.kill(p.pid, signal.SIGCONT)
            self.assertEqual(p.wait(timeout=20), 1)
            self.wait_for("the child gone", lambda: not os.path.exists("/proc/%d" % child), 10)
        finally:
            if p.poll() is None:
                os.kill(p.pid, signal.SIGCONT)
                kill_group(p.pid)
                p.wait(timeout=10)

    def test_bad_usage(self):
        def run(*args):
            return subprocess.run([HEALER] + list(args), capture_output=True, timeout=30)
        r = run("-s", self.server.hosts(), "--", "true")
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--count", r.stderr)
        r = run("-s", self.server.hosts(), "--count", "1")
        self.assertEqual(r.returncode, 2)
        r = run("-s", self.server.hosts(), "--count", "1", "--workers-path", "rel", "--", "true")
        self.assertEqual(r.returncode, 2)
        r = run("wrap", "-s", self.server.hosts(), "--id", "a/b", "--", "true")
        self.assertEqual(r.returncode, 2)
        r = subprocess.run([WORKER, "-s", self.server.hosts(), "--min-life-ms", "5",
                            "--max-life-ms", "1"], capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 2)


class SystemdUnit(unittest.TestCase):
    """deploy/examples/healer/coord-healer.service passes systemd-analyze
    verify, with ExecStart pointed at the built binary."""

    def test_unit_verifies(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze is not installed")
        unit = os.path.join(HERE, "..", "..", "deploy", "examples", "healer",
                            "coord-healer.service")
        with open(unit) as f:
            text = f.read()
        # Stopping the unit must leave the workers running.
        for key in ("KillMode=process", "ExecStart=/usr/local/bin/coord-healer \\",
                    "NoNewPrivileges=yes", "User=coord-healer"):
            self.assertIn(key + "\n", text)
        d = tempfile.mkdtemp(prefix="coord-healer-systemd-")
        self.addCleanup(shutil.rmtree, d, True)
        path = os.path.join(d, "coord-healer.service")
        with open(path, "w") as f:
            f.write(text.replace("ExecStart=/usr/local/bin/coord-healer",
                                 "ExecStart=" + os.path.abspath(HEALER)))
        p = subprocess.run([analyze, "verify", path], capture_output=True, text=True, timeout=60)
        ours = [line for line in (p.stdout + p.stderr).splitlines() if "coord-healer" in line]
        self.assertEqual(ours, [], p.stdout + p.stderr)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    ctest_main.main()
