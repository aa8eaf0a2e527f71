"""The parts of the HTTP API the web console uses, against a real coordd,
with kazoo making and checking changes from outside: children paged and
filtered by prefix, create in every mode, setACL and recursive delete with
the version of the node as shown, the sessions list and the metrics
history.
"""

import base64
import json
import os
import sys
import time
import unittest
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ctest_main  # noqa: E402
from coordd_harness import Coordd, basic_auth, digest_id  # noqa: E402
from kazoo.client import KazooClient  # noqa: E402
from kazoo.security import ACL, Id  # noqa: E402

ALL = 31
READ = 1
WAIT_S = 20.0


class ConsoleApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Coordd()
        try:
            cls.server.start()
            cls.zk = KazooClient(hosts="127.0.0.1:%d" % cls.server.port, timeout=30)
            cls.zk.start(timeout=WAIT_S)
        except Exception:
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.zk.stop()
        cls.zk.close()
        cls.server.cleanup()

    def call(self, method, path, body=None, auth=None, content_type="application/json"):
        headers = {}
        if content_type:
            headers["Content-Type"] = content_type
        if auth is not None:
            headers["Authorization"] = basic_auth(auth)
        data = None if body is None else (body if isinstance(body, bytes)
                                          else json.dumps(body).encode())
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.server.http_port, path),
                                     method=method, data=data, headers=headers)
        try:
            with urllib.request.urlopen(req, timeout=WAIT_S) as r:
                return r.status, json.loads(r.read().decode())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read().decode())

    def test_children_are_sorted_filtered_by_prefix_and_paged(self):
        self.zk.create("/paged")
        for i in reversed(range(25)):
            self.zk.create("/paged/c%02d" % i, b"x" * i)
        self.zk.create("/paged/d0")
        self.zk.create("/paged/c03/below")
        status, out = self.call("GET", "/v1/znodes/paged?children&prefix=c&offset=5&limit=10")
        self.assertEqual(status, 200, out)
        self.assertEqual(out["children_total"], 25)
        self.assertEqual(out["children"], ["c%02d" % i for i in range(5, 15)])
        # Without paging every child comes, as before.
        status, out = self.call("GET", "/v1/znodes/paged?children")
        self.assertEqual(len(out["children"]), 26)
        self.assertEqual(out["children_total"], 26)
        # A page past the end is empty, not an error.
        status, out = self.call("GET", "/v1/znodes/paged?children&offset=100&limit=10")
        self.assertEqual((status, out["children"]), (200, []))
        status, out = self.call("GET", "/v1/znodes/paged?children&prefix=c0&limit=4&detail")
        self.assertEqual(status, 200, out)
        self.assertEqual([c["name"] for c in out["children"]], ["c00", "c01", "c02", "c03"])
        self.assertEqual(out["children"][3]["numChildren"], 1)
        self.assertEqual(out["children"][2]["dataLength"], 2)
        self.assertEqual(out["children"][0]["ephemeralOwner"], 0)
        # A prefix is percent-decoded like the path.
        self.zk.create("/paged/sp ace")
        status, out = self.call("GET", "/v1/znodes/paged?children&prefix=sp%20a")
        self.assertEqual(out["children"], ["sp ace"])
        for bad in ("offset=-1", "limit=x", "offset=1.5", "prefix=%zz"):
            status, out = self.call("GET", "/v1/znodes/paged?children&" + bad)
            self.assertEqual(status, 400, bad)
            self.assertEqual(out["error"], "BadArguments", bad)

    def test_create_in_every_mode(self):
        self.zk.create("/modes")
        status, out = self.call("POST", "/v1/znodes/modes/p", {"data": "hello"})
        self.assertEqual(status, 201, out)
        self.assertEqual(self.zk.get("/modes/p")[0], b"hello")
        status, out = self.call("POST", "/v1/znodes/modes/p", {"data": "again"})
        self.assertEqual((status, out["error"]), (409, "NodeExists"))

        status, out = self.call("POST", "/v1/znodes/modes/s-", {"mode": "persistent_sequential"})
        self.assertEqual(status, 201, out)
        self.assertRegex(out["path"], r"^/modes/s-\d{10}$")
        self.assertTrue(self.zk.exists(out["path"]))

        # An ephemeral belongs to the REST session of its caller.
        status, out = self.call("POST", "/v1/znodes/modes/e", {"mode": "ephemeral"})
        self.assertEqual(status, 201, out)
        self.assertNotEqual(self.zk.exists("/modes/e").ephemeralOwner, 0)
        status, out = self.call("POST", "/v1/znodes/modes/es-", {"mode": "ephemeral_sequential"})
        self.assertEqual(status, 201, out)
        self.assertNotEqual(self.zk.exists(out["path"]).ephemeralOwner, 0)

        # A container goes once its last child does.
        status, out = self.call("POST", "/v1/znodes/modes/box", {"mode": "container"})
        self.assertEqual(status, 201, out)
        self.assertTrue(self.zk.exists("/modes/box"))

        status, out = self.call("POST", "/v1/znodes/modes/t", {"mode": "ttl", "ttl_ms": 60000})
        self.assertEqual(status, 201, out)
        self.assertTrue(self.zk.exists("/modes/t"))
        status, out = self.call("POST", "/v1/znodes/modes/ts-",
                                {"mode": "ttl_sequential", "ttl_ms": 60000})
        self.assertEqual(status, 201, out)
        self.assertRegex(out["path"], r"^/modes/ts-\d{10}$")
        status, out = self.call("POST", "/v1/znodes/modes/t2", {"mode": "ttl"})
        self.assertEqual(status, 400, out)

        raw = bytes(range(256))
        status, out = self.call("POST", "/v1/znodes/modes/bin",
                                {"data_base64": base64.b64encode(raw).decode()})
        self.assertEqual(status, 201, out)
        self.assertEqual(self.zk.get("/modes/bin")[0], raw)
        status, out = self.call("GET", "/v1/znodes/modes/bin")
        self.assertEqual(base64.b64decode(out["data_base64"]), raw)
        for short in (b"", b"a", b"ab"):
            status, out = self.call("POST", "/v1/znodes/modes/b%d" % len(short),
                                    {"data_base64": base64.b64encode(short).decode()})
            self.assertEqual(status, 201, out)
            self.assertEqual(self.zk.get("/modes/b%d" % len(short))[0], short)

        status, out = self.call("POST", "/v1/znodes/modes/acl",
                                {"data": "x", "acl": [{"perms": READ, "scheme": "world",
                                                       "id": "anyone"}]})
        self.assertEqual(status, 201, out)
        acl, _ = self.zk.get_acls("/modes/acl")
        self.assertEqual([(a.perms, a.id.scheme, a.id.id) for a in acl], [(READ, "world", "anyone")])
        status, out = self.call("POST", "/v1/znodes/modes/acl/child", {})
        self.assertEqual((status, out["error"]), (403, "NoAuth"))

        status, out = self.call("POST", "/v1/znodes/modes/none/child", {})
        self.assertEqual((status, out["error"]), (404, "NoNode"))
        bad_bodies = [b"not json", b"[1]", {"mode": "weird"}, {"data": 5},
                      {"data_base64": "!!!!"}, {"data_base64": "abc"},
                      {"acl": [{"perms": 99, "scheme": "world", "id": "anyone"}]},
                      {"acl": [{"perms": 1}]}, {"acl": "open"}]
        for body in bad_bodies:
            status, out = self.call("POST", "/v1/znodes/modes/bad", body)
            self.assertEqual(status, 400, body)
            self.assertEqual(out["error"], "BadArguments", body)
        self.assertIsNone(self.zk.exists("/modes/bad"))
        # A browser's cross-site POST types stay refused.
        status, out = self.call("POST", "/v1/znodes/modes/form", {"data": "x"},
                                content_type="text/plain")
        self.assertEqual(status, 415, out)
        self.assertIsNone(self.zk.exists("/modes/form"))

    def test_set_acl_checks_the_acl_version_shown(self):
        self.zk.create("/acl-node", b"v")
        new_acl = [{"perms": ALL, "scheme": "digest", "id": digest_id("ann", "pw")},
                   {"perms": READ, "scheme": "world", "id": "anyone"}]
        status, out = self.call("PUT", "/v1/znodes/acl-node?acl&version=0", {"acl": new_acl})
        self.assertEqual(status, 200, out)
        self.assertEqual(out["stat"]["aversion"], 1)
        # (getACL shows a digest's hash only to who has ADMIN on the node.)
        acl, stat = self.zk.get_acls("/acl-node")
        self.assertEqual(sorted((a.perms, a.id.scheme, a.id.id.split(":")[0]) for a in acl),
                         [(READ, "world", "anyone"), (ALL, "digest", "ann")])
        # The version shown before that change is stale now.
        status, out = self.call("PUT", "/v1/znodes/acl-node?acl&version=0", {"acl": new_acl},
                                auth=("ann", "pw"))
        self.assertEqual((status, out["error"]), (409, "BadVersion"))
        # Without ADMIN for the caller's identities, refused; with them, done.
        status, out = self.call("PUT", "/v1/znodes/acl-node?acl", {"acl": new_acl})
        self.assertEqual((status, out["error"]), (403, "NoAuth"))
        status, out = self.call("PUT", "/v1/znodes/acl-node?acl&version=1",
                                {"acl": [{"perms": ALL, "scheme": "world", "id": "anyone"}]},
                                auth=("ann", "pw"))
        self.assertEqual(status, 200, out)
        self.assertEqual(self.zk.get_acls("/acl-node")[1].aversion, 2)
        status, out = self.call("PUT", "/v1/znodes/acl-node?acl", {"acl": []})
        self.assertEqual((status, out["error"]), (400, "InvalidAcl"))
        status, out = self.call("PUT", "/v1/znodes/acl-node?acl", {"no": "acl"})
        self.assertEqual(status, 400, out)

    def test_recursive_delete_takes_the_subtree_deepest_first(self):
        self.zk.create("/tree")
        # More than one batch of deletes.
        self.zk.create("/tree/a/b/c", makepath=True)
        for i in range(1200):
            self.zk.create_async("/tree/n%04d" % i, b"")
        deadline = time.monotonic() + WAIT_S
        while self.zk.get_children("/tree").__len__() < 1201 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(len(self.zk.get_children("/tree")), 1201)
        stat = self.zk.exists("/tree")
        # A plain delete refuses a node with children.
        status, out = self.call("DELETE", "/v1/znodes/tree")
        self.assertEqual((status, out["error"]), (409, "NotEmpty"))
        # A version that is not the node's refuses it all, before anything goes.
        status, out = self.call("DELETE", "/v1/znodes/tree?recursive&version=%d" %
                                (stat.version + 1))
        self.assertEqual((status, out["error"]), (409, "BadVersion"))
        self.assertEqual(len(self.zk.get_children("/tree")), 1201)
        status, out = self.call("DELETE", "/v1/znodes/tree?recursive&version=%d" % stat.version)
        self.assertEqual(status, 200, out)
        self.assertEqual(out["deleted"], 1 + 1200 + 3)
        self.assertIsNone(self.zk.exists("/tree"))
        status, out = self.call("DELETE", "/v1/znodes/tree?recursive")
        self.assertEqual((status, out["error"]), (404, "NoNode"))
        status, out = self.call("DELETE", "/v1/znodes/?recursive")
        self.assertEqual(status, 400, out)
        self.assertTrue(self.zk.exists("/zookeeper"))

    def test_recursive_delete_needs_read_on_the_subtree(self):
        self.zk.add_auth("digest", "owner:pw")
        self.zk.create("/hidden")
        self.zk.create("/hidden/inner",
                       acl=[ACL(ALL, Id("digest", digest_id("owner", "pw")))])
        self.zk.create("/hidden/inner/x")
        status, out = self.call("DELETE", "/v1/znodes/hidden?recursive")
        self.assertEqual((status, out["error"]), (403, "NoAuth"))
        self.assertTrue(self.zk.exists("/hidden/inner/x"))
        status, out = self.call("DELETE", "/v1/znodes/hidden?recursive", auth=("owner", "pw"))
        self.assertEqual(status, 200, out)
        self.assertEqual(out["deleted"], 3)

    def test_sessions_list_their_readable_ephemerals(self):
        other = KazooClient(hosts="127.0.0.1:%d" % self.server.port, timeout=30)
        other.start(timeout=WAIT_S)
        try:
            other.add_auth("digest", "eve:pw")
            other.create("/eph-open", ephemeral=True)
            other.create("/eph-secret", ephemeral=True,
                         acl=[ACL(ALL, Id("digest", digest_id("eve", "pw")))])
            sid = "0x%x" % other.client_id[0]
            status, out = self.call("GET", "/v1/sessions")
            self.assertEqual(status, 200, out)
            mine = [s for s in out["sessions"] if s["id"] == sid]
            self.assertEqual(len(mine), 1, out)
            s = mine[0]
            self.assertTrue(s["here"])
            self.assertEqual(s["server"], out["server"])
            self.assertGreater(s["timeout_ms"], 0)
            self.assertEqual(s["ephemerals"], ["/eph-open"])
            self.assertEqual(s["ephemerals_hidden"], 1)
            self.assertGreaterEqual(out["total"], 2)
            status, out = self.call("GET", "/v1/sessions", auth=("eve", "pw"))
            s = [s for s in out["sessions"] if s["id"] == sid][0]
            self.assertEqual(sorted(s["ephemerals"]), ["/eph-open", "/eph-secret"])
            status, out = self.call("GET", "/v1/sessions?offset=0&limit=1")
            self.assertEqual(len(out["sessions"]), 1)
            status, out = self.call("GET", "/v1/sessions?limit=-3")
            self.assertEqual(status, 400, out)
        finally:
            other.stop()
            other.close()
        status, out = self.call("GET", "/v1/sessions")
        self.assertFalse([s for s in out["sessions"] if s["id"] == sid])

    def test_metrics_history_samples_each_second(self):
        for i in range(50):
            self.zk.set("/", b"%d" % i)
        deadline = time.monotonic() + WAIT_S
        samples = []
        while time.monotonic() < deadline:
            status, out = self.call("GET", "/v1/metrics/history")
            self.assertEqual(status, 200, out)
            self.assertEqual(out["interval_ms"], 1000)
            samples = out["samples"]
            if any(s["requests_per_s"] > 0 and s["fsync_p50_us"] > 0 for s in samples):
                break
            time.sleep(0.3)
        busy = [s for s in samples if s["requests_per_s"] > 0 and s["fsync_p50_us"] > 0]
        self.assertTrue(busy, samples)
        s = busy[-1]
        self.assertGreater(s["latency_p99_us"], 0)
        self.assertGreaterEqual(s["latency_p99_us"], s["latency_p50_us"])
        self.assertGreaterEqual(s["commit_index"], s["applied_index"] - 0)
        self.assertGreaterEqual(s["connections"], 1)
        times = [x["t"] for x in samples]
        self.assertEqual(times, sorted(times))
        self.assertLess(abs(times[-1] / 1000.0 - time.time()), 60)
        status, out = self.call("POST", "/v1/metrics/history", {})
        self.assertEqual(status, 405, out)


if __name__ == "__main__":
    ctest_main.main()
