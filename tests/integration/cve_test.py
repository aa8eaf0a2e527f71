"""ZooKeeper's published vulnerabilities that apply to coordd, one test
class each, against real coordd processes (and ZooKeeper 3.8 where the
behaviour is ZooKeeper's to compare with):

- CVE-2024-51504: an identity claimed in X-Forwarded-For, X-Real-IP or
  Forwarded never replaces the caller's socket address, for znode ACLs or
  the admin API.
- CVE-2019-0201: getACL shows a digest ACL's password hash only to a caller
  with ADMIN on the node (others see "user:x"), on the ZooKeeper port and
  through REST; without READ or ADMIN it is NoAuth.
- CVE-2024-23944: a persistent (recursive) watch on a readable parent does
  not tell its owner about children it may not read.
- CVE-2018-8012: a process that does not know the cluster secret cannot
  join the quorum, even under a member's id and address: it is refused,
  logged, and learns nothing.
"""

import http.client
import json
import os
import re
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ctest_main  # noqa: E402
import zkwire as zw  # noqa: E402
from coordd_harness import ADMIN_AUTH, Coordd, CoorddCluster, basic_auth, http_json  # noqa: E402
from zookeeper_harness import ZooKeeper, available  # noqa: E402

ALICE = ("alice", "alice-pw")
WAIT_S = 30.0
ZK_MISSING = None if available() else "Java or the ZooKeeper 3.8 jars are missing"


def rest(port, method, path, body=None, auth=None, headers=None, source="127.0.0.1"):
    h = dict(headers or {})
    if auth is not None:
        h["Authorization"] = basic_auth(auth)
    if body is not None:
        h.setdefault("Content-Type",
                     "application/json" if method == "POST" else "application/octet-stream")
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20, source_address=(source, 0))
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)
    finally:
        c.close()


def connect(port, auth=None):
    c = zw.Conn(port)
    c.handshake(timeout_ms=30000)
    if auth is not None:
        _, f = c.call(zw.AUTH, zw.auth_body("digest", ("%s:%s" % auth).encode()), xid=-4)
        assert f.err == 0, f
    return c


def create(conn, path, data=b"", acl=zw.OPEN_ACL):
    _, f = conn.call(zw.CREATE, zw.create_body(path, data, acl=acl))
    assert f.err == 0, (path, f.err)


def get_acl(conn, path):
    """(error, sorted [(perms, scheme, id)])."""
    _, f = conn.call(zw.GET_ACL, zw.path_body(path))
    if f.err != 0:
        return f.err, None
    return 0, sorted(zw.Reader(f.body).acls())


# -- CVE-2024-51504 ---------------------------------------------------------
FORGED = ({"X-Forwarded-For": "127.0.0.2"}, {"X-Real-IP": "127.0.0.2"},
          {"Forwarded": "for=127.0.0.2"},
          {"X-Forwarded-For": "127.0.0.2", "X-Real-IP": "127.0.0.2",
           "X-Forwarded-Host": "127.0.0.2", "X-Client-IP": "127.0.0.2"})


class Cve_2024_51504(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Coordd().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_forwarding_headers_never_change_the_ip_identity(self):
        port = self.server.http_port
        zk = connect(self.server.port)
        self.addCleanup(zk.close)
        create(zk, "/only-127-0-0-2", b"locked", [(zw.ALL, "ip", "127.0.0.2")])
        for forged in FORGED:
            status, body = rest(port, "GET", "/v1/znodes/only-127-0-0-2", headers=forged)
            self.assertEqual((status, body["error"]), (403, "NoAuth"), forged)
            status, _ = rest(port, "PUT", "/v1/znodes/only-127-0-0-2", b"forged", headers=forged)
            self.assertEqual(status, 403, forged)
        # The address itself does pass: the refusals above are the headers'.
        status, body = rest(port, "GET", "/v1/znodes/only-127-0-0-2", source="127.0.0.2")
        self.assertEqual((status, body["data"]), (200, "locked"))
        # The other way round: a caller at 127.0.0.2 claiming 127.0.0.1.
        create(zk, "/only-127-0-0-1", b"", [(zw.ALL, "ip", "127.0.0.1")])
        status, _ = rest(port, "GET", "/v1/znodes/only-127-0-0-1", source="127.0.0.2",
                         headers={"X-Forwarded-For": "127.0.0.1", "X-Real-IP": "127.0.0.1"})
        self.assertEqual(status, 403)

    def test_forwarding_headers_never_unlock_the_admin_api(self):
        port = self.server.http_port
        me = http_json(port, "/v1/cluster")["node_id"]
        transfer = json.dumps({"id": me})
        root = connect(self.server.port, ADMIN_AUTH)
        self.addCleanup(root.close)
        # ADMIN on /zookeeper/config for the address 127.0.0.2 only.
        _, f = root.call(zw.SET_ACL, zw.set_acl_body(
            "/zookeeper/config", [(zw.READ, "world", "anyone"), (zw.ADMIN, "ip", "127.0.0.2")]))
        self.assertEqual(f.err, 0)
        self.addCleanup(lambda: root.call(zw.SET_ACL, zw.set_acl_body(
            "/zookeeper/config", [(zw.READ, "world", "anyone")])))
        for forged in FORGED:
            status, body = rest(port, "POST", "/v1/cluster/transfer-leader", transfer,
                                headers=forged)
            self.assertEqual((status, body["error"]), (401, "NoAuth"), forged)
        status, body = rest(port, "POST", "/v1/cluster/transfer-leader", transfer,
                            source="127.0.0.2")
        self.assertEqual(status, 200, body)


# -- CVE-2019-0201 ----------------------------------------------------------
def acl_scenario(port, prefix):
    """What an unauthenticated caller, alice and a stranger learn from
    getACL; the same list on any server that behaves alike."""
    owner = connect(port)
    anon = connect(port)
    alice = connect(port, ALICE)
    bob = connect(port, ("bob", "bob-pw"))
    try:
        alice_id = zw.digest_id(*ALICE)
        create(owner, prefix, b"", zw.OPEN_ACL)
        create(owner, prefix + "/world-read", b"", [(zw.READ, "world", "anyone"),
                                                   (zw.ALL, "digest", alice_id)])
        create(owner, prefix + "/alice-only", b"", [(zw.ALL, "digest", alice_id)])
        create(owner, prefix + "/alice-reads", b"", [(zw.READ, "digest", alice_id),
                                                    (zw.ALL, "ip", "10.9.9.9")])
        out = []
        for who, conn in (("anonymous", anon), ("alice", alice), ("bob", bob)):
            for node in ("/world-read", "/alice-only", "/alice-reads"):
                out.append((who, node) + get_acl(conn, prefix + node))
        return out
    finally:
        for c in (owner, anon, alice, bob):
            c.close()


class Cve_2019_0201(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Coordd().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_getacl_hides_the_hash_from_who_lacks_admin(self):
        seen = {(who, node): (err, acl) for who, node, err, acl in
                acl_scenario(self.server.port, "/cve-2019-0201")}
        alice_id = zw.digest_id(*ALICE)
        hidden = sorted([(zw.READ, "world", "anyone"), (zw.ALL, "digest", "alice:x")])
        self.assertEqual(seen[("anonymous", "/world-read")], (0, hidden))
        self.assertEqual(seen[("bob", "/world-read")], (0, hidden))
        self.assertEqual(seen[("alice", "/world-read")],
                         (0, sorted([(zw.READ, "world", "anyone"), (zw.ALL, "digest", alice_id)])))
        self.assertEqual(seen[("anonymous", "/alice-only")], (zw.NO_AUTH, None))
        self.assertEqual(seen[("alice", "/alice-only")][1], [(zw.ALL, "digest", alice_id)])
        # READ without ADMIN: alice sees the ACL, her own hash masked too.
        self.assertEqual(seen[("alice", "/alice-reads")],
                         (0, sorted([(zw.READ, "digest", "alice:x"), (zw.ALL, "ip", "10.9.9.9")])))
        for who, node in seen:
            if who != "alice" or node == "/alice-reads":
                self.assertNotIn(alice_id.split(":")[1], repr(seen[(who, node)]), (who, node))

    def test_rest_acl_hides_the_hash_too(self):
        port = self.server.http_port
        acl_scenario(self.server.port, "/cve-2019-0201-rest")
        alice_id = zw.digest_id(*ALICE)
        status, body = rest(port, "GET", "/v1/znodes/cve-2019-0201-rest/world-read?acl")
        self.assertEqual(status, 200, body)
        self.assertEqual(sorted((a["scheme"], a["id"]) for a in body["acl"]),
                         [("digest", "alice:x"), ("world", "anyone")])
        self.assertNotIn(alice_id.split(":")[1], json.dumps(body))
        status, body = rest(port, "GET", "/v1/znodes/cve-2019-0201-rest/alice-only?acl")
        self.assertEqual((status, body["error"]), (403, "NoAuth"))
        status, body = rest(port, "GET", "/v1/znodes/cve-2019-0201-rest/world-read?acl",
                            auth=ALICE)
        self.assertIn(alice_id, [a["id"] for a in body["acl"]])


# -- CVE-2024-23944 ---------------------------------------------------------
PERSISTENT, PERSISTENT_RECURSIVE = 0, 1


def watch_scenario(port, prefix):
    """The events a watcher of `prefix` (persistent recursive, persistent,
    and a child watch) receives while alice changes children only she may
    read, and one everyone may."""
    watcher = connect(port)
    alice = connect(port, ALICE)
    try:
        secret = [(zw.ALL, "digest", zw.digest_id(*ALICE))]
        create(alice, prefix)
        create(alice, prefix + "/sub")
        _, f = watcher.call(zw.ADD_WATCH, zw.path_int_body(prefix, PERSISTENT_RECURSIVE))
        assert f.err == 0, f
        _, f = watcher.call(zw.ADD_WATCH, zw.path_int_body(prefix + "/sub", PERSISTENT))
        assert f.err == 0, f
        _, f = watcher.call(zw.GET_CHILDREN, zw.path_watch_body(prefix + "/sub", True))
        assert f.err == 0, f
        create(alice, prefix + "/hidden-user-alice", b"x", secret)
        alice.call(zw.SET_DATA, zw.set_data_body(prefix + "/hidden-user-alice", b"y"))
        create(alice, prefix + "/hidden-user-alice/deeper-secret", b"", secret)
        alice.call(zw.DELETE, zw.path_version_body(prefix + "/hidden-user-alice/deeper-secret"))
        alice.call(zw.DELETE, zw.path_version_body(prefix + "/hidden-user-alice"))
        create(alice, prefix + "/sub/hidden-kid", b"", secret)
        create(alice, prefix + "/visible", b"", zw.OPEN_ACL)
        # Events sent before this reply are all there are.
        events, f = watcher.call(zw.EXISTS, zw.path_watch_body(prefix))
        assert f.err == 0, f
        return [e.event()[0:1] + (e.event()[2][len(prefix):],) for e in events]
    finally:
        watcher.close()
        alice.close()


class Cve_2024_23944(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Coordd().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def test_watches_do_not_reveal_unreadable_children(self):
        events = watch_scenario(self.server.port, "/cve-2024-23944")
        self.assertNotIn("hidden", repr(events))
        self.assertNotIn("secret", repr(events))
        # What may be read is still told: the visible child, and the child
        # change of /sub (a readable parent: getChildren would list it).
        self.assertIn((zw.NODE_CREATED, "/visible"), events)
        self.assertIn((zw.NODE_CHILDREN_CHANGED, "/sub"), events)


@unittest.skipIf(ZK_MISSING, ZK_MISSING)
class CveAgainstZooKeeper(unittest.TestCase):
    """The scenarios of CVE-2019-0201 and CVE-2024-23944 give the same
    answers and events on coordd and on ZooKeeper 3.8."""

    @classmethod
    def setUpClass(cls):
        cls.zookeeper = ZooKeeper()
        cls.coordd = Coordd()
        try:
            cls.zookeeper.launch()
            cls.coordd.start()
            cls.zookeeper.wait_ready()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.zookeeper.cleanup()
        cls.coordd.cleanup()

    def test_cve_2019_0201_getacl(self):
        self.assertEqual(acl_scenario(self.coordd.port, "/cve-2019-0201"),
                         acl_scenario(self.zookeeper.port, "/cve-2019-0201"))

    def test_cve_2024_23944_watches(self):
        self.assertEqual(watch_scenario(self.coordd.port, "/cve-2024-23944"),
                         watch_scenario(self.zookeeper.port, "/cve-2024-23944"))


# -- CVE-2018-8012 ----------------------------------------------------------
class Cve_2018_8012(unittest.TestCase):
    def test_a_process_without_the_secret_cannot_join_the_quorum(self):
        c = CoorddCluster(3)
        self.addCleanup(c.cleanup)
        c.start()
        leader = c.wait_leader(WAIT_S)
        follower = 3 if leader != 3 else 2
        status, _ = rest(c.http_ports[leader], "PUT", "/v1/znodes/before-impostor", b"data")
        self.assertEqual(status, 201)
        c.wait("every server has the write", lambda: c.zxids_agree(c.ids),
               WAIT_S)
        # An impostor takes a follower's place: its id, its addresses, the
        # cluster id and the member list, but not the secret.
        c.kill(follower)
        c.secret_file_of[follower] = c.write_secret("guessed", "a-guess-at-the-cluster-secret")
        real_data = c.servers[follower].data_dir
        c.servers[follower] = c._make(follower)
        c.servers[follower].data_dir = real_data + "-impostor"
        c.servers[follower].log_path = os.path.join(c.servers[follower].data_dir, "coordd.log")
        c.restart(follower)
        others = [s for s in c.ids if s != follower]
        refused = r"refusing peer connection .*\(node %d\): wrong cluster secret" % follower
        c.wait("the members refuse the impostor and say so",
               lambda: any(re.search(refused, c.log(s)) for s in others), WAIT_S)
        refusals = sum(
            int(m.group(1)) for s in others for m in re.finditer(
                r"^coord_peer_handshakes_refused_total (\d+)$",
                http_metrics(c.http_ports[s]), re.M))
        self.assertGreater(refusals, 0)
        # The quorum goes on without it; it learns nothing.
        status, _ = rest(c.http_ports[others[0]], "PUT", "/v1/znodes/after-impostor", b"more")
        self.assertIn(status, (200, 201))
        c.wait("the impostor is read-only without a leader",
               lambda: c.mode(follower) == "read-only", WAIT_S)
        self.assertEqual(c.status(follower)["leader_id"], 0)
        for path in ("/v1/znodes/before-impostor", "/v1/znodes/after-impostor"):
            self.assertEqual(rest(c.http_ports[follower], "GET", path)[0], 404, path)
        self.assertNotRegex(c.log(follower), r"link to node \d at .* up")


def http_metrics(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request("GET", "/metrics")
        return c.getresponse().read().decode()
    finally:
        c.close()


if __name__ == "__main__":
    ctest_main.main()
