"""HTTP authentication and the guards of coordd's HTTP port, against a real
coordd:

- Basic credentials act as the digest identity `addauth digest` gives, on
  top of ip:<caller>; REST reads and writes are checked against each
  znode's ACL as a ZooKeeper client's are; REST sessions are told apart by
  address and credentials;
- the admin API's changes need the super user or ADMIN on
  /zookeeper/config (401 without credentials, 403 with others); its status
  stays open;
- a Host the server does not answer to is refused (DNS rebinding), and so
  is a change with a foreign Origin or a body type a page may send across
  sites without a preflight;
- every refusal is counted in coord_http_auth_failures_total.
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
from coordd_harness import ADMIN_AUTH, Coordd, basic_auth  # noqa: E402

ALICE = ("alice", "alice-pw")
BOB = ("bob", "bob-pw")
ALLOWED_ORIGIN = "https://console.example:8443"


def request(port, method, path, body=None, auth=None, headers=None, source="127.0.0.1"):
    """(status, headers, JSON or text body) of one request from `source`."""
    h = dict(headers or {})
    if auth is not None:
        h["Authorization"] = basic_auth(auth)
    if body is not None and "Content-Type" not in h:
        h["Content-Type"] = "application/json" if method == "POST" else "application/octet-stream"
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20, source_address=(source, 0))
    try:
        c.request(method, path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        try:
            parsed = json.loads(data) if data else None
        except ValueError:
            parsed = data.decode(errors="replace")
        return r.status, dict(r.getheaders()), parsed
    finally:
        c.close()


class HttpAuth(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Coordd(extra_args=["--http-allowed-origins", ALLOWED_ORIGIN,
                                        "--http-allowed-hosts", "coord.example"])
        try:
            cls.server.start()
            cls.zk = zw.Conn(cls.server.port)
            cls.zk.handshake(timeout_ms=30000)
        except Exception:
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.zk.close()
        cls.server.cleanup()

    def http(self, method, path, body=None, **kw):
        return request(self.server.http_port, method, path, body, **kw)

    def create(self, path, data=b"", acl=zw.OPEN_ACL, conn=None):
        _, f = (conn or self.zk).call(zw.CREATE, zw.create_body(path, data, acl=acl))
        self.assertEqual(f.err, 0, path)

    def data_of(self, path, conn):
        _, f = conn.call(zw.GET_DATA, zw.path_watch_body(path))
        self.assertEqual(f.err, 0, path)
        return zw.Reader(f.body).buffer()

    def authed(self, user, password):
        c = zw.Conn(self.server.port)
        self.addCleanup(c.close)
        c.handshake(timeout_ms=30000)
        _, f = c.call(zw.AUTH, zw.auth_body("digest", ("%s:%s" % (user, password)).encode()),
                      xid=-4)
        self.assertEqual(f.err, 0)
        return c

    def failures(self):
        _, _, text = self.http("GET", "/metrics")
        return {m.group(1): int(m.group(2)) for m in re.finditer(
            r'^coord_http_auth_failures_total\{reason="(\w+)"\} (\d+)$', text, re.M)}

    def assert_counted(self, before, **expected):
        after = self.failures()
        for reason, n in expected.items():
            self.assertEqual(after[reason] - before[reason], n, reason)

    # -- identities -------------------------------------------------------
    def test_basic_credentials_act_as_the_digest_user(self):
        alice = [(zw.ALL, "digest", zw.digest_id(*ALICE))]
        self.create("/alice-only", b"secret", alice)
        # Deleting needs DELETE on the parent, as in ZooKeeper.
        self.create("/alice-only/sub", b"", conn=self.authed(*ALICE))
        before = self.failures()
        # Without credentials or with the wrong ones: refused as getData,
        # setData and delete would be.
        for auth in (None, ("alice", "wrong"), BOB):
            status, _, body = self.http("GET", "/v1/znodes/alice-only", auth=auth)
            self.assertEqual((status, body["error"]), (403, "NoAuth"), auth)
            status, _, body = self.http("PUT", "/v1/znodes/alice-only", b"x", auth=auth)
            self.assertEqual((status, body["error"]), (403, "NoAuth"), auth)
            status, _, _ = self.http("DELETE", "/v1/znodes/alice-only/sub", auth=auth)
            self.assertEqual(status, 403, auth)
        self.assert_counted(before, forbidden=9, unauthenticated=0)
        status, _, body = self.http("GET", "/v1/znodes/alice-only", auth=ALICE)
        self.assertEqual((status, body["data"]), (200, "secret"))
        status, _, body = self.http("PUT", "/v1/znodes/alice-only", b"from rest", auth=ALICE)
        self.assertEqual(status, 200, body)
        self.assertEqual(self.data_of("/alice-only", self.authed(*ALICE)), b"from rest")
        # A node created through REST with credentials is readable by them.
        status, _, body = self.http("PUT", "/v1/znodes/alice-only/kid", b"k", auth=ALICE)
        self.assertEqual(status, 201, body)
        # The super user passes every ACL.
        status, _, body = self.http("GET", "/v1/znodes/alice-only", auth=ADMIN_AUTH)
        self.assertEqual((status, body["data"]), (200, "from rest"))

    def test_reads_need_read_permission(self):
        # The caller's own address may write but not read.
        no_read = [(zw.WRITE | zw.CREATE_PERM | zw.DELETE_PERM | zw.ADMIN, "ip", "127.0.0.1")]
        self.create("/write-only", b"hidden", no_read)
        for query in ("", "?children", "?acl"):
            status, _, body = self.http("GET", "/v1/znodes/write-only" + query)
            self.assertEqual((status, body["error"]), (403, "NoAuth"), query)
        status, _, body = self.http("PUT", "/v1/znodes/write-only", b"x")
        self.assertEqual(status, 200, body)

    def test_sessions_are_per_caller_and_credentials(self):
        alice = [(zw.ALL, "digest", zw.digest_id(*ALICE))]
        self.create("/per-identity", b"", alice)
        # Alice's session first, then anonymous callers from the same
        # address: they must not ride on hers, and the other way round.
        for _ in range(2):
            self.assertEqual(self.http("PUT", "/v1/znodes/per-identity", b"a", auth=ALICE)[0],
                             200)
            self.assertEqual(self.http("PUT", "/v1/znodes/per-identity", b"b")[0], 403)
            self.assertEqual(self.http("PUT", "/v1/znodes/per-identity", b"c", auth=BOB)[0], 403)
        self.assertEqual(self.data_of("/per-identity", self.authed(*ALICE)), b"a")

    def test_malformed_credentials_are_400(self):
        before = self.failures()
        for header in ("Basic !!!", "Digest abc", "Basic", "Basic YWxpY2U="):
            status, _, body = self.http("GET", "/v1/znodes/", headers={"Authorization": header})
            self.assertEqual((status, body["error"]), (400, "BadArguments"), header)
        self.assert_counted(before, malformed=4)

    def test_acl_query_hides_digest_hashes_from_non_admins(self):
        acl = [(zw.READ, "world", "anyone"), (zw.ALL, "digest", zw.digest_id(*ALICE))]
        self.create("/acl-shown", b"", acl)
        status, _, body = self.http("GET", "/v1/znodes/acl-shown?acl")
        self.assertEqual(status, 200, body)
        self.assertEqual(sorted((a["scheme"], a["id"]) for a in body["acl"]),
                         [("digest", "alice:x"), ("world", "anyone")])
        status, _, body = self.http("GET", "/v1/znodes/acl-shown?acl", auth=ALICE)
        self.assertIn(zw.digest_id(*ALICE), [a["id"] for a in body["acl"]])

    # -- the admin API ----------------------------------------------------
    def test_admin_changes_need_super_or_admin_on_zookeeper_config(self):
        me = self.http("GET", "/v1/cluster")[2]["node_id"]
        transfer = json.dumps({"id": me})
        before = self.failures()
        status, headers, body = self.http("POST", "/v1/cluster/transfer-leader", transfer)
        self.assertEqual((status, body["error"]), (401, "NoAuth"))
        self.assertEqual(headers.get("WWW-Authenticate"), 'Basic realm="coord"')
        status, headers, body = self.http("POST", "/v1/cluster/transfer-leader", transfer,
                                          auth=ALICE)
        self.assertEqual((status, body["error"]), (403, "NoAuth"))
        self.assertNotIn("WWW-Authenticate", headers)
        for method, path, payload in (("POST", "/v1/cluster/members", '{"id": 2}'),
                                      ("DELETE", "/v1/cluster/members/1", None),
                                      ("POST", "/v1/cluster/anything", "{}")):
            self.assertEqual(self.http(method, path, payload)[0], 401, path)
        self.assert_counted(before, unauthenticated=4, forbidden=1)
        self.assertEqual(self.http("POST", "/v1/cluster/transfer-leader", transfer,
                                   auth=ADMIN_AUTH)[0], 200)
        # Status stays open.
        for path in ("/v1/cluster", "/v1/cluster/status", "/v1/cluster/members", "/healthz",
                     "/readyz", "/metrics"):
            self.assertEqual(self.http("GET", path)[0], 200, path)
        # ADMIN on /zookeeper/config, granted by the super user, lets alice in.
        root = self.authed(*ADMIN_AUTH)
        _, f = root.call(zw.GET_ACL, zw.path_body("/zookeeper/config"))
        self.assertEqual(f.err, 0)
        _, f = root.call(zw.SET_ACL, zw.set_acl_body(
            "/zookeeper/config",
            [(zw.READ, "world", "anyone"), (zw.READ | zw.ADMIN, "digest", zw.digest_id(*ALICE))]))
        self.assertEqual(f.err, 0)
        try:
            self.assertEqual(self.http("POST", "/v1/cluster/transfer-leader", transfer,
                                       auth=ALICE)[0], 200)
            self.assertEqual(self.http("POST", "/v1/cluster/transfer-leader", transfer,
                                       auth=BOB)[0], 403)
        finally:
            _, f = root.call(zw.SET_ACL, zw.set_acl_body("/zookeeper/config",
                                                         [(zw.READ, "world", "anyone")]))
            self.assertEqual(f.err, 0)

    # -- Host, Origin, Content-Type ----------------------------------------
    def test_dns_rebinding_is_refused_by_host(self):
        port = self.server.http_port
        before = self.failures()
        # A page of rebind.example whose name now resolves to 127.0.0.1.
        for method, path, body in (("GET", "/v1/znodes/", None),
                                   ("PUT", "/v1/znodes/rebound", b"x"),
                                   ("GET", "/metrics", None)):
            status, _, reply = self.http(method, path, body,
                                         headers={"Host": "rebind.example:%d" % port})
            self.assertEqual(status, 421, path)
            self.assertEqual(reply["error"], "BadArguments")
        self.assert_counted(before, host=3)
        self.assertEqual(self.http("GET", "/v1/znodes/rebound")[0], 404)
        for host in ("localhost:%d" % port, "127.0.0.1:%d" % port, "[::1]:%d" % port,
                     "coord.example:%d" % port):
            self.assertEqual(self.http("GET", "/v1/znodes/", headers={"Host": host})[0], 200,
                             host)

    def test_cross_site_changes_are_refused(self):
        me = self.http("GET", "/v1/cluster")[2]["node_id"]
        transfer = json.dumps({"id": me})
        port = self.server.http_port
        before = self.failures()
        # What a form or fetch() on another site sends without a preflight.
        for content_type in ("text/plain", "application/x-www-form-urlencoded",
                             "multipart/form-data; boundary=x"):
            status, _, body = self.http("POST", "/v1/cluster/transfer-leader", transfer,
                                        auth=ADMIN_AUTH, headers={"Content-Type": content_type})
            self.assertEqual(status, 415, content_type)
            status, _, _ = self.http("PUT", "/v1/znodes/cross-site", b"x",
                                     headers={"Content-Type": content_type})
            self.assertEqual(status, 415, content_type)
        # A POST with no type at all (a Blob body) is no JSON either.
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        c.putrequest("POST", "/v1/cluster/transfer-leader")
        c.putheader("Authorization", basic_auth(ADMIN_AUTH))
        c.putheader("Content-Length", str(len(transfer)))
        c.endheaders(transfer.encode())
        self.assertEqual(c.getresponse().status, 415)
        c.close()
        # A foreign Origin, with the right type and credentials.
        for origin in ("http://evil.example", "null", "http://127.0.0.1:%d" % (port + 1)):
            status, _, body = self.http("POST", "/v1/cluster/transfer-leader", transfer,
                                        auth=ADMIN_AUTH, headers={"Origin": origin})
            self.assertEqual((status, body["error"]), (403, "NoAuth"), origin)
            self.assertEqual(self.http("PUT", "/v1/znodes/cross-site", b"x",
                                       headers={"Origin": origin})[0], 403, origin)
        self.assert_counted(before, content_type=7, origin=6)
        self.assertEqual(self.http("GET", "/v1/znodes/cross-site")[0], 404)
        # The server's own origin and an allowed one pass; so does a raw
        # PUT of text with the custom header no page can send unasked.
        for origin in ("http://127.0.0.1:%d" % port, ALLOWED_ORIGIN):
            self.assertEqual(self.http("POST", "/v1/cluster/transfer-leader", transfer,
                                       auth=ADMIN_AUTH, headers={"Origin": origin})[0], 200,
                             origin)
        status, _, body = self.http("PUT", "/v1/znodes/cross-site", b"text",
                                    headers={"Content-Type": "text/plain",
                                             "X-Coord-Request": "1"})
        self.assertEqual(status, 201, body)
        # Reads are not changes: a GET with a foreign Origin is answered
        # (without CORS headers, a page cannot read the answer).
        status, headers, _ = self.http("GET", "/v1/znodes/cross-site",
                                       headers={"Origin": "http://evil.example"})
        self.assertEqual(status, 200)
        self.assertNotIn("Access-Control-Allow-Origin", headers)

    # -- login tokens -----------------------------------------------------
    def login(self, auth=None, **kw):
        status, _, body = self.http("POST", "/v1/auth/login", b"{}", auth=auth, **kw)
        self.assertEqual(status, 200, body)
        return body

    def bearer(self, token):
        return {"Authorization": "Bearer " + token}

    def test_a_login_token_acts_as_its_credentials(self):
        alice = self.login(ALICE)
        self.assertRegex(alice["token"], r"^[0-9a-f]{32}$")
        self.assertEqual(alice["user"], "alice")
        self.assertFalse(alice["super"])
        self.assertEqual(alice["idle_timeout_ms"], 1800000)
        self.assertIn({"scheme": "ip", "id": "127.0.0.1"}, alice["identities"])
        self.assertIn({"scheme": "digest", "id": zw.digest_id(*ALICE)}, alice["identities"])
        anon = self.login()
        self.assertIsNone(anon["user"])
        self.assertEqual(anon["identities"], [{"scheme": "ip", "id": "127.0.0.1"}])
        self.assertNotEqual(anon["token"], alice["token"])
        admin = self.login(ADMIN_AUTH)
        self.assertTrue(admin["super"])
        self.create("/alice-tok", b"mine", [(zw.ALL, "digest", zw.digest_id(*ALICE))])
        # Alice's token reads and writes as alice; the anonymous one may not.
        status, _, body = self.http("GET", "/v1/znodes/alice-tok",
                                    headers=self.bearer(alice["token"]))
        self.assertEqual((status, body["data"]), (200, "mine"))
        status, _, body = self.http("PUT", "/v1/znodes/alice-tok", b"by token",
                                    headers=self.bearer(alice["token"]))
        self.assertEqual(status, 200, body)
        status, _, body = self.http("GET", "/v1/znodes/alice-tok",
                                    headers=self.bearer(anon["token"]))
        self.assertEqual((status, body["error"]), (403, "NoAuth"))
        # The admin API takes the super user's token as its credentials.
        transfer = json.dumps({"id": self.http("GET", "/v1/cluster")[2]["node_id"]})
        status, _, body = self.http("POST", "/v1/cluster/transfer-leader", transfer,
                                    headers=self.bearer(admin["token"]))
        self.assertEqual(status, 200, body)
        status, _, body = self.http("POST", "/v1/cluster/transfer-leader", transfer,
                                    headers=self.bearer(alice["token"]))
        self.assertEqual(status, 403, body)

    def test_unknown_token_is_401_and_logout_forgets_it(self):
        before = self.failures()
        status, _, body = self.http("GET", "/v1/znodes/", headers=self.bearer("0" * 32))
        self.assertEqual((status, body["error"], body["code"]), (401, "SessionExpired", -112))
        tok = self.login(ALICE)["token"]
        status, _, body = self.http("POST", "/v1/auth/logout", b"{}", headers=self.bearer(tok))
        self.assertEqual((status, body), (200, {}))
        status, _, body = self.http("GET", "/v1/znodes/", headers=self.bearer(tok))
        self.assertEqual((status, body["code"]), (401, -112))
        status, _, body = self.http("POST", "/v1/auth/logout", b"{}", headers=self.bearer(tok))
        self.assertEqual(status, 401, body)
        status, _, body = self.http("POST", "/v1/auth/logout", b"{}")
        self.assertEqual(status, 400, body)
        status, _, body = self.http("POST", "/v1/auth/login", b"{}",
                                    headers={"Authorization": "Bearer "})
        self.assertEqual(status, 400, body)
        self.assert_counted(before, unauthenticated=3, malformed=1)

    def test_login_is_guarded_as_any_change(self):
        # A page elsewhere cannot get a token: foreign Origin, or a form post.
        status, _, _ = self.http("POST", "/v1/auth/login", b"{}",
                                 headers={"Origin": "https://evil.example"})
        self.assertEqual(status, 403)
        status, _, _ = self.http("POST", "/v1/auth/login", b"{}",
                                 headers={"Content-Type": "text/plain"})
        self.assertEqual(status, 415)
        status, _, _ = self.http("POST", "/v1/auth/login", b"[1]")
        self.assertEqual(status, 400)
        status, _, _ = self.http("GET", "/v1/auth/login")
        self.assertEqual(status, 405)

    def test_loopback_listener_gives_no_clear_text_warning(self):
        status, _, body = self.http("GET", "/readyz")
        self.assertEqual((status, body), (200, "ready\n"))
        self.assertNotIn("in clear", self.server.log())


class NamedSuperUser(unittest.TestCase):
    """--super-digest names any user, as ZooKeeper's superDigest does."""

    def test_a_super_user_not_called_super(self):
        server = Coordd(extra_args=["--super-digest", zw.digest_id("root", "root-pw")])
        self.addCleanup(server.cleanup)
        server.start()
        port = server.http_port
        me = request(port, "GET", "/v1/cluster")[2]["node_id"]
        transfer = json.dumps({"id": me})
        self.assertEqual(request(port, "POST", "/v1/cluster/transfer-leader", transfer,
                                 auth=("root", "root-pw"))[0], 200)
        self.assertEqual(request(port, "POST", "/v1/cluster/transfer-leader", transfer,
                                 auth=ADMIN_AUTH)[0], 403)
        zk = zw.Conn(server.port)
        self.addCleanup(zk.close)
        zk.handshake(timeout_ms=30000)
        _, f = zk.call(zw.CREATE, zw.create_body("/alice-only", b"a", acl=[
            (zw.ALL, "digest", zw.digest_id(*ALICE))]))
        self.assertEqual(f.err, 0)
        self.assertEqual(request(port, "GET", "/v1/znodes/alice-only",
                                 auth=("root", "root-pw"))[0], 200)
        self.assertEqual(request(port, "GET", "/v1/znodes/alice-only",
                                 auth=("root", "wrong"))[0], 403)


if __name__ == "__main__":
    ctest_main.main()
