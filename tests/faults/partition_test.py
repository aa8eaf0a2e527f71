"""Partitions and slow links between real coordd processes, made by the
proxies of peer_proxy.py: the cluster keeps its guarantees while the
network between its servers fails.

- IsolateLeader: under write load, the leader is cut off from both
  followers. The two elect a new leader and go on writing; the old leader
  turns read-only once it has heard from no quorum, and catches up after
  the partition heals. Nothing acknowledged is lost, and the servers hold
  the same tree.
- MinorityFollower: one follower is cut off; the leader and the other
  follower go on without an election; the cut follower catches up.
- SlowLinks: every peer link is delayed by 20 to 40 ms; writes go on and
  nothing is lost.
- ClientsMove: the clients, which reach the servers through client
  proxies, are cut off from all servers but one follower: their sessions
  move there, with their ephemerals, and writes go on.

Only ClientsMove sends its clients through proxies; the others' clients
talk to the servers directly. Each class is a ctest entry of its own
(tests/faults/CMakeLists.txt).
"""

import os
import re
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import ctest_main  # noqa: E402
from cluster_test import ClusterTest, WAIT_S  # noqa: E402
from coordd_harness import four_letter  # noqa: E402
from proxied_cluster import ProxiedCluster  # noqa: E402


class PartitionTest(ClusterTest):
    def make_cluster(self, **kw):
        c = ProxiedCluster(self.SIZE, extra_args=self.EXTRA_ARGS, **kw)
        self.addCleanup(c.cleanup)
        self.addCleanup(self.dump_logs_on_failure, c)
        return c

    def caught_up(self, what):
        c = self.cluster
        c.wait(what, lambda: len({c.zxid(sid) for sid in c.ids}) == 1, WAIT_S)


class IsolateLeader(PartitionTest):
    def test_the_majority_goes_on_and_the_old_leader_catches_up(self):
        c = self.cluster
        old = c.leader()
        others = [sid for sid in c.ids if sid != old]
        writers = self.writers(2, hosts=c.hosts(others))
        self.wait_acks(writers, 20)
        c.proxies.isolate(old, c.ids)
        cut_at = time.monotonic()
        new = c.wait_leader(WAIT_S, other_than=old, among=others)
        self.assertIn(new, others)
        self.wait_acks(writers, 20, after=time.monotonic())
        print("new leader %d after %.3f s" % (new, time.monotonic() - cut_at))
        # Cut off from any quorum, the old leader stops taking writes.
        c.wait("server %d read-only" % old, lambda: c.mode(old) == "read-only", WAIT_S)
        c.proxies.heal()
        for w in writers:
            w.finish()
        self.caught_up("server %d catches up after the heal" % old)
        self.assertEqual(c.wait_leader(WAIT_S), new)
        self.assert_nothing_lost(writers)


class MinorityFollower(PartitionTest):
    def test_a_cut_follower_costs_no_election(self):
        c = self.cluster
        leader = c.leader()
        cut = next(sid for sid in c.ids if sid != leader)
        writers = self.writers(2, hosts=c.hosts([leader]))
        self.wait_acks(writers, 20)
        term = c.term()
        c.proxies.isolate(cut, c.ids)
        self.wait_acks(writers, 50, after=time.monotonic())
        c.wait("server %d read-only" % cut, lambda: c.mode(cut) == "read-only", WAIT_S)
        c.proxies.heal()
        for w in writers:
            w.finish()
        self.caught_up("server %d catches up after the heal" % cut)
        # Pre-vote: the server that was cut off does not unseat the leader.
        self.assertEqual(c.wait_leader(WAIT_S), leader)
        self.assertEqual(c.term(), term)
        self.assert_nothing_lost(writers)


class SlowLinks(PartitionTest):
    def test_writes_go_on_over_slow_links(self):
        c = self.cluster
        c.proxies.delay(20, 20)
        writers = self.writers(2)
        self.wait_acks(writers, 30)
        c.proxies.delay(0)
        for w in writers:
            w.finish()
        self.caught_up("the servers agree once the links are fast again")
        self.assert_nothing_lost(writers)


def connections(cluster, sid):
    m = re.search(r"^zk_num_alive_connections\t(\d+)$",
                  four_letter(cluster.client_ports[sid], "mntr"), re.M)
    return int(m.group(1)) if m else None


class ClientsMove(PartitionTest):
    def test_sessions_move_to_the_server_their_clients_still_reach(self):
        c = self.cluster
        writers = self.writers(3, hosts=c.proxied_hosts())
        self.wait_acks(writers, 10)
        # Every client is cut off from every server but one follower: the
        # sessions move there, with their ephemerals, and writes go on.
        keep = next(sid for sid in c.ids if sid != c.leader())
        c.clients.set_cut([sid for sid in c.ids if sid != keep])
        self.wait_acks(writers, 20, after=time.monotonic())
        for sid in c.ids:
            # mntr counts the connection that asks it.
            want = (len(writers) if sid == keep else 0) + 1
            c.wait("server %d holds %d client connections" % (sid, want - 1),
                   lambda: connections(c, sid) == want, WAIT_S)
        c.clients.set_cut([])
        for w in writers:
            w.finish()
        self.assert_ephemerals_survive(writers)
        self.assert_nothing_lost(writers)


if __name__ == "__main__":
    ctest_main.main()
