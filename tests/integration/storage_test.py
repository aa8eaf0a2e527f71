"""A real coordd against a damaged data directory and a full disk, and
what of its log it keeps resident.

Damage: the log deleted or cut to zero next to snapshot files (refused,
then rebuilt with --recover-from-snapshot), the log cut short, a B-tree page
of the log damaged: each must end coordd with a message and a non-zero exit
code, never a signal. The full disk: the data directory on an 8 MiB tmpfs
(needs root to mount; skipped otherwise), filled until the log cannot grow.
"""

import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

from kazoo.client import KazooClient, KazooState
from kazoo.exceptions import NotReadOnlyCallError

import ctest_main
from coordd_harness import COORDD, Coordd, four_letter

WAIT_S = 10.0
EXIT_WAIT_S = 20.0


def connect(server, **kw):
    zk = KazooClient(hosts=server.hosts(), timeout=10.0, **kw)
    zk.start(timeout=WAIT_S)
    return zk


def close(zk):
    try:
        zk.stop()
    finally:
        zk.close()


def run_to_exit(data_dir, *extra):
    """Starts coordd on `data_dir` expecting it to refuse to start."""
    proc = subprocess.run(
        [COORDD, "--client-port", "0", "--http-port", "0", "--data-dir", data_dir] + list(extra),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=EXIT_WAIT_S)
    return proc.returncode, proc.stdout.decode(errors="replace")


def http_get(port, path):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def wait_until(pred, timeout_s=WAIT_S, what="condition"):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


class DamagedDataDir(unittest.TestCase):
    def setUp(self):
        self.server = Coordd(extra_args=["--snapshot-entries", "40"])
        self.addCleanup(self.server.cleanup)
        self.data = os.path.join(self.server.data_dir, "data")
        self.log_file = os.path.join(self.data, "log", "data.mdb")
        self.snap_dir = os.path.join(self.data, "snapshots")

    def fill(self, count=120, size=200, snapshot=True):
        """Writes `count` znodes and waits until a snapshot covers some."""
        self.server.start()
        zk = connect(self.server)
        try:
            zk.ensure_path("/d")
            for i in range(count):
                zk.create("/d/n%04d" % i, b"v" * size)
        finally:
            close(zk)
        if snapshot:
            wait_until(lambda: os.path.isdir(self.snap_dir) and any(
                f.endswith(".snap") for f in os.listdir(self.snap_dir)), what="a snapshot file")
        self.assertEqual(self.server.terminate(), 0)

    def assert_refused(self, rc, out, *needles):
        self.assertGreater(rc, 0, "coordd must exit with an error code, not a signal:\n" + out)
        for n in needles:
            self.assertIn(n, out)

    def test_empty_log_next_to_snapshots_is_refused_then_recovered(self):
        self.fill()
        for damage in ("deleted", "cut to zero"):
            with self.subTest(damage=damage):
                if damage == "deleted":
                    shutil.rmtree(os.path.join(self.data, "log"))
                else:
                    os.truncate(self.log_file, 0)
                rc, out = run_to_exit(self.data)
                self.assert_refused(rc, out, "holds no log", "--recover-from-snapshot",
                                    self.log_file)
        # Nothing was pruned or lost by the refusals.
        snaps_before = sorted(os.listdir(self.snap_dir))
        self.assertTrue(snaps_before)
        self.server.extra_args.append("--recover-from-snapshot")
        self.server.start()
        self.assertIn("recovered: the log now starts from", self.server.log())
        zk = connect(self.server)
        try:
            recovered = zk.get_children("/d")
            self.assertGreaterEqual(len(recovered), 40)
            zk.create("/after-recovery", b"x")
            for i in range(60):  # enough for a new snapshot
                zk.create("/after-recovery/%d" % i)
        finally:
            close(zk)
        time.sleep(0.5)
        self.assertEqual(self.server.terminate(), 0)
        # An ordinary restart: from the snapshot the new log names.
        self.server.extra_args.remove("--recover-from-snapshot")
        self.server.start()
        zk = connect(self.server)
        try:
            self.assertEqual(len(zk.get_children("/d")), len(recovered))
            self.assertEqual(len(zk.get_children("/after-recovery")), 60)
        finally:
            close(zk)

    def test_log_cut_to_half_is_reported_not_a_sigbus(self):
        # No snapshot, so no compaction: the log only grows, its newest
        # pages at the end of the file.
        self.server.extra_args = []
        self.fill(count=200, size=5000, snapshot=False)
        size = os.path.getsize(self.log_file)
        os.truncate(self.log_file, size // 2)
        rc, out = run_to_exit(self.data)
        self.assertNotEqual(rc, -signal.SIGBUS, out)
        self.assert_refused(rc, out, self.log_file, "cut short")

    def test_damaged_btree_page_is_reported_not_a_sigbus(self):
        self.fill(count=200, size=300)
        with open(self.log_file, "rb") as f:
            image = bytearray(f.read())
        page = log_leaf_page(image)
        psize = struct.unpack_from("<I", image, 40)[0]
        base = page * psize
        node = base + struct.unpack_from("<H", image, base + 16)[0]
        # The node's data size grows by 0x7f0000 bytes: far past its page,
        # and past the end of the file.
        struct.pack_into("<H", image, node + 2, 0x7f)
        with open(self.log_file, "wb") as f:
            f.write(image)
        rc, out = run_to_exit(self.data)
        self.assertNotEqual(rc, -signal.SIGBUS, out)
        self.assertNotEqual(rc, -signal.SIGSEGV, out)
        self.assert_refused(rc, out, self.log_file, "damaged LMDB file")


def log_leaf_page(image):
    """The number of a leaf page of the log's entries in an LMDB image: from
    the newer meta page, through the main tree to the "log" table's record,
    then down its leftmost branch (LMDB 0.9's layout, as coordd/io's check
    reads it)."""
    psize = struct.unpack_from("<I", image, 40)[0]
    metas = [p * psize for p in (0, 1)]
    meta = max(metas, key=lambda m: struct.unpack_from("<Q", image, m + 144)[0])

    def node(page, i):
        return page * psize + struct.unpack_from("<H", image, page * psize + 16 + 2 * i)[0]

    def leftmost_leaf(page):
        while struct.unpack_from("<H", image, page * psize + 10)[0] & 0x01:
            lo, hi, fl = struct.unpack_from("<HHH", image, node(page, 0))
            page = lo | hi << 16 | fl << 32
        return page

    main = leftmost_leaf(struct.unpack_from("<Q", image, meta + 128)[0])
    lower = struct.unpack_from("<H", image, main * psize + 12)[0]
    for i in range((lower - 16) // 2):
        at = node(main, i)
        ksize = struct.unpack_from("<H", image, at + 6)[0]
        if bytes(image[at + 8:at + 8 + ksize]) == b"log":
            root = struct.unpack_from("<Q", image, at + 8 + ksize + 40)[0]
            return leftmost_leaf(root)
    raise AssertionError("no log table in the main tree")


class FullDisk(unittest.TestCase):
    MIB = 1024 * 1024

    def setUp(self):
        if os.geteuid() != 0:
            self.skipTest("mounting a small tmpfs needs root")
        self.mnt = tempfile.mkdtemp(prefix="coordd-fulldisk-")
        self.addCleanup(shutil.rmtree, self.mnt, True)
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", self.mnt],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        if r.returncode != 0:
            self.skipTest("cannot mount a tmpfs: " + r.stdout.decode(errors="replace"))
        self.addCleanup(subprocess.run, ["umount", "-l", self.mnt])
        # Room to give back later, so that the test can end the full disk.
        self.ballast = os.path.join(self.mnt, "ballast")
        with open(self.ballast, "wb") as f:
            f.write(b"\0" * (2 * self.MIB))
        # A reserve of 1 MiB: writes are refused once less is free.
        self.server = Coordd(data_dir=self.mnt,
                             extra_args=["--log-disk-reserve-bytes", str(self.MIB)])
        # coordd's own output goes elsewhere: the full disk must not eat it.
        self.log_dir = tempfile.mkdtemp(prefix="coordd-fulldisk-log-")
        self.addCleanup(shutil.rmtree, self.log_dir, True)
        self.server.log_path = os.path.join(self.log_dir, "coordd.log")
        self.addCleanup(self.server.cleanup)
        self.server.start()

    def test_full_disk_makes_the_server_read_only_until_space_returns(self):
        server = self.server
        zk = connect(server)
        self.addCleanup(close, zk)
        states = []
        zk.add_listener(states.append)
        zk.create("/keep", b"kept")
        payload = b"x" * (200 * 1024)
        failed_at = None
        for i in range(200):
            try:
                zk.create("/fill-%d" % i, payload)
            except NotReadOnlyCallError:
                failed_at = i
                break
        self.assertIsNotNone(failed_at, "8 MiB cannot hold 200 znodes of 200 KiB")

        # The failed write was answered; the session goes on: pings and
        # reads pass for longer than a session timeout's two thirds.
        time.sleep(8.0)
        self.assertEqual(zk.state, KazooState.CONNECTED)
        self.assertNotIn(KazooState.SUSPENDED, states)
        self.assertEqual(zk.get("/keep")[0], b"kept")
        with self.assertRaises(NotReadOnlyCallError):
            zk.set("/keep", b"new")
        with self.assertRaises(NotReadOnlyCallError):
            zk.delete("/fill-0")

        # What operators see.
        self.assertEqual(four_letter(server.port, "isro"), "ro")
        self.assertIn("zk_server_state\tread-only", four_letter(server.port, "mntr"))
        status, body = http_get(server.http_port, "/readyz")
        self.assertEqual(status, 503)
        self.assertIn("read-only", body)
        self.assertIn("data.mdb", body)
        _, metrics = http_get(server.http_port, "/metrics")
        self.assertIn("\ncoord_read_only 1\n", metrics)
        failures = [l for l in metrics.splitlines()
                    if l.startswith("coord_storage_write_failures_total ")]
        self.assertEqual(len(failures), 1)
        self.assertGreater(int(failures[0].split()[1]), 0)
        errors = [l for l in server.log().splitlines() if "ERROR" in l and "read-only" in l]
        self.assertTrue(errors, server.log())
        self.assertIn(os.path.join(self.mnt, "data", "log", "data.mdb"), errors[0])
        self.assertTrue("No space left on device" in errors[0] or "below the reserve" in errors[0],
                        errors[0])
        # Rate-limited: one line per interval, not one per failed retry.
        self.assertLessEqual(len(errors), 2, "\n".join(errors))

        # A new client that cannot live with a read-only server is turned
        # away; one that can gets a read-only session.
        rw = KazooClient(hosts=server.hosts(), timeout=10.0)
        with self.assertRaises(Exception):
            rw.start(timeout=3.0)
        rw.stop()
        rw.close()
        ro = KazooClient(hosts=server.hosts(), timeout=10.0, read_only=True)
        ro_states = []
        ro.add_listener(ro_states.append)
        ro.start(timeout=WAIT_S)
        self.addCleanup(close, ro)
        self.assertEqual(ro.client_state, "CONNECTED_RO")
        self.assertEqual(ro.get("/keep")[0], b"kept")
        with self.assertRaises(NotReadOnlyCallError):
            ro.create("/ro-write")

        # Space returns: writes resume by themselves.
        os.remove(self.ballast)
        wait_until(lambda: four_letter(server.port, "isro") == "rw", what="isro to answer rw")
        zk.create("/after", b"ok")
        self.assertEqual(zk.get("/after")[0], b"ok")
        self.assertEqual(http_get(server.http_port, "/readyz")[0], 200)
        self.assertIn("writable again", server.log())
        # The failed write never happened.
        self.assertIsNone(zk.exists("/fill-%d" % failed_at))


def mapped_log_bytes(pid, log_file):
    """What of the log file is resident in the process's map (smaps Rss)."""
    kb = 0
    inside = False
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            head = line.split(None, 5)
            if head and "-" in head[0] and len(head) >= 5 and not head[0].endswith(":"):
                inside = len(head) == 6 and os.path.realpath(head[5].strip()) == log_file
            elif inside and line.startswith("Rss:"):
                kb += int(line.split()[1])
    return kb * 1024


class LogMapAtRest(unittest.TestCase):
    """Writes bring pages of the log into the server's map; once they stop,
    the server lets go of them."""

    # Writes reach LMDB when the journal is checkpointed, every 512 KiB of
    # records: 6,000 of 1,000 bytes make a dozen.
    WRITES = 6000
    IN_FLIGHT = 32
    WHILE_WRITING_BYTES_MIN = 256 * 1024
    AT_REST_BYTES_MAX = 64 * 1024

    def setUp(self):
        self.server = Coordd()
        self.addCleanup(self.server.cleanup)
        self.server.start()
        self.log_file = os.path.realpath(
            os.path.join(self.server.data_dir, "data", "log", "data.mdb"))

    def test_the_map_lets_go_once_writes_stop(self):
        zk = connect(self.server)
        self.addCleanup(close, zk)
        pid = self.server.proc.pid
        most = 0
        pending = []
        for i in range(self.WRITES):
            pending.append(zk.create_async("/w%05d" % i, b"x" * 1000))
            if len(pending) >= self.IN_FLIGHT:
                for p in pending:
                    p.get(timeout=WAIT_S)
                pending = []
                most = max(most, mapped_log_bytes(pid, self.log_file))
        for p in pending:
            p.get(timeout=WAIT_S)
        self.assertGreater(most, self.WHILE_WRITING_BYTES_MIN,
                           "the writes kept no page of the log resident")
        try:
            wait_until(lambda: mapped_log_bytes(pid, self.log_file) <= self.AT_REST_BYTES_MAX,
                       what="the log's pages to be released")
        except AssertionError as e:
            raise AssertionError("%s (%d bytes still resident)"
                                 % (e, mapped_log_bytes(pid, self.log_file))) from None


if __name__ == "__main__":
    ctest_main.main()
