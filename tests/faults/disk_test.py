"""Disk faults under a 3-server cluster of real coordd processes with kazoo
clients writing.

- CorruptFollowerLog: a follower is stopped, one record of its log is
  damaged (corrupt.py), and it is started again: it refuses to start with
  one error line naming its data directory, the entry and what to do, and
  no assertion or stack trace. Its data directory wiped, it starts empty and
  catches up from the leader. Nothing acknowledged is lost.
- CorruptLeaderLogWhileRunning: a follower is stopped and the cluster
  writes on; the idle leader's log is damaged under it in a record the
  follower lacks. When the follower comes back the leader reads that
  record to send it, and stops with the same line (exit status 3) instead
  of sending it; the two others elect a leader and write on; the old
  leader, wiped, catches up. Nothing acknowledged is lost.
- FollowerDiskFull: every server's data directory is a small tmpfs of its
  own (disk.py); a follower's fills up under write load (its log's journal,
  a preallocated file, takes writes until it is checkpointed into LMDB,
  which then fails). The cluster goes on without an election; the follower turns read-only (srvr, /readyz)
  with LMDB's error in its log (ENOSPC, or EIO for a write the full disk
  cut short; never SIGBUS: coordd does not map the file writable); once
  the filler is removed it catches up. Nothing is lost.
- LeaderDiskFull: the same with the leader's disk. A leader whose log
  write fails restores its Raft core from its log, as a follower, so it
  stops leading and applies nothing unwritten; the others elect a leader
  and writes stall for no more than a few election timeouts; the old
  leader follows again once space returns.

The disk-full classes need root to mount a tmpfs and report SKIPPED with
the reason without it. Each class is a ctest entry of its own
(tests/faults/CMakeLists.txt).
"""

import os
import random
import sys
import tempfile
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import ctest_main  # noqa: E402
from cluster_test import ClusterTest, WAIT_S, bounded  # noqa: E402
from coordd_harness import CoorddCluster  # noqa: E402
from corrupt import MARKER, corrupt_log_record  # noqa: E402
from disk import DiskFull, Unavailable  # noqa: E402

# Which bytes corrupt_log_record flips; printed, and replayed with
# COORD_FAULTS_SEED=<seed>.
SEED = int(os.environ.get("COORD_FAULTS_SEED", "0")) or random.randrange(1, 1 << 30)
# The exit status of a server that finds its log damaged while running
# (coordd/io raft_storage.h, damaged_log_exit_code).
DAMAGED_LOG_EXIT_CODE = 3
# Each server's tmpfs: room for the log of these tests many times over.
TMPFS_BYTES = 48 << 20
# More than the entries a server keeps in memory after writing them
# (log_recent_entries_bytes_max, 4 MiB).
PAD_ZNODES = 80
PAD_BYTES = 60 << 10
# The servers' election timeout is 150 ms: "a few" of them.
WRITE_STALL_S_MAX = 2.0
# What a full disk's server is sent after the fill. Its log's journal is a
# preallocated file that still takes writes; the full disk shows when the
# journal's records are checkpointed into LMDB, every 512 KiB of them.
FLOOD_BYTES = 6 << 20


def data_dir(cluster, sid):
    return os.path.join(cluster.servers[sid].data_dir, "data")


class DiskTest(ClusterTest):
    def caught_up(self, what, ids=None):
        c = self.cluster
        c.wait(what, lambda: len({c.zxid(sid) for sid in ids or c.ids}) == 1, WAIT_S)

    def refusal_lines(self, sid, since):
        """The lines server sid logged since offset `since` about its
        damaged log, after checking it said nothing worse."""
        log = self.cluster.log(sid)[since:]
        for bad in ("assertion failed", "AddressSanitizer", "runtime error", "Aborted",
                    "Segmentation", "#0 "):
            self.assertNotIn(bad, log)
        return [line for line in log.splitlines() if "is damaged" in line]

    def assert_refusal(self, line, sid):
        self.assertIn("ERROR", line)
        self.assertIn("the log in %s is damaged" % data_dir(self.cluster, sid), line)
        self.assertRegex(line, r"log entry \d+ fails its checksum")
        self.assertIn("start this server with an empty one", line)

    def marker_everywhere(self):
        c = self.cluster
        for sid in c.ids:
            k = self.client(c.hosts([sid]))
            bounded(k.sync_async("/"))
            self.assertEqual(bounded(k.get_async("/corrupt-me"))[0], MARKER,
                             "server %d" % sid)
            k.stop()
            k.close()


class CorruptFollowerLog(DiskTest):
    def test_a_damaged_record_is_refused_and_a_wiped_server_catches_up(self):
        c = self.cluster
        leader = c.leader()
        f = next(sid for sid in c.ids if sid != leader)
        writers = self.writers(2, hosts=c.hosts([s for s in c.ids if s != f]))
        self.wait_acks(writers, 10)
        k = self.client(c.hosts([leader]))
        bounded(k.create_async("/corrupt-me", MARKER))
        czxid = bounded(k.exists_async("/corrupt-me")).czxid
        c.wait("server %d has the marked record" % f, lambda: c.zxid(f) >= czxid, WAIT_S)
        self.wait_acks(writers, 10, after=time.monotonic())

        c.stop(f)
        print("seed %d: %s" % (SEED, corrupt_log_record(data_dir(c, f), random.Random(SEED))))
        server = c.servers[f]
        server.spawn()
        rc = server.proc.wait(timeout=WAIT_S)
        self.assertNotEqual(rc, 0, "server %d started on a damaged log" % f)
        lines = self.refusal_lines(f, server.log_start)
        self.assertEqual(len(lines), 1, c.log(f)[server.log_start:])
        self.assert_refusal(lines[0], f)
        self.assertIn("cannot start", lines[0])
        # The two others write on meanwhile.
        self.wait_acks(writers, 20, after=time.monotonic())

        c.wipe(f)
        c.restart(f)
        for w in writers:
            w.finish()
        self.caught_up("server %d catches up from empty" % f)
        self.assert_nothing_lost(writers)
        self.marker_everywhere()


class CorruptLeaderLogWhileRunning(DiskTest):
    def test_the_leader_does_not_send_a_damaged_record(self):
        c = self.cluster
        old = c.leader()
        f, other = [sid for sid in c.ids if sid != old]
        c.stop(f)
        writers = self.writers(2, hosts=c.hosts([old, other]))
        self.wait_acks(writers, 10)
        k = self.client(c.hosts([old]))
        bounded(k.create_async("/corrupt-me", MARKER))
        # Records after the marked one fill its page, which LMDB then
        # leaves alone: nothing copies the page while it is damaged.
        self.wait_acks(writers, 60, after=time.monotonic())
        # The leader keeps the entries it wrote last in memory and sends
        # those from there: these push the marked one out, so that it is
        # read from the file again.
        for i in range(PAD_ZNODES):
            bounded(k.create_async("/pad-%d" % i, b"p" * PAD_BYTES))
        for w in writers:
            w.finish()
        k.stop()
        k.close()
        # The leader is idle (heartbeats write nothing to the log table).
        print("seed %d: %s" % (SEED, corrupt_log_record(data_dir(c, old), random.Random(SEED))))
        since = len(c.log(old))
        c.down.add(old)  # it is expected to stop by itself
        c.restart(f)
        proc = c.servers[old].proc
        try:
            rc = proc.wait(timeout=WAIT_S)
        except Exception:  # noqa: BLE001 - reported below with the log
            rc = None
        self.assertEqual(rc, DAMAGED_LOG_EXIT_CODE,
                         "the leader did not stop on its damaged log:\n" + c.log(old)[since:])
        lines = self.refusal_lines(old, since)
        self.assertEqual(len(lines), 1, c.log(old)[since:])
        self.assert_refusal(lines[0], old)
        self.assertIn("stopping", lines[0])

        new = c.wait_leader(WAIT_S, among=[f, other])
        self.assertEqual(new, other, "only server %d holds the whole log" % other)
        more = self.writers(2, hosts=c.hosts([f, other]), prefix="after")
        self.wait_acks(more, 20)
        c.wipe(old)
        c.restart(old)
        for w in more:
            w.finish()
        self.caught_up("the old leader, wiped, catches up")
        self.assert_nothing_lost(writers + more)
        self.marker_everywhere()


class TmpfsCluster(CoorddCluster):
    """Each server's data directory is a tmpfs of its own."""

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.disks = {}

    def _make(self, sid):
        server = super()._make(sid)
        if sid not in self.disks:
            self.disks[sid] = DiskFull(os.path.join(server.data_dir, "data"), TMPFS_BYTES).mount()
        return server

    def cleanup(self):
        try:
            self.kill_all()
        finally:
            for disk in self.disks.values():
                disk.cleanup()
            super().cleanup()


class DiskFullTest(DiskTest):
    # LMDB itself meets the full disk (ENOSPC), not the free-space reserve
    # checked before each write.
    EXTRA_ARGS = ("--log-disk-reserve-bytes", "0")

    def setUp(self):
        probe = DiskFull(tempfile.mkdtemp(prefix="coordd-tmpfs-probe-"), 1 << 20)
        try:
            probe.mount()
        except Unavailable as e:
            os.rmdir(probe.path)
            self.skipTest(str(e))
        finally:
            probe.cleanup()
        if os.path.isdir(probe.path):
            os.rmdir(probe.path)
        super().setUp()

    def make_cluster(self, **kw):
        c = TmpfsCluster(self.SIZE, extra_args=self.EXTRA_ARGS, **kw)
        self.addCleanup(c.cleanup)
        self.addCleanup(self.dump_logs_on_failure, c)
        return c

    def flood(self, hosts):
        """Writes FLOOD_BYTES of znodes through `hosts`, any of which may
        fail: the server whose disk is full may stop leading meanwhile."""
        k = self.client(hosts)
        pending = [k.create_async("/flood-%d" % i, b"f" * PAD_BYTES)
                   for i in range(FLOOD_BYTES // PAD_BYTES)]
        deadline = time.monotonic() + WAIT_S
        for p in pending:
            try:
                p.get(timeout=max(0.1, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - a failed write is expected here
                pass

    def readyz(self, sid):
        """The HTTP status of server sid's /readyz (503 while read-only)."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.cluster.http_ports[sid],
                                        timeout=2.0) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def assert_enospc_logged(self, sid):
        """Server sid logged its failed log write as an error and lives on:
        LMDB returns ENOSPC, or EIO for a write the full disk cut short;
        never SIGBUS (coordd does not map the file writable)."""
        c = self.cluster
        self.assertTrue(c.running(sid), "server %d exited" % sid)
        errors = [line for line in c.log(sid).splitlines()
                  if " ERROR " in line and "storage refuses writes" in line]
        self.assertTrue(errors, c.log(sid))
        self.assertIn(os.path.join(data_dir(c, sid), "log", "data.mdb"), errors[0])
        self.assertTrue("No space left on device" in errors[0] or "Input/output error" in errors[0],
                        errors[0])


class FollowerDiskFull(DiskFullTest):
    def test_a_full_follower_turns_read_only_and_catches_up(self):
        c = self.cluster
        leader = c.leader()
        f = next(sid for sid in c.ids if sid != leader)
        writers = self.writers(3, hosts=c.hosts([s for s in c.ids if s != f]))
        self.wait_acks(writers, 20)
        term = c.term()
        free = c.disks[f].fill()
        print("server %d's disk filled: %d bytes free" % (f, free))
        self.flood(c.hosts([leader]))
        # LMDB reuses the free pages its file holds before it must grow
        # it, so a write or two may pass between the failures.
        c.wait("server %d read-only and not ready" % f,
               lambda: c.mode(f) == "read-only" and self.readyz(f) == 503, WAIT_S)
        self.wait_acks(writers, 50, after=time.monotonic())
        self.assertEqual(c.term(), term, "an election while a follower's disk was full")
        self.assert_enospc_logged(f)

        c.disks[f].free()
        c.wait("server %d writable and ready again" % f,
               lambda: c.mode(f) == "follower" and self.readyz(f) == 200, WAIT_S)
        for w in writers:
            w.finish()
        self.caught_up("server %d catches up once space is back" % f)
        self.assertEqual(c.crashed(), [])
        self.assert_nothing_lost(writers)


class LeaderDiskFull(DiskFullTest):
    def test_a_leader_that_cannot_write_gives_way(self):
        c = self.cluster
        old = c.leader()
        writers = self.writers(3)
        self.wait_acks(writers, 20)
        free = c.disks[old].fill()
        filled_at = time.monotonic()
        print("leader %d's disk filled: %d bytes free" % (old, free))
        self.flood(c.hosts())
        # Every writer is acknowledged again soon: another server leads.
        self.wait_acks(writers, 5, after=filled_at + WRITE_STALL_S_MAX, timeout_s=WAIT_S)
        stalls = []
        for w in writers:
            gaps = [b - a for a, b in zip(w.ack_times, w.ack_times[1:]) if b > filled_at]
            stalls.append(max(gaps) if gaps else 0.0)
        print("longest wait for an acknowledgement after the fill: %.3f s" % max(stalls))
        others = [sid for sid in c.ids if sid != old]
        new = c.wait_leader(WAIT_S, other_than=old, among=others)
        self.assertNotEqual(new, old)
        c.wait("server %d read-only" % old, lambda: c.mode(old) == "read-only", WAIT_S)
        self.assertLess(max(stalls), WRITE_STALL_S_MAX, "writes stalled behind the full leader")
        self.assert_enospc_logged(old)

        c.disks[old].free()
        c.wait("server %d follows again" % old, lambda: c.mode(old) == "follower", WAIT_S)
        for w in writers:
            w.finish()
        self.caught_up("server %d catches up once space is back" % old)
        self.assertEqual(c.crashed(), [])
        self.assert_nothing_lost(writers)


if __name__ == "__main__":
    ctest_main.main()
