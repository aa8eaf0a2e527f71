"""coordd driven by kazoo, a ZooKeeper client nobody here wrote."""

import json
import os
import urllib.error
import urllib.request
import threading
import time
import unittest

import ctest_main
from coordd_harness import ADMIN_AUTH, Coordd, basic_auth, four_letter

try:
    from kazoo.client import KazooClient
    from kazoo.exceptions import (BadVersionError, NoAuthError, NodeExistsError, NoNodeError,
                                  NotEmptyError, RolledBackError)
    from kazoo.security import make_digest_acl
    KAZOO_MISSING = ""
except ImportError as e:  # every test here drives kazoo
    KAZOO_MISSING = "kazoo is missing (Debian python3-kazoo): %s" % e

WAIT_S = 10.0


def connect(server, **kw):
    zk = KazooClient(hosts=server.hosts(), timeout=10.0, **kw)
    zk.start(timeout=WAIT_S)
    return zk


def disconnect(zk):
    zk.stop()
    zk.close()


@unittest.skipIf(KAZOO_MISSING, KAZOO_MISSING)
class WithCoordd(unittest.TestCase):
    """One coordd for the whole class."""

    @classmethod
    def setUpClass(cls):
        cls.server = Coordd().start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()


class KazooAgainstCoordd(WithCoordd):
    def client(self, **kw):
        c = connect(self.server, **kw)
        self.addCleanup(c.close)
        self.addCleanup(c.stop)
        return c

    def test_crud(self):
        zk = self.client()
        zk.create("/crud", b"one")
        data, stat = zk.get("/crud")
        self.assertEqual(data, b"one")
        self.assertEqual(stat.version, 0)
        zk.set("/crud", b"two")
        self.assertEqual(zk.get("/crud")[0], b"two")
        with self.assertRaises(BadVersionError):
            zk.set("/crud", b"x", version=7)
        with self.assertRaises(NodeExistsError):
            zk.create("/crud")
        zk.create("/crud/child")
        with self.assertRaises(NotEmptyError):
            zk.delete("/crud")
        self.assertEqual(zk.get_children("/crud"), ["child"])
        zk.delete("/crud", recursive=True)
        self.assertIsNone(zk.exists("/crud"))
        with self.assertRaises(NoNodeError):
            zk.get("/crud")

    def test_sequential_and_ephemeral(self):
        zk = self.client()
        zk.create("/seq")
        a = zk.create("/seq/n-", sequence=True)
        b = zk.create("/seq/n-", sequence=True)
        self.assertEqual(a, "/seq/n-0000000000")
        self.assertEqual(b, "/seq/n-0000000001")
        other = self.client()
        other.create("/eph", ephemeral=True)
        self.assertEqual(zk.exists("/eph").ephemeralOwner, other.client_id[0])
        other.stop()
        self.assertIsNone(zk.exists("/eph"))

    def test_data_watch_fires(self):
        zk = self.client()
        zk.create("/watched", b"0")
        seen = []
        fired = threading.Event()

        def on_change(event):
            seen.append(event)
            fired.set()

        zk.get("/watched", watch=on_change)
        self.client().set("/watched", b"1")
        self.assertTrue(fired.wait(WAIT_S))
        self.assertEqual(seen[0].type, "CHANGED")
        self.assertEqual(seen[0].path, "/watched")

    def test_child_watch_fires(self):
        zk = self.client()
        zk.create("/parent")
        fired = threading.Event()
        zk.get_children("/parent", watch=lambda e: fired.set())
        zk.create("/parent/kid")
        self.assertTrue(fired.wait(WAIT_S))

    def test_transaction_is_atomic(self):
        zk = self.client()
        t = zk.transaction()
        t.create("/tx-a", b"a")
        t.delete("/tx-missing")
        results = t.commit()
        self.assertIsInstance(results[0], RolledBackError)
        self.assertIsInstance(results[1], NoNodeError)
        self.assertIsNone(zk.exists("/tx-a"))
        t = zk.transaction()
        t.create("/tx-b", b"b")
        t.set_data("/tx-b", b"c")
        self.assertEqual(t.commit()[0], "/tx-b")
        self.assertEqual(zk.get("/tx-b")[0], b"c")

    def test_digest_acl(self):
        owner = self.client(auth_data=[("digest", "alice:secret")])
        acl = make_digest_acl("alice", "secret", all=True)
        owner.create("/private", b"mine", acl=[acl])
        stranger = self.client()
        with self.assertRaises(NoAuthError):
            stranger.get("/private")
        self.assertEqual(owner.get("/private")[0], b"mine")

    def test_server_version_and_four_letter_words(self):
        zk = self.client()
        self.assertGreaterEqual(zk.server_version()[:2], (3, 8))
        self.assertEqual(four_letter(self.server.port, "ruok"), "imok")
        self.assertIn("Mode: standalone", four_letter(self.server.port, "srvr"))
        self.assertIn("zk_znode_count", four_letter(self.server.port, "mntr"))

    def test_large_value_limits(self):
        zk = self.client()
        zk.create("/big", b"x" * (512 * 1024))
        self.assertEqual(len(zk.get("/big")[0]), 512 * 1024)


class HttpApi(WithCoordd):

    def http(self, method, path, body=None, auth=None):
        # A POST is JSON (the admin API); a PUT's body is raw data, never
        # one of the types a page may send across sites (urllib's default
        # is a form).
        headers = {}
        if body is not None:
            headers["Content-Type"] = ("application/json" if method == "POST"
                                       else "application/octet-stream")
        if auth is not None:
            headers["Authorization"] = basic_auth(auth)
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.server.http_port, path),
                                     data=body, method=method, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=WAIT_S) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def test_health_ready_metrics(self):
        self.assertEqual(self.http("GET", "/healthz")[0], 200)
        deadline = time.monotonic() + WAIT_S
        while self.http("GET", "/readyz")[0] != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.http("GET", "/readyz")[0], 200)
        status, body = self.http("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertIn(b"coord_znodes ", body)
        self.assertIn(b"coord_sessions ", body)

    def test_rest_writes_are_seen_by_zookeeper_clients(self):
        status, body = self.http("PUT", "/v1/znodes/rest-node", b"from http")
        self.assertEqual(status, 201, body)
        self.assertEqual(json.loads(body)["stat"]["version"], 0)
        status, body = self.http("PUT", "/v1/znodes/rest-node", b"again")
        self.assertEqual(status, 200)
        self.assertEqual(json.loads(body)["stat"]["version"], 1)
        zk = connect(self.server)
        self.addCleanup(zk.close)
        self.addCleanup(zk.stop)
        self.assertEqual(zk.get("/rest-node")[0], b"again")
        zk.create("/rest-node/kid", b"\xff\x00")
        status, body = self.http("GET", "/v1/znodes/rest-node/kid")
        self.assertEqual(json.loads(body)["data_base64"], "/wA=")
        status, body = self.http("GET", "/v1/znodes/rest-node?children")
        self.assertEqual(json.loads(body)["children"], ["kid"])
        status, body = self.http("DELETE", "/v1/znodes/rest-node")
        self.assertEqual(status, 409)
        self.assertEqual(json.loads(body)["error"], "NotEmpty")
        self.assertEqual(self.http("DELETE", "/v1/znodes/rest-node/kid?version=0")[0], 200)
        self.assertEqual(self.http("GET", "/v1/znodes/rest-node/kid")[0], 404)

    def test_bad_requests_get_4xx_with_a_reason(self):
        status, body = self.http("GET", "/v1/znodes/x?version=abc")
        self.assertEqual(status, 400)
        self.assertIn(b"version", body)
        self.assertEqual(self.http("GET", "/nowhere")[0], 404)
        # A POST creates: an empty body is not the JSON object it needs.
        self.assertEqual(self.http("POST", "/v1/znodes/x", b"")[0], 400)
        self.assertEqual(self.http("PATCH", "/v1/znodes/x", b"")[0], 405)
        self.assertEqual(self.http("PUT", "/v1/znodes/bad//path", b"")[0], 400)


    def test_cluster_admin_api_on_a_single_node(self):
        status, body = self.http("GET", "/v1/cluster/status")
        self.assertEqual(status, 200, body)
        st = json.loads(body)
        self.assertEqual(st["leader_id"], st["node_id"])
        self.assertGreaterEqual(st["commit_index"], 1)
        (me,) = st["members"]
        self.assertEqual((me["role"], me["voter"], me["lag"]), ("leader", True, 0))
        self.assertEqual(me["client_address"], "127.0.0.1:%d" % self.server.port)
        status, body = self.http("GET", "/v1/cluster/members")
        self.assertEqual([m["id"] for m in json.loads(body)["members"]], [st["node_id"]])
        # Changes need the super user (http_auth_test covers the refusals).
        self.assertEqual(self.http("POST", "/v1/cluster/transfer-leader", b'{"id": 7}')[0], 401)
        status, body = self.http("POST", "/v1/cluster/members",
                                 json.dumps({"id": 2, "peer_address": "127.0.0.1:1"}).encode(),
                                 auth=ADMIN_AUTH)
        self.assertEqual((status, json.loads(body)["error"]), (501, "ReconfigDisabled"))
        status, body = self.http("POST", "/v1/cluster/transfer-leader", b'{"id": 7}',
                                 auth=ADMIN_AUTH)
        self.assertEqual(status, 404)
        status, body = self.http("POST", "/v1/cluster/transfer-leader",
                                 json.dumps({"id": st["node_id"]}).encode(), auth=ADMIN_AUTH)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.http("DELETE", "/v1/cluster/members/abc", auth=ADMIN_AUTH)[0], 400)
        self.assertEqual(self.http("POST", "/v1/cluster/members", b"[1]", auth=ADMIN_AUTH)[0],
                         400)
        self.assertEqual(self.http("PUT", "/v1/cluster/status", b"")[0], 405)


@unittest.skipIf(KAZOO_MISSING, KAZOO_MISSING)
class RestartKeepsEverything(unittest.TestCase):
    def test_kill9_then_restart_keeps_acknowledged_writes(self):
        server = Coordd().start()
        self.addCleanup(server.cleanup)
        zk = connect(server)
        written = []
        for i in range(200):
            zk.create("/durable-%03d" % i, str(i).encode())
            written.append(i)
        server.kill9()
        disconnect(zk)
        server.start()
        zk = connect(server)
        try:
            for i in written:
                self.assertEqual(zk.get("/durable-%03d" % i)[0], str(i).encode())
        finally:
            disconnect(zk)

    def test_kill9_under_concurrent_load_loses_no_acknowledged_write(self):
        server = Coordd(extra_args=["--snapshot-entries", "400"]).start()
        self.addCleanup(server.cleanup)
        writers = 4
        acked = [[] for _ in range(writers)]
        stop = threading.Event()

        def write(w):
            zk = KazooClient(hosts=server.hosts(), timeout=10.0,
                             connection_retry={"max_tries": 0})
            try:
                zk.start(timeout=WAIT_S)
                for i in range(100000):
                    if stop.is_set():
                        break
                    zk.create("/load-%d-%06d" % (w, i), b"%d" % i)
                    acked[w].append(i)
            except Exception:
                pass  # the server was killed under us
            finally:
                try:
                    zk.stop()
                    zk.close()
                except Exception:
                    pass

        threads = [threading.Thread(target=write, args=(w,)) for w in range(writers)]
        for t in threads:
            t.start()
        deadline = time.monotonic() + WAIT_S
        while sum(len(a) for a in acked) < 1500 and time.monotonic() < deadline:
            time.sleep(0.02)
        server.kill9()
        stop.set()
        for t in threads:
            t.join(timeout=30)
        self.assertGreater(sum(len(a) for a in acked), 0, server.log())
        server.start()
        zk = connect(server)
        try:
            present = set(zk.get_children("/"))
            for w in range(writers):
                for i in acked[w]:
                    self.assertIn("load-%d-%06d" % (w, i), present)
        finally:
            disconnect(zk)

    def test_restart_from_snapshot_and_log(self):
        server = Coordd(extra_args=["--snapshot-entries", "50"]).start()
        self.addCleanup(server.cleanup)
        zk = connect(server)
        for i in range(300):
            zk.create("/snap-%03d" % i, str(i).encode())
        snap_dir = os.path.join(server.data_dir, "data", "snapshots")
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline and not os.listdir(snap_dir):
            time.sleep(0.05)
        self.assertTrue(os.listdir(snap_dir), "no snapshot was written:\n" + server.log())
        for i in range(300, 320):
            zk.create("/snap-%03d" % i, str(i).encode())
        server.kill9()
        disconnect(zk)
        server.start()
        zk = connect(server)
        try:
            self.assertEqual(len(zk.get_children("/")), 321)  # + /zookeeper
            for i in range(320):
                self.assertEqual(zk.get("/snap-%03d" % i)[0], str(i).encode())
        finally:
            disconnect(zk)

    def test_sigterm_stops_cleanly(self):
        server = Coordd().start()
        self.addCleanup(server.cleanup)
        self.assertEqual(server.terminate(), 0)


if __name__ == "__main__":
    ctest_main.main()
