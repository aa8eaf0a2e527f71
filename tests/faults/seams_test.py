"""coordd's fault seams (test builds only, COORD_FAULT_SEAMS): the leader's
wall clock jumps an hour forward and an hour back under a 3-server cluster
with kazoo clients writing (--fault-clock-file), and a planted bug is
announced (--fault-plant-bug).

What coordd takes from the wall clock: the time a write's proposer stamps
on it (ctime and mtime of the znodes it makes, carried in the log entry,
so every server stores the same stamp), TTL and container expiry (the
leader compares its wall clock with mtime), and the connection times
shown by cons. Within one process the wall time a replica uses never goes
back: after a backward jump its stamps stand still until the clock passes
the highest time it had seen. Session expiry, elections, heartbeats and
request timeouts run on the steady clock, so the jumps must cost no
session, no election and no write.

- LeaderClockJumps: the leader's clock goes +1 h, then -1 h. A TTL node of
  30 minutes expires at the jump forward (one of 3 hours does not). Writers go
  on; the term stays the same; no session expires; a node created through
  the leader carries the leader's jumped time on every server, one created
  through a follower the follower's own time; after the jump back, the
  leader's stamps do not go back.
"""

import os
import subprocess
import sys
import time
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import ctest_main  # noqa: E402
import zkwire as zw  # noqa: E402
from cluster_test import KAZOO_MISSING, ClusterTest, WAIT_S, bounded, close, kazoo  # noqa: E402
from coordd_harness import COORDD, Coordd, CoorddCluster  # noqa: E402

HOUR_MS = 3600 * 1000
# The test's clock and the servers' read a few calls apart.
SLACK_MS = 30 * 1000
# Several election timeouts (150 ms each) without an election.
QUIET_S = 2.0


def seams_missing():
    """Why this coordd has no fault seams, or "" when it has them."""
    out = subprocess.run([COORDD, "--help"], capture_output=True, text=True, timeout=30).stdout
    return "" if "--fault-clock-file" in out else (
        "%s was built without COORD_FAULT_SEAMS (a release build)" % COORDD)


class ClockCluster(CoorddCluster):
    """Each server reads its wall-clock offset from a file of its own."""

    def clock_file(self, sid):
        return os.path.join(self.root, "clock-%d" % sid)

    def _make(self, sid):
        self.args_of[sid] = ["--fault-clock-file", self.clock_file(sid)]
        return super()._make(sid)

    def set_offset(self, sid, offset_ms):
        """Writes the offset (atomically: a rename) and waits until the
        server's log says it took it."""
        line = "wall-clock offset now %d ms" % offset_ms
        before = self.log(sid).count(line)
        path = self.clock_file(sid)
        with open(path + ".tmp", "w") as f:
            f.write("%d\n" % offset_ms)
        os.rename(path + ".tmp", path)
        self.wait("server %d takes the offset %d ms" % (sid, offset_ms),
                  lambda: self.log(sid).count(line) > before, WAIT_S)


class LeaderClockJumps(ClusterTest):
    def setUp(self):
        why = seams_missing()
        if why:
            self.skipTest(why)
        super().setUp()

    def make_cluster(self, **kw):
        c = ClockCluster(self.SIZE, extra_args=self.EXTRA_ARGS, **kw)
        self.addCleanup(c.cleanup)
        self.addCleanup(self.dump_logs_on_failure, c)
        return c

    def wire_create(self, sid, path, op, flags, ttl=None):
        """Creates a container or TTL node (kazoo has neither) through
        server sid with the raw protocol."""
        conn = zw.Conn(self.cluster.client_ports[sid])
        try:
            conn.handshake()
            _, reply = conn.call(op, zw.create_body(path, b"", flags=flags, ttl=ttl))
            self.assertEqual(reply.err, 0, "create %s" % path)
        finally:
            conn.close()

    def mtimes(self, path):
        """mtime of `path` on every server, read after a sync through it."""
        c = self.cluster
        out = {}
        for sid in c.ids:
            k = self.client(c.hosts([sid]))
            bounded(k.sync_async("/"))
            stat = bounded(k.exists_async(path))
            self.assertIsNotNone(stat, "server %d lacks %s" % (sid, path))
            out[sid] = (stat.mtime, stat.ctime)
            k.stop()
            k.close()
        return out

    def create_and_stamp(self, k, path):
        """Creates `path` through client k; its (mtime, ctime) on every
        server, which must agree."""
        bounded(k.create_async(path, b"t"))
        stamps = self.mtimes(path)
        self.assertEqual(len(set(stamps.values())), 1, "servers disagree on %s: %s" % (path, stamps))
        mtime, ctime = next(iter(stamps.values()))
        self.assertEqual(mtime, ctime)
        return mtime

    def test_a_jumping_wall_clock_costs_no_session_no_election_no_write(self):
        c = self.cluster
        leader = c.leader()
        follower = next(sid for sid in c.ids if sid != leader)
        self.assertIn("clock file %s is missing: wall-clock offset 0" % c.clock_file(leader),
                      c.log(leader))
        writers = self.writers(3)
        via_leader = self.client(c.hosts([leader]))
        via_follower = self.client(c.hosts([follower]))
        bounded(via_leader.ensure_path_async("/clock"))
        self.wait_acks(writers, 20)
        term = c.term()
        now_ms = lambda: int(time.time() * 1000)  # noqa: E731

        # TTL nodes are judged by the leader's wall clock, as in ZooKeeper:
        # the hour forward expires one of 30 minutes, not one of 3 hours.
        self.wire_create(leader, "/clock/ttl-30min", zw.CREATE_TTL, 5, ttl=HOUR_MS // 2)
        self.wire_create(leader, "/clock/ttl-3h", zw.CREATE_TTL, 5, ttl=3 * HOUR_MS)

        # +1 h: the leader stamps its jumped time, on every server.
        c.set_offset(leader, HOUR_MS)
        t = now_ms()
        stamped = self.create_and_stamp(via_leader, "/clock/plus-via-leader")
        self.assertLess(abs(stamped - (t + HOUR_MS)), SLACK_MS,
                        "a node created through the leader after +1 h: mtime %d, now %d" %
                        (stamped, t))
        t = now_ms()
        own = self.create_and_stamp(via_follower, "/clock/plus-via-follower")
        self.assertLess(abs(own - t), SLACK_MS,
                        "the follower's clock did not move, its proposals carry its time")
        c.wait("the 30-minute TTL node reaped after +1 h",
               lambda: bounded(via_leader.exists_async("/clock/ttl-30min")) is None, WAIT_S)
        self.assertIsNotNone(bounded(via_leader.exists_async("/clock/ttl-3h")))
        self.wait_acks(writers, 20, after=time.monotonic())
        self.assert_no_election(QUIET_S, "after the leader's clock jumped +1 h")
        self.assertEqual(c.term(), term)

        # -1 h (two hours back): the leader's stamps do not go back, and
        # it still reaps (a container whose last child goes).
        self.wire_create(leader, "/clock/box", zw.CREATE_CONTAINER, 4)
        bounded(via_leader.create_async("/clock/box/item", b""))
        c.set_offset(leader, -HOUR_MS)
        back = self.create_and_stamp(via_leader, "/clock/minus-via-leader")
        self.assertGreaterEqual(back, stamped,
                                "the leader's wall time went back after the jump back")
        self.assertLess(back - stamped, 2 * SLACK_MS,
                        "held at the highest time seen, not moved on by the jump back")
        bounded(via_leader.delete_async("/clock/box/item"))
        c.wait("the empty container reaped after the jump back",
               lambda: bounded(via_leader.exists_async("/clock/box")) is None, WAIT_S)
        self.wait_acks(writers, 20, after=time.monotonic())
        self.assert_no_election(QUIET_S, "after the leader's clock jumped -1 h")
        self.assertEqual(c.term(), term)

        for w in writers:
            w.finish()
        for w in writers:
            self.assertEqual([f for f in w.failures], [], "%s saw failed writes" % w.name_)
        self.assert_ephemerals_survive(writers)
        self.assert_nothing_lost(writers)
        self.assertEqual(c.term(), term, "an election during the clock jumps")
        self.assertEqual(c.crashed(), [])


class PlantedBug(unittest.TestCase):
    """--fault-plant-bug stale-sync starts a server that says, as a
    warning, that a bug is planted; an unknown bug is refused. --help lists
    both seams in a group of their own."""

    def setUp(self):
        why = seams_missing() or KAZOO_MISSING
        if why:
            self.skipTest(why)

    def test_a_planted_bug_is_announced_and_an_unknown_one_refused(self):
        helped = subprocess.run([COORDD, "--help"], capture_output=True, text=True,
                                timeout=30).stdout
        group = helped[helped.index("fault seams (test builds only)"):]
        self.assertIn("--fault-clock-file", group)
        self.assertIn("--fault-plant-bug", group)

        server = Coordd(extra_args=["--fault-plant-bug", "stale-sync"])
        self.addCleanup(server.cleanup)
        server.start()
        warnings = [line for line in server.log().splitlines()
                    if " WARN " in line and "a bug is planted" in line]
        self.assertEqual(len(warnings), 1, server.log())
        self.assertIn("stale-sync", warnings[0])
        # Sync is still answered (at once, which is the bug).
        k = kazoo(server.hosts())
        self.addCleanup(close, k)
        bounded(k.sync_async("/"))

        plain = Coordd()
        self.addCleanup(plain.cleanup)
        plain.start()
        self.assertNotIn("a bug is planted", plain.log())

        refused = subprocess.run([COORDD, "--fault-plant-bug", "no-such-bug", "--data-dir",
                                  os.path.join(server.data_dir, "unused")],
                                 capture_output=True, text=True, timeout=30)
        self.assertNotEqual(refused.returncode, 0)
        self.assertIn("no-such-bug", refused.stderr + refused.stdout)


if __name__ == "__main__":
    ctest_main.main()
