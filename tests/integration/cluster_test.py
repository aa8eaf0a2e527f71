"""A cluster of real coordd processes on 127.0.0.1 under failures: a leader
killed under write load, a follower paused, a minority and a majority
stopped, every server killed at once, a server whose data directory was
removed, a server with the wrong secret, ZooKeeper's own clients through a
leader kill, a leader stopped with SIGTERM.

What every scenario checks in the end: no acknowledged write is lost. A
create or set that returned without an error is readable afterwards on
every server, after a sync through that server. Writes that failed (a
connection lost with the write in flight) may or may not have applied and
are not counted either way.

Membership changes at run time: servers added with --join through the
admin API and through ZooKeeper's reconfig, servers removed the same two
ways, with the refusals reconfig answers.

Each test class is a ctest entry of its own, so the scenarios run in
parallel (tests/integration/CMakeLists.txt).
"""

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
import unittest
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ctest_main  # noqa: E402
import zkwire as zw  # noqa: E402
from coordd_harness import (ADMIN_AUTH, ADMIN_DIGEST, ADMIN_PASSWORD, CoorddCluster,  # noqa: E402
                            four_letter, http_call, http_json)

try:
    from kazoo.client import KazooClient, KazooState
    from kazoo.exceptions import (BadVersionError, ConnectionLoss, NewConfigNoQuorumError,
                                  NoAuthError, NodeExistsError, NotReadOnlyCallError)
    from kazoo.handlers.threading import KazooTimeoutError
    from kazoo.protocol.states import KeeperState
    KAZOO_MISSING = ""
except ImportError as e:  # every test here drives kazoo
    KAZOO_MISSING = "kazoo is missing (Debian python3-kazoo): %s" % e

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
ZKCLI_MISSING = ("" if os.access(ZKCLI, os.X_OK) and shutil.which("java") else
                 "zkCli.sh or java is missing (Debian zookeeper)")
CLI_MT = shutil.which("cli_mt") or "/usr/lib/zookeeper/bin/cli_mt"
CLI_MT_MISSING = ("" if os.access(CLI_MT, os.X_OK) else
                  "cli_mt, the ZooKeeper C client's shell, is missing (Debian zookeeper-bin)")

# The servers' default: a follower that hears no leader for 150 ms (up to
# twice that, at random) campaigns.
ELECTION_TIMEOUT_MS = 150
OP_TIMEOUT_S = 5.0  # one client call
WAIT_S = 20.0  # one condition awaited (a leader, a catch-up, writes back)
REJOIN_S = 10.0  # a follower back from a restart reaches the others (about 1 s here)
# Elections one leader kill may cost: one, or a few after split votes.
ELECTIONS_PER_KILL_MAX = 3


def kazoo(hosts, read_only=False, session_timeout_s=10.0, **kw):
    """A started kazoo client. Reconnection is retried quickly and without
    end (the test bounds every wait itself); a call is never retried for
    us, so a failure is seen as it happened."""
    k = KazooClient(hosts=hosts, timeout=session_timeout_s, read_only=read_only,
                    connection_retry=dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5),
                    command_retry=dict(max_tries=0), **kw)
    k.start(timeout=WAIT_S)
    return k


def close(k):
    try:
        k.stop()
        k.close()
    except Exception:  # noqa: BLE001 - a client already broken
        pass


def bounded(async_result, timeout_s=OP_TIMEOUT_S):
    return async_result.get(timeout=timeout_s)


class Writer(threading.Thread):
    """One kazoo session writing without pause: creates of its own paths
    and, every few creates, a set of its own counter node. Records what was
    acknowledged and when; an ephemeral node of its session stands for the
    session's survival."""

    def __init__(self, hosts, name, root="/load"):
        super().__init__(daemon=True)
        self.name_ = name
        self.root = root
        self.k = kazoo(hosts)
        self.states = []
        self.k.add_listener(self.states.append)
        self.acked = []  # paths created
        self.ack_times = []
        self.sent_times = {}  # path -> when sent
        self.counter_acked = 0  # highest counter value acknowledged
        self.failures = []  # (time, exception class name)
        self.stop = threading.Event()
        self.ephemeral = "/eph/%s" % name
        self.counter = "%s-counter/%s" % (root, name)
        for path in (root, root + "-counter", "/eph"):
            bounded(self.k.ensure_path_async(path))
        bounded(self.k.create_async(self.ephemeral, b"", ephemeral=True))
        bounded(self.k.create_async(self.counter, b"0"))

    def run(self):
        n = 0
        while not self.stop.is_set():
            n += 1
            try:
                if n % 5 == 0:
                    bounded(self.k.set_async(self.counter, str(n).encode()))
                    self.counter_acked = n
                else:
                    path = "%s/%s-%06d" % (self.root, self.name_, n)
                    self.sent_times[path] = time.monotonic()
                    bounded(self.k.create_async(path, b"v"))
                    self.acked.append(path)
                self.ack_times.append(time.monotonic())
            except Exception as e:  # noqa: BLE001 - the outcome is unknown, recorded
                self.failures.append((time.monotonic(), type(e).__name__))
                # A write failed with the connection: wait a little for it
                # to come back rather than spin.
                time.sleep(0.02)

    def acks_after(self, t):
        return sum(1 for a in self.ack_times if a > t)

    def finish(self):
        self.stop.set()
        self.join(OP_TIMEOUT_S + 5)

    def lost_session(self):
        return KazooState.LOST in self.states


def start_writers(hosts, count, prefix="w", root="/load"):
    writers = []
    try:
        for i in range(count):
            writers.append(Writer(hosts, "%s%d" % (prefix, i), root))
    except Exception:
        for w in writers:
            close(w.k)
        raise
    for w in writers:
        w.start()
    return writers


class ClusterTest(unittest.TestCase):
    SIZE = 3
    EXTRA_ARGS = ()

    def setUp(self):
        if KAZOO_MISSING:
            self.skipTest(KAZOO_MISSING)
        self.cluster = self.make_cluster()
        self.cluster.start()
        self.cluster.wait_leader(WAIT_S)

    def make_cluster(self, **kw):
        c = CoorddCluster(self.SIZE, extra_args=self.EXTRA_ARGS, **kw)
        self.addCleanup(c.cleanup)
        self.addCleanup(self.dump_logs_on_failure, c)  # cleanups run last first
        return c

    def dump_logs_on_failure(self, cluster):
        # unittest keeps the outcome on the instance; print the servers'
        # logs when the test failed so that ctest's output explains it.
        result = getattr(getattr(self, "_outcome", None), "result", None)
        if result is not None and any(t is self for t, _ in result.errors + result.failures):
            for sid in cluster.ids:
                if sid in cluster.servers:
                    print("==== server %d log (tail) ====\n%s" % (sid, cluster.log(sid)[-6000:]))

    def client(self, hosts=None, **kw):
        k = kazoo(hosts or self.cluster.hosts(), **kw)
        self.addCleanup(close, k)
        return k

    def writers(self, count, hosts=None, **kw):
        ws = start_writers(hosts or self.cluster.hosts(), count, **kw)
        for w in ws:
            self.addCleanup(close, w.k)
            self.addCleanup(w.finish)
        return ws

    def wait_acks(self, writers, count, after=0.0, timeout_s=WAIT_S):
        self.cluster.wait("every writer has %d acknowledged writes" % count,
                          lambda: all(w.acks_after(after) >= count for w in writers), timeout_s)

    def assert_nothing_lost(self, writers, ids=None):
        """Every create and set the writers had acknowledged is there on
        every server given (all by default), read after a sync through
        that server; and every server holds the same children. A write a
        writer gave up on may still be in its client's queue and land
        between two servers' reads: the servers are read again, a bounded
        number of times, until they agree."""
        for attempt in range(20):
            seen = {}
            for sid in ids or self.cluster.ids:
                seen[sid] = self.read_children_checked(sid, writers)
            first = next(iter(seen.values()))
            if all(children == first for children in seen.values()):
                return
            time.sleep(0.25)
        for sid, children in seen.items():
            self.assertEqual(children, first, "servers %d and %d differ" % (sid, next(iter(seen))))

    def read_children_checked(self, sid, writers):
        """The writers' children on server sid after a sync through it,
        having checked that every acknowledged write is there."""
        k = self.client(self.cluster.hosts([sid]))
        try:
            roots = sorted({w.root for w in writers})
            bounded(k.sync_async("/"))
            children = {}
            for root in roots:
                children[root] = set(bounded(k.get_children_async(root), 10.0))
            for w in writers:
                have = children[w.root]
                missing = [p for p in w.acked if p.rsplit("/", 1)[1] not in have]
                self.assertEqual(missing[:5], [], "server %d lost %d acknowledged creates of %s" %
                                 (sid, len(missing), w.name_))
                value, _ = bounded(k.get_async(w.counter))
                self.assertGreaterEqual(int(value), w.counter_acked,
                                        "server %d lost an acknowledged set of %s" % (sid, w.counter))
            return children
        finally:
            close(k)

    def assert_ephemerals_survive(self, writers):
        """The writers' sessions reconnected without expiring, and their
        ephemeral nodes are on every server."""
        for w in writers:
            self.assertFalse(w.lost_session(), "%s lost its session: %s" % (w.name_, w.states))
        for sid in self.cluster.live():
            k = self.client(self.cluster.hosts([sid]))
            bounded(k.sync_async("/"))
            for w in writers:
                self.assertIsNotNone(bounded(k.exists_async(w.ephemeral)),
                                     "server %d lost %s" % (sid, w.ephemeral))
            close(k)

    def assert_no_election(self, seconds, what):
        """Neither the leader nor the term changes for `seconds`: no
        spurious election."""
        leader, term = self.cluster.leader(), self.cluster.term()
        self.assertIsNotNone(leader, "no leader " + what)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            time.sleep(0.1)
            self.assertEqual(self.cluster.term(), term, "an election " + what)
        self.assertEqual(self.cluster.leader(), leader, "the leader changed " + what)
        return leader, term


class LeaderKill(ClusterTest):
    """kill -9 of the leader under a steady write load from several
    clients that know every server."""

    def test_leader_kill_under_load(self):
        c = self.cluster
        _, term0 = self.assert_no_election(3.0, "while idle")
        writers = self.writers(4)
        self.wait_acks(writers, 30)
        self.assertEqual(c.term(), term0, "an election under load, before any failure")
        old = c.leader()
        killed_at = time.monotonic()
        c.kill(old)
        new = c.wait_leader(WAIT_S, other_than=old)
        took_over_s = time.monotonic() - killed_at
        # Writes resume on every client, whichever server it was on.
        self.wait_acks(writers, 30, after=killed_at)
        resumed_s = max(min(a for a in w.ack_times if a > killed_at) for w in writers) - killed_at
        # The killed server comes back and catches up.
        c.restart(old)
        self.wait_acks(writers, 10, after=time.monotonic())
        for w in writers:
            w.finish()
        elections = c.term() - term0
        print("new leader %d in %.3f s; every writer acknowledged again within %.3f s; %d "
              "election(s); %d writes acknowledged, %d failed" % (
                  new, took_over_s, resumed_s, elections, sum(len(w.ack_times) for w in writers),
                  sum(len(w.failures) for w in writers)))
        self.assertGreaterEqual(elections, 1)
        self.assertLessEqual(elections, ELECTIONS_PER_KILL_MAX)
        self.assert_nothing_lost(writers)
        self.assert_ephemerals_survive(writers)
        # The new leader counts both followers as synced.
        c.wait("mntr on the leader shows two synced followers",
               lambda: re.search(r"^zk_synced_followers\t2$",
                                 four_letter(c.port(c.leader()), "mntr"), re.M), WAIT_S)
        self.assert_no_election(3.0, "while idle after the kill")


class FollowerPause(ClusterTest):
    """SIGSTOP of a follower for many election timeouts, then SIGCONT."""

    def test_paused_follower_catches_up(self):
        c = self.cluster
        leader, term0 = c.leader(), c.term()
        paused = next(sid for sid in c.ids if sid != leader)
        others = [sid for sid in c.ids if sid != paused]
        writers = self.writers(3, hosts=c.hosts(others))
        self.wait_acks(writers, 20)
        c.sigstop(paused)
        stopped_at = time.monotonic()
        time.sleep(10 * ELECTION_TIMEOUT_MS / 1000.0)
        self.wait_acks(writers, 20, after=stopped_at)
        resumed_at = time.monotonic()
        # The cluster wrote all along: no client waited long for an answer.
        for w in writers:
            during = [t for t in w.ack_times if stopped_at <= t <= resumed_at]
            gaps = [b - a for a, b in zip([stopped_at] + during, during + [resumed_at])]
            self.assertLess(max(gaps), 2.0, "%s waited %.2f s while a follower was paused" %
                            (w.name_, max(gaps)))
            self.assertEqual(w.failures, [], "%s saw writes fail" % w.name_)
        c.sigcont(paused)
        self.wait_acks(writers, 20, after=time.monotonic())
        for w in writers:
            w.finish()
        # It catches up: after a sync through it, the same zxid as the others.
        k = self.client(c.hosts([paused]))
        bounded(k.sync_async("/"), WAIT_S)
        c.wait("the paused follower has the others' zxid",
               lambda: c.zxids_agree(c.ids), WAIT_S)
        self.assertEqual(c.mode(paused), "follower")
        print("%d elections while follower %d was paused and resumed" % (c.term() - term0, paused))
        self.assertEqual(c.leader(), leader, "the resumed follower disrupted the leader")
        self.assert_nothing_lost(writers)


class QuorumLoss(ClusterTest):
    """A minority stopped: writes go on. A majority stopped: writes fail
    with ConnectionLoss or NotReadOnly, read-only clients still read from
    the survivor. The majority back: writes resume and the read-only
    client is read-write again."""

    def test_minority_then_majority(self):
        c = self.cluster
        minority = (self.SIZE - 1) // 2
        survivor = next(sid for sid in c.ids if sid != c.leader())
        # Leader last, so that the cluster keeps a quorum until the end.
        doomed = [sid for sid in c.ids if sid not in (survivor, c.leader())] + [c.leader()]
        rw = self.client()
        ro = self.client(c.hosts([survivor]), read_only=True)
        bounded(rw.create_async("/q", b"before"))
        for sid in doomed[:minority]:
            c.kill(sid)
        c.wait_leader(WAIT_S)
        for i in range(20):
            bounded(rw.create_async("/q/minority-%d" % i, b""), WAIT_S)
        # The majority goes: the survivor turns read-only.
        writer = self.writers(1, hosts=c.hosts([survivor]))[0]
        self.wait_acks([writer], 5)
        for sid in doomed[minority:]:
            c.kill(sid)
        lost_at = time.monotonic()
        c.wait("the survivor says isro: ro",
               lambda: four_letter(c.port(survivor), "isro") == "ro", WAIT_S)
        c.wait("a write in flight fails with ConnectionLoss",
               lambda: any(t >= lost_at for t, _ in writer.failures), WAIT_S)
        failed_s = min(t for t, _ in writer.failures if t >= lost_at) - lost_at
        self.assertLess(failed_s, 5.0, "the write in flight hung")
        kinds = {kind for t, kind in writer.failures if t >= lost_at}
        self.assertLessEqual(kinds, {"ConnectionLoss", "NotReadOnlyCallError", "KazooTimeoutError"})
        self.assertIn("ConnectionLoss", kinds)
        writer.finish()
        # Nothing written after the quorum was gone was acknowledged.
        late = [p for p in writer.acked if writer.sent_times[p] > lost_at + 0.05]
        self.assertEqual(late, [], "writes acknowledged without a quorum")
        # The read-only client reads from the survivor; its writes are
        # refused with NotReadOnly.
        c.wait("the read-only client is connected read-only",
               lambda: ro.client_state == KeeperState.CONNECTED_RO, WAIT_S)
        self.assertEqual(bounded(ro.get_async("/q"))[0], b"before")
        self.assertEqual(len(bounded(ro.get_children_async("/q"))), 20)
        with self.assertRaises(NotReadOnlyCallError):
            bounded(ro.create_async("/q/read-only", b""))
        # A client that does not accept a read-only server gets no session.
        raw = zw.Conn(c.port(survivor))
        try:
            with self.assertRaises((zw.Closed, OSError)):
                raw.handshake(read_only=False)
                raw.call(zw.CREATE, zw.create_body("/q/raw", b""))
        finally:
            raw.close()
        print("majority of %d stopped: the first write failed after %.3f s (%s)" %
              (len(doomed) - minority, failed_s, sorted(kinds)))
        # The majority comes back: writes resume and the read-only client
        # is read-write again.
        for sid in doomed[minority:]:
            c.restart(sid)
        c.wait_leader(WAIT_S)
        c.wait("the survivor says isro: rw",
               lambda: four_letter(c.port(survivor), "isro") == "rw", WAIT_S)
        bounded(rw.create_async("/q/after", b""), WAIT_S)
        ro_hosts = self.client(c.hosts(), read_only=True)
        c.wait("the read-only client is read-write again",
               lambda: ro_hosts.client_state == KeeperState.CONNECTED, WAIT_S)
        bounded(ro_hosts.create_async("/q/after-ro", b""), WAIT_S)
        self.assert_nothing_lost([writer], ids=[sid for sid in c.ids if c.running(sid)])


class QuorumLossFive(QuorumLoss):
    """The same with five servers: two stopped, then a third."""
    SIZE = 5


class FullRestart(ClusterTest):
    """kill -9 of every server at once under write load, then all start
    again: everything acknowledged is there."""

    def test_kill_all_and_restart(self):
        c = self.cluster
        writers = self.writers(3)
        self.wait_acks(writers, 40)
        for sid in c.ids:
            c.kill(sid)
        for w in writers:
            w.stop.set()
        c.start_all()
        c.wait_leader(WAIT_S)
        for w in writers:
            w.finish()
        self.assertGreater(sum(len(w.acked) for w in writers), 100)
        self.assert_nothing_lost(writers)


class Rejoin(ClusterTest):
    """A follower that was away comes back and is brought up to date by the
    leader: from the log, or from a snapshot once the leader has dropped
    the entries it misses."""

    def rejoin(self, writes_before, writes_away, wipe):
        c = self.cluster
        writers = self.writers(2)
        self.wait_acks(writers, writes_before)
        away = next(sid for sid in c.ids if sid != c.leader())
        if wipe:
            c.wipe(away)
        else:
            c.kill(away)
        self.wait_acks(writers, writes_away, after=time.monotonic())
        for w in writers:
            w.finish()
        restarted_at = time.monotonic()
        term = c.term()
        c.restart(away)
        c.wait("server %d has the others' zxid" % away,
               lambda: c.zxids_agree(c.ids), REJOIN_S)
        print("server %d caught up in %.3f s (%d elections)" % (
            away, time.monotonic() - restarted_at, c.term() - term))
        # A server coming back must not unseat the leader to be served.
        self.assertEqual(c.term(), term, "elections while server %d rejoined" % away)
        self.assert_nothing_lost(writers)
        return away


class RejoinFromLog(Rejoin):
    def test_restarted_follower_replays_the_log(self):
        self.rejoin(50, 50, wipe=False)

    def test_wiped_follower_replays_the_log(self):
        self.rejoin(100, 0, wipe=True)


class RejoinFromSnapshot(Rejoin):
    EXTRA_ARGS = ("--snapshot-entries", "50")

    def check_snapshot_sent(self, away):
        c = self.cluster
        for sid in c.ids:
            if sid != away:
                self.assertRegex(c.log(sid), r"snapshot at zxid \d+ written")

    def test_lagging_follower_gets_a_snapshot(self):
        self.check_snapshot_sent(self.rejoin(20, 150, wipe=False))

    def test_wiped_follower_gets_a_snapshot(self):
        self.check_snapshot_sent(self.rejoin(150, 0, wipe=True))


class Secret(unittest.TestCase):
    """A server with the wrong cluster secret is refused by the others and
    never joins; the same server with the right secret does."""

    def test_wrong_secret_is_refused(self):
        c = CoorddCluster(3)
        self.addCleanup(c.cleanup)
        c.secret_file_of[3] = c.write_secret("wrong", "not-the-cluster-secret-at-all")
        c.start()
        leader = c.wait_leader(WAIT_S, among=(1, 2))
        self.assertIn(leader, (1, 2))
        # Each names server 3 by its address.
        refused = (r"refusing peer connection to 127\.0\.0\.1:%d \(node 3\): wrong cluster "
                   r"secret" % c.peer_ports[3])
        c.wait("servers 1 and 2 refuse server 3",
               lambda: all(re.search(refused, c.log(sid)) for sid in (1, 2)), WAIT_S)
        c.wait("server 3 is refused",
               lambda: re.search(r"peer from 127\.0\.0\.1:\d+ \(node [12]\) refused the "
                                 r"handshake: wrong cluster secret", c.log(3)), WAIT_S)
        # Without a leader it turns read-only, and never follows.
        c.wait("server 3 is read-only", lambda: c.mode(3) == "read-only", WAIT_S)
        self.assertEqual(c.status(3)["leader_id"], 0)
        self.assertNotRegex(c.log(3), r"link to node \d at .* up")
        # The right secret: it joins.
        c.kill(3)
        del c.secret_file_of[3]
        c.servers[3] = c._make(3)
        c.restart(3)
        c.wait("server 3 follows the leader",
               lambda: c.status(3)["leader_id"] == c.leader() and c.mode(3) == "follower",
               WAIT_S)
        c.wait("server 3 caught up", lambda: c.zxids_agree(c.ids), WAIT_S)
        self.assertRegex(c.log(3), r"link to node \d at .* up \(authenticated\)")


def connected_server(cluster):
    """The id of the one live server with a client session open on it."""
    for sid in cluster.live():
        if re.search(r"sid=0x", four_letter(cluster.port(sid), "cons")):
            return sid
    return None


class ClientFailover(ClusterTest):
    """ZooKeeper's clients, given the three servers, keep working when the
    leader is killed and when their own server is."""

    def kill_and_check(self, command_works, what):
        """Kills the leader, checks the client; restarts it; then kills the
        client's own server if it still runs, checks again."""
        c = self.cluster
        command_works("/%s-0" % what)
        old = c.leader()
        c.kill(old)
        c.wait_leader(WAIT_S, other_than=old)
        command_works("/%s-1" % what)
        c.restart(old)
        c.wait("server %d caught up" % old,
               lambda: c.zxids_agree(c.ids), WAIT_S)
        own = connected_server(c)
        self.assertIsNotNone(own)
        c.kill(own)
        c.wait_leader(WAIT_S)
        command_works("/%s-2" % what)
        self.assertIsNotNone(connected_server(c), "the client is on no live server")


class KazooFailover(ClientFailover):
    def test_kazoo(self):
        k = self.client()
        states = []
        k.add_listener(states.append)

        def works(path):
            for _ in range(50):
                try:
                    bounded(k.create_async(path, b""), WAIT_S)
                    return
                except NodeExistsError:
                    return
                except (ConnectionLoss, KazooTimeoutError):
                    time.sleep(0.1)
            self.fail("kazoo could not create " + path)

        self.kill_and_check(works, "kazoo")
        self.assertNotIn(KazooState.LOST, states)


class InteractiveClient(ClientFailover):
    """A client's shell driven through its standard input."""

    def interactive(self, argv, env=None):
        p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, env=env)

        def stop():
            p.kill()
            p.wait(10)
            p.stdin.close()
            p.stdout.close()
        self.addCleanup(stop)
        lines = []
        threading.Thread(target=lambda: [lines.append(l) for l in p.stdout], daemon=True).start()
        return p, lines

    def until(self, lines, pattern, start, timeout_s):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for line in lines[start:]:
                if re.search(pattern, line):
                    return True
            time.sleep(0.05)
        return False


@unittest.skipIf(ZKCLI_MISSING, ZKCLI_MISSING)
class ZkCliFailover(InteractiveClient):
    def test_zkcli(self):
        env = dict(os.environ, CLIENT_JVMFLAGS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        p, lines = self.interactive([ZKCLI, "-server", self.cluster.hosts()], env)
        self.assertTrue(self.until(lines, r"SyncConnected", 0, 60), "".join(lines))

        def works(path):
            for _ in range(20):
                start = len(lines)
                p.stdin.write("create %s x\n" % path)
                p.stdin.flush()
                if self.until(lines, r"Created %s$|Node already exists: %s$" % (path, path), start,
                              15):
                    return
            self.fail("zkCli.sh could not create %s:\n%s" % (path, "".join(lines[-40:])))

        self.kill_and_check(works, "zkcli")


@unittest.skipIf(CLI_MT_MISSING, CLI_MT_MISSING)
class CClientFailover(InteractiveClient):
    def test_c_client(self):
        p, lines = self.interactive([CLI_MT, self.cluster.hosts()])
        self.assertTrue(self.until(lines, r"CONNECTED_STATE", 0, 30), "".join(lines))

        def works(path):
            for _ in range(20):
                start = len(lines)
                p.stdin.write("create %s\n" % path)
                p.stdin.flush()
                if self.until(lines, r"\[%s\]: rc = (0|-110)$" % path, start, 15):
                    return
            self.fail("cli_mt could not create %s:\n%s" % (path, "".join(lines[-40:])))

        self.kill_and_check(works, "cli_mt")


class LeaderStop(ClusterTest):
    """SIGTERM on the leader: it hands leadership over before it exits, so
    writers wait far less than an election timeout. The election timeout is
    long here (2 s) so that a handover and an election cannot be confused."""

    ELECTION_S = 2.0

    def make_cluster(self, **kw):
        return super().make_cluster(election_timeout_ms=int(self.ELECTION_S * 1000))

    def test_sigterm_hands_over(self):
        c = self.cluster
        old = c.leader()
        followers = [sid for sid in c.ids if sid != old]
        writers = self.writers(2, hosts=c.hosts(followers))
        self.wait_acks(writers, 20)
        stopped_at = time.monotonic()
        c.sigterm(old)
        new = c.wait_leader(WAIT_S, other_than=old)
        self.wait_acks(writers, 20, after=stopped_at)
        code = c.servers[old].proc.wait(WAIT_S)
        for w in writers:
            w.finish()
        gap = max(max(b - a for a, b in zip(w.ack_times, w.ack_times[1:])
                      if b > stopped_at) for w in writers)
        print("leader %d handed over to %d; longest wait for a write: %.3f s (election "
              "timeout %.1f s)" % (old, new, gap, self.ELECTION_S))
        self.assertEqual(code, 0)
        # The stopping leader logs the handover (the server it names may
        # be 0: it had stepped down before it learnt its successor).
        self.assertRegex(c.log(old), r"leadership handed over to server \d+")
        self.assertNotRegex(c.log(old), r"leadership was not taken over in time")
        self.assertLess(gap, self.ELECTION_S / 2)
        self.assert_nothing_lost(writers, ids=followers)


# The harness's super user (every server knows it), which the admin API needs.
SUPER_PASSWORD = ADMIN_PASSWORD
SUPER_DIGEST = ADMIN_DIGEST
# How often a reconfig answered NewConfigNoQuorum is tried again: the leader
# counts a follower as synced only once it answered within the current
# election timeout, so a request that arrives just as that window starts
# over may find too few.
NO_QUORUM_TRIES = 5


def config_of(k):
    """(members {id: spec}, version) of /zookeeper/config as `k` reads it
    after a sync."""
    bounded(k.sync_async("/zookeeper/config"))
    data, _ = bounded(k.get_async("/zookeeper/config"))
    members, version = {}, None
    for line in data.decode().splitlines():
        key, _, value = line.partition("=")
        if key.startswith("server."):
            members[int(key[len("server."):])] = value
        elif key == "version":
            version = value
    return members, version


class MembershipTest(ClusterTest):
    """Three servers whose --peers name their client addresses, with a
    super user."""

    EXTRA_ARGS = ("--super-digest", SUPER_DIGEST)

    def make_cluster(self, **kw):
        return super().make_cluster(client_addresses=True, **kw)

    def super_client(self, hosts=None):
        return self.client(hosts, auth_data=[("digest", "super:" + SUPER_PASSWORD)])

    no_quorum_retries = 0

    def admin(self, sid, method, path, body=None):
        """The admin API of server sid, tried again on NewConfigNoQuorum."""
        for _ in range(NO_QUORUM_TRIES):
            status, reply = http_call(self.cluster.http_ports[sid], method, path, body,
                                      auth=ADMIN_AUTH)
            if reply.get("error") != "NewConfigNoQuorum":
                return status, reply
            self.no_quorum_retries += 1
            time.sleep(0.2)
        return status, reply

    def kazoo_reconfig(self, k, **kw):
        for attempt in range(NO_QUORUM_TRIES):
            try:
                return bounded(k.reconfig_async(new_members=None, from_config=-1, **kw), WAIT_S)
            except NewConfigNoQuorumError:
                if attempt == NO_QUORUM_TRIES - 1:
                    raise
                self.no_quorum_retries += 1
                time.sleep(0.2)

    def assert_config_everywhere(self, ids):
        """Every live server's /zookeeper/config names exactly `ids`, with
        the same version; returns it."""
        c = self.cluster
        seen = {}
        for sid in c.live():
            k = self.client(c.hosts([sid]))
            seen[sid] = config_of(k)
            close(k)
        versions = {v for _, v in seen.values()}
        self.assertEqual(len(versions), 1, "servers disagree on the version: %s" % seen)
        for sid, (members, _) in seen.items():
            self.assertEqual(sorted(members), sorted(ids), "server %d: %s" % (sid, members))
            for mid, spec in members.items():
                self.assertEqual(spec, "127.0.0.1:%d:0:participant;127.0.0.1:%d" % (
                    c.peer_ports[mid], c.client_ports[mid]))
        return versions.pop()

    def assert_cluster_view(self, ids):
        """GET /v1/cluster of every live server lists `ids` as
        participants with their addresses."""
        c = self.cluster
        for sid in c.live():
            st = http_json(c.http_ports[sid], "/v1/cluster")
            got = {m["id"]: m for m in st["members"]}
            self.assertEqual(sorted(got), sorted(ids), "server %d: %s" % (sid, st))
            for mid, m in got.items():
                self.assertEqual(m["member_role"], "participant")
                self.assertEqual(m["client_address"], "127.0.0.1:%d" % c.client_ports[mid])
                self.assertEqual(m["peer_address"], "127.0.0.1:%d" % c.peer_ports[mid])


class Membership(MembershipTest):
    """Three servers grow to five (one added through the admin API, one
    through kazoo's reconfig as the super user), lose two of the original
    three, and shrink back to three (one removed each way), writing all
    along; and the refusals."""

    def test_grow_to_five_and_shrink_to_three(self):
        c = self.cluster
        original = list(c.ids)
        members, version = config_of(self.client())
        self.assertEqual(sorted(members), original)
        self.assertEqual(members[1], "127.0.0.1:%d:0:participant;127.0.0.1:%d" % (
            c.peer_ports[1], c.client_ports[1]))
        writers = self.writers(2, hosts=c.hosts(original))
        self.wait_acks(writers, 10)

        # A fourth server, through the admin API of a follower.
        four = c.spawn_joiner()
        follower = next(sid for sid in original if sid != c.leader())
        status, reply = self.admin(follower, "POST", "/v1/cluster/members", c.member_body(four))
        self.assertEqual(status, 200, reply)
        self.assertEqual([m["id"] for m in reply["members"]], original + [four])
        self.assertEqual(reply["members"][-1], json.loads(c.member_body(four)))
        added_at = c.zxid(c.leader())
        self.assertIsNotNone(added_at, "the leader answers srvr with its zxid")
        c.wait("server %d caught up" % four, lambda: c.zxid_at_least(four, added_at), WAIT_S)
        self.assertEqual(c.mode(four), "follower")

        # A fifth, through kazoo's reconfig as the super user, on server 4.
        five = c.spawn_joiner()
        admin = self.super_client(c.hosts([four]))
        data, stat = self.kazoo_reconfig(admin, joining=c.member_line(five), leaving=None)
        lines = data.decode().splitlines()
        self.assertIn(c.member_line(five), lines)
        self.assertEqual(lines[-1], "version=%x" % stat.mzxid)
        c.wait("server %d follows" % five, lambda: c.mode(five) == "follower", WAIT_S)
        new_version = self.assert_config_everywhere(original + [four, five])
        self.assertGreater(int(new_version, 16), int(version, 16))
        self.assert_cluster_view(original + [four, five])

        # Writes go on, from clients of all five; then two of the original
        # three die, the leader among them when it is one of them.
        writers += self.writers(2, hosts=c.hosts(), prefix="v")
        self.wait_acks(writers, 10, after=time.monotonic())
        leader = c.leader()
        doomed = ([leader] if leader in original else []) + [
            sid for sid in original if sid != leader]
        doomed = doomed[:2]
        killed_at = time.monotonic()
        for sid in doomed:
            c.kill(sid)
        c.wait_leader(WAIT_S)
        self.wait_acks(writers, 10, after=killed_at)

        # The dead are removed: one through the admin API, one through
        # kazoo's reconfig.
        alive = [sid for sid in c.ids if sid not in doomed]
        status, reply = self.admin(alive[0], "DELETE", "/v1/cluster/members/%d" % doomed[0])
        self.assertEqual(status, 200, reply)
        self.assertNotIn(doomed[0], [m["id"] for m in reply["members"]])
        c.retire(doomed[0])
        admin2 = self.super_client(c.hosts(alive))
        data, _ = self.kazoo_reconfig(admin2, joining=None, leaving=str(doomed[1]))
        self.assertNotIn("server.%d=" % doomed[1], data.decode())
        c.retire(doomed[1])
        self.assertEqual(sorted(c.ids), sorted(alive))
        self.assert_config_everywhere(alive)
        self.assert_cluster_view(alive)
        self.wait_acks(writers, 10, after=time.monotonic())
        for w in writers:
            w.finish()
        c.wait("every server has the same zxid",
               lambda: c.zxids_agree(c.ids), WAIT_S)
        self.assert_nothing_lost(writers)
        print("4 reconfigs; %d more tries after NewConfigNoQuorum; %d writes acknowledged, %d "
              "failed" % (self.no_quorum_retries, sum(len(w.ack_times) for w in writers),
                          sum(len(w.failures) for w in writers)))
        # The survivors dropped their links to the removed servers.
        for sid in alive:
            metrics = urllib.request.urlopen(
                "http://127.0.0.1:%d/metrics" % c.http_ports[sid], timeout=5).read().decode()
            for gone in doomed:
                self.assertNotIn('coord_peer_connected{peer="%d"}' % gone, metrics)

    def test_an_observer_joins_and_is_promoted(self):
        c = self.cluster
        four = c.spawn_joiner()
        status, reply = self.admin(1, "POST", "/v1/cluster/members",
                                   c.member_body(four, role="observer"))
        self.assertEqual(status, 200, reply)
        self.assertEqual(reply["members"][-1]["role"], "observer")
        c.wait("server %d observes" % four, lambda: c.mode(four) == "observer", WAIT_S)
        for sid in c.live():
            (m,) = [m for m in http_json(c.http_ports[sid], "/v1/cluster")["members"]
                    if m["id"] == four]
            self.assertEqual((m["member_role"], m["voter"]), ("observer", False), sid)
        # It serves clients; the quorum is still two of the three.
        k = self.client(c.hosts([four]))
        bounded(k.create_async("/through-the-observer", b""))
        members, _ = config_of(k)
        self.assertTrue(members[four].endswith(":0:observer;127.0.0.1:%d" % c.client_ports[four]))
        # The same member as a participant: promoted.
        status, reply = self.admin(2, "POST", "/v1/cluster/members", c.member_body(four))
        self.assertEqual(status, 200, reply)
        c.wait("server %d follows" % four, lambda: c.mode(four) == "follower", WAIT_S)
        self.assert_config_everywhere(c.ids)
        self.assert_cluster_view(c.ids)

    def test_refusals(self):
        c = self.cluster
        four = c.spawn_joiner()
        # Without the super user: NoAuth (world may only read
        # /zookeeper/config), and nothing changes.
        plain = self.client()
        with self.assertRaises(NoAuthError):
            bounded(plain.reconfig_async(joining=c.member_line(four), leaving=None,
                                         new_members=None, from_config=-1))
        _, version = config_of(plain)
        # A stale from_config: BadVersion.
        admin = self.super_client()
        with self.assertRaises(BadVersionError):
            bounded(admin.reconfig_async(joining=c.member_line(four), leaving=None,
                                         new_members=None, from_config=int(version, 16) - 1))
        members, version_after = config_of(plain)
        self.assertEqual((sorted(members), version_after), (c.ids[:3], version))
        # The admin API checks what it is given; the last body passes those
        # checks and is refused by the reconfig itself (a joiner must name
        # its client address).
        for body, why in (('{"id": 4}', "no peer address"), ("[1]", "no object"),
                          ('{"id": 0, "peer_address": "127.0.0.1:1"}', "id 0"),
                          (json.dumps({"id": four, "peer_address": "127.0.0.1:%d" %
                                       c.peer_ports[four]}), "no client address")):
            status, reply = http_call(c.http_ports[1], "POST", "/v1/cluster/members", body,
                                      auth=ADMIN_AUTH)
            self.assertEqual((status, reply["error"]), (400, "BadArguments"), why)
        status, reply = http_call(c.http_ports[1], "DELETE", "/v1/cluster/members/9",
                                  auth=ADMIN_AUTH)
        self.assertEqual(status, 404, reply)
        # Without credentials, or with a user who has no ADMIN on
        # /zookeeper/config: 401 and 403, before the body is even read.
        good = c.member_body(four)
        status, reply = http_call(c.http_ports[1], "POST", "/v1/cluster/members", good)
        self.assertEqual((status, reply["error"]), (401, "NoAuth"), reply)
        status, reply = http_call(c.http_ports[1], "POST", "/v1/cluster/members", good,
                                  auth=("someone", "pw"))
        self.assertEqual((status, reply["error"]), (403, "NoAuth"), reply)
        self.assertEqual(config_of(plain), (members, version))


class StaleRestart(MembershipTest):
    """A server restarts on the membership it had when it went down, which
    lacks a server removed and added back meanwhile; that server leads.
    The two have never linked under the current membership, and only the
    leader can tell the restarted one about it: it must still catch up,
    whether the server it does not know has the lower id (it dials the
    restarted one, which has to accept a node it does not list) or the
    higher (it has to dial the restarted one itself)."""

    SIZE = 5

    def catches_up_with_an_unknown_leader(self, stale, readded):
        c = self.cluster
        other = next(sid for sid in c.ids if sid not in (stale, readded))
        writers = self.writers(1, hosts=c.hosts([other]))
        self.wait_acks(writers, 5)
        # Removed while the stale server is up, so that it learns of it.
        status, reply = self.admin(other, "DELETE", "/v1/cluster/members/%d" % readded)
        self.assertEqual(status, 200, reply)
        c.kill(readded)
        self.assert_config_everywhere([sid for sid in c.ids if sid != readded])
        c.kill(stale)
        # Back, empty, with --join; added; made the leader.
        c.wipe(readded)
        c.joined.add(readded)
        c.servers[readded] = c._make(readded)
        c.restart(readded)
        status, reply = self.admin(other, "POST", "/v1/cluster/members", c.member_body(readded))
        self.assertEqual(status, 200, reply)
        c.wait("server %d follows" % readded, lambda: c.mode(readded) == "follower", WAIT_S)
        leader = c.leader()
        status, reply = self.admin(leader, "POST", "/v1/cluster/transfer-leader",
                                   json.dumps({"id": readded}))
        self.assertIn(status, (200, 202), reply)
        c.wait("server %d leads" % readded, lambda: c.leader() == readded, WAIT_S)
        self.wait_acks(writers, 5, after=time.monotonic())

        c.restart(stale)
        target = c.zxid(readded)
        self.assertIsNotNone(target, "the leader answers srvr with its zxid")
        c.wait("server %d caught up with leader %d" % (stale, readded),
               lambda: c.zxid_at_least(stale, target), WAIT_S)
        self.assertEqual(c.leader(), readded)
        self.assert_config_everywhere(c.ids)
        self.assert_cluster_view(c.ids)
        for w in writers:
            w.finish()
        self.assert_nothing_lost(writers)

    def test_the_unknown_leader_has_the_lower_id(self):
        self.catches_up_with_an_unknown_leader(stale=5, readded=1)

    def test_the_unknown_leader_has_the_higher_id(self):
        self.catches_up_with_an_unknown_leader(stale=1, readded=5)


@unittest.skipIf(ZKCLI_MISSING, ZKCLI_MISSING)
class ZkCliConfig(MembershipTest):
    def test_zkcli_config(self):
        c = self.cluster
        env = dict(os.environ, CLIENT_JVMFLAGS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
        p = subprocess.run([ZKCLI, "-server", c.hosts(), "config"], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, text=True, timeout=120, env=env)
        lines = [l for l in p.stdout.splitlines() if not l.startswith("SLF4J")]
        members, version = config_of(self.client())
        for sid in c.ids:
            self.assertIn("server.%d=%s" % (sid, members[sid]), lines, "\n".join(lines))
        self.assertIn("version=%s" % version, lines)


if __name__ == "__main__":
    ctest_main.main()
