"""The event stream of coordd's HTTP port (GET /v1/events, a WebSocket)
against real coordd processes, driven by kazoo:

- events of creates, sets and deletes arrive with the change's zxid, type,
  path and the node's new Stat (null once deleted); recursive=0 hears of
  the node itself and of its children coming and going;
- 10,000 changes: every event exactly once, in zxid order; a stream whose
  identity may not READ part of the tree hears nothing of that part;
- a consumer that never reads is cut off with 1008 while the server's
  memory stays flat;
- from_zxid replays exactly the changes missed, then "sync"; older than
  what the server holds (here: before its restart), "resync";
- a stream on a follower sees writes made through the leader;
- bad requests: no upgrade 426, bad parameters 400, foreign Origin 403,
  unknown token 401.
"""

import collections
import json
import os
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ctest_main  # noqa: E402
from coordd_harness import Coordd, CoorddCluster, basic_auth, digest_id  # noqa: E402
from wsclient import Closed, HandshakeRefused, WebSocket  # noqa: E402

try:
    from kazoo.client import KazooClient
    from kazoo.security import make_digest_acl
except ImportError:  # pragma: no cover - reported as a skip
    KazooClient = None

ALICE = ("alice", "alice-pw")
BOB = ("bob", "bob-pw")
WAIT_S = 20.0
MiB = 1024 * 1024


def post(port, path, body="{}", headers=None):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        h = {"Content-Type": "application/json"}
        h.update(headers or {})
        c.request("POST", path, body=body, headers=h)
        r = c.getresponse()
        data = r.read()
        return r.status, json.loads(data) if data else None
    finally:
        c.close()


def get(port, path, headers=None):
    import http.client
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
    try:
        c.request("GET", path, headers=headers or {})
        r = c.getresponse()
        return r.status, dict(r.getheaders()), r.read().decode(errors="replace")
    finally:
        c.close()


def login(port, auth=None):
    headers = {"Authorization": basic_auth(auth)} if auth else {}
    status, body = post(port, "/v1/auth/login", headers=headers)
    assert status == 200, (status, body)
    return body["token"]


def metric(port, name):
    _, _, text = get(port, "/metrics")
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("no metric " + name)


def rss_bytes(pid):
    """The process's anonymous resident memory (RssAnon): its heap, not the
    pages of the log's memory-mapped file, which grow with every write."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no RssAnon in /proc/%d/status" % pid)


def kazoo(hosts, auth=None):
    k = KazooClient(hosts=hosts, timeout=10.0,
                    auth_data=[("digest", "%s:%s" % auth)] if auth else None,
                    connection_retry=dict(max_tries=-1, delay=0.05, backoff=1.5, max_delay=0.5),
                    command_retry=dict(max_tries=0))
    k.start(timeout=WAIT_S)
    return k


def stream(port, path="/", token=None, recursive=None, from_zxid=None, headers=None, **kw):
    q = ["path=" + path]
    if recursive is not None:
        q.append("recursive=%d" % recursive)
    if from_zxid is not None:
        q.append("from_zxid=%d" % from_zxid)
    if token is not None:
        q.append("token=" + token)
    return WebSocket.connect(port, "/v1/events?" + "&".join(q), headers=headers, **kw)


class Collector(threading.Thread):
    """Reads a stream until `count` events arrived or the time is up."""

    def __init__(self, ws, count, timeout_s):
        super().__init__(daemon=True)
        self.ws, self.count, self.timeout_s = ws, count, timeout_s
        self.events = []
        self.error = None

    def run(self):
        deadline = time.monotonic() + self.timeout_s
        try:
            while len(self.events) < self.count and time.monotonic() < deadline:
                try:
                    self.events.append(self.ws.recv_json(timeout_s=1.0))
                except TimeoutError:
                    continue
        except Exception as e:  # noqa: BLE001 - reported by the test
            self.error = e


def skip_without_kazoo(test):
    if KazooClient is None:
        test.skipTest("kazoo is not installed for /usr/bin/python3")


class EventStream(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Coordd()
        try:
            cls.server.start()
        except Exception:
            cls.server.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def setUp(self):
        skip_without_kazoo(self)
        self.zk = kazoo("127.0.0.1:%d" % self.server.port)
        self.addCleanup(self.zk.close)
        self.addCleanup(self.zk.stop)

    def open(self, *a, **kw):
        ws = stream(self.server.http_port, *a, **kw)
        self.addCleanup(ws.close)
        return ws

    def test_kazoo_changes_arrive_with_zxid_type_path_and_stat(self):
        ws = self.open("/ev")
        flat = self.open("/ev", recursive=0)
        first = ws.recv_json()
        self.assertEqual(first["type"], "sync")
        self.assertEqual(flat.recv_json()["type"], "sync")
        _, st_ev = self.zk.create("/ev", b"x", include_data=True)
        _, st_a = self.zk.create("/ev/a", b"1", include_data=True)
        st_set = self.zk.set("/ev/a", b"22")
        self.zk.delete("/ev/a")
        deleted_zxid = self.zk.exists("/ev").pzxid
        got = [ws.recv_json() for _ in range(4)]
        self.assertEqual([(e["type"], e["path"], e["zxid"]) for e in got], [
            ("created", "/ev", st_ev.czxid),
            ("created", "/ev/a", st_a.czxid),
            ("changed", "/ev/a", st_set.mzxid),
            ("deleted", "/ev/a", deleted_zxid)])
        self.assertGreater(st_ev.czxid, first["zxid"])
        self.assertEqual(got[0]["stat"]["czxid"], st_ev.czxid)
        self.assertEqual(got[1]["stat"]["dataLength"], 1)
        self.assertEqual(got[2]["stat"]["version"], 1)
        self.assertEqual(got[2]["stat"]["dataLength"], 2)
        self.assertEqual(got[2]["stat"]["mzxid"], st_set.mzxid)
        self.assertIsNone(got[3]["stat"])
        # recursive=0: the node itself, and its list of children.
        got = [flat.recv_json() for _ in range(3)]
        self.assertEqual([(e["type"], e["path"], e["zxid"]) for e in got], [
            ("created", "/ev", st_ev.czxid),
            ("children", "/ev", st_a.czxid),
            ("children", "/ev", deleted_zxid)])
        self.assertEqual(got[1]["stat"]["numChildren"], 1)
        self.assertEqual(got[2]["stat"]["numChildren"], 0)
        self.assertGreater(metric(self.server.http_port, "coord_event_streams"), 1)
        self.assertGreaterEqual(metric(self.server.http_port, "coord_events_sent_total"), 7)

    def test_a_multi_and_a_session_close_fire_their_events(self):
        ws = self.open("/mu")
        ws.recv_json()
        self.zk.create("/mu")
        t = self.zk.transaction()
        t.create("/mu/a")
        t.create("/mu/b")
        t.set_data("/mu", b"m")
        results = t.commit()
        self.assertEqual(results[:2], ["/mu/a", "/mu/b"])
        zxid = self.zk.exists("/mu").mzxid
        other = kazoo("127.0.0.1:%d" % self.server.port)
        other.create("/mu/eph", ephemeral=True)
        other.stop()
        other.close()
        got = [ws.recv_json() for _ in range(6)]
        kinds = [(e["type"], e["path"]) for e in got]
        self.assertEqual(kinds[0], ("created", "/mu"))
        self.assertEqual(sorted(kinds[1:4]), [("changed", "/mu"), ("created", "/mu/a"),
                                              ("created", "/mu/b")])
        self.assertEqual({e["zxid"] for e in got[1:4]}, {zxid})
        self.assertEqual(kinds[4:], [("created", "/mu/eph"), ("deleted", "/mu/eph")])
        self.assertLess(got[4]["zxid"], got[5]["zxid"])

    def test_ten_thousand_changes_in_order_and_none_without_read(self):
        admin = self.zk
        admin.add_auth("digest", "%s:%s" % ALICE)
        alice_only = [make_digest_acl(*ALICE, all=True)]
        admin.create("/load")
        admin.create("/load/open")
        admin.create("/load/secret", acl=alice_only)
        alice = self.open("/load", token=login(self.server.http_port, ALICE))
        bob = self.open("/load", token=login(self.server.http_port, BOB))
        self.assertEqual(alice.recv_json()["type"], "sync")
        self.assertEqual(bob.recv_json()["type"], "sync")
        n = 5000
        ca = Collector(alice, 2 * n, 50.0)
        cb = Collector(bob, n, 50.0)
        ca.start()
        cb.start()
        started = time.monotonic()
        pending = []
        for i in range(n):
            pending.append(admin.create_async("/load/open/n%05d" % i, include_data=True))
            pending.append(admin.create_async("/load/secret/n%05d" % i, acl=alice_only,
                                              include_data=True))
        made = {}
        for p in pending:
            path, st = p.get(timeout=WAIT_S)
            made[path] = st.czxid
        ca.join(WAIT_S + 30)
        cb.join(WAIT_S)
        print("%d changes streamed in %.1f s" % (2 * n, time.monotonic() - started))
        self.assertIsNone(ca.error)
        self.assertIsNone(cb.error)
        self.assertEqual(len(ca.events), 2 * n)
        zxids = [e["zxid"] for e in ca.events]
        self.assertEqual(zxids, sorted(zxids))
        self.assertEqual(len(set(zxids)), 2 * n, "an event came twice")
        self.assertEqual({e["path"]: e["zxid"] for e in ca.events}, made)
        self.assertTrue(all(e["type"] == "created" for e in ca.events))
        # Bob may not READ /load/secret's nodes: not one of their events.
        self.assertEqual(len(cb.events), n)
        self.assertEqual({e["path"] for e in cb.events},
                         {p for p in made if p.startswith("/load/open/")})
        # Nothing more was on its way to bob.
        admin.set("/load/open", b"after")
        last = bob.recv_json()
        self.assertEqual((last["type"], last["path"]), ("changed", "/load/open"))

    def test_resume_replays_exactly_what_was_missed_then_sync(self):
        ws = stream(self.server.http_port, "/res")
        z0 = ws.recv_json()["zxid"]
        ws.close()
        _, a = self.zk.create("/res", include_data=True)
        b = self.zk.set("/res", b"v")
        self.zk.create("/elsewhere-res")
        _, c = self.zk.create("/res/c", include_data=True)
        self.zk.delete("/res/c")
        dz = self.zk.exists("/res").pzxid
        back = self.open("/res", from_zxid=z0)
        got = [back.recv_json() for _ in range(5)]
        self.assertEqual([(e["type"], e["path"], e["zxid"]) for e in got[:4]], [
            ("created", "/res", a.czxid), ("changed", "/res", b.mzxid),
            ("created", "/res/c", c.czxid), ("deleted", "/res/c", dz)])
        self.assertEqual(got[4], {"type": "sync", "zxid": got[4]["zxid"]})
        self.assertGreaterEqual(got[4]["zxid"], dz)
        # Then live, with nothing in between.
        st = self.zk.set("/res", b"w")
        live = back.recv_json()
        self.assertEqual((live["type"], live["zxid"]), ("changed", st.mzxid))
        # From the middle: only what came after.
        mid = self.open("/res", from_zxid=b.mzxid)
        self.assertEqual([mid.recv_json()["zxid"] for _ in range(4)][:3],
                         [c.czxid, dz, st.mzxid])

    def test_a_client_ahead_of_the_server_is_not_told_twice(self):
        # As after moving from a server that was further on to one that
        # lags: changes up to from_zxid are the client's already.
        probe = stream(self.server.http_port, "/fut")
        z0 = probe.recv_json()["zxid"]
        probe.close()
        ahead = self.open("/fut", from_zxid=z0 + 2)
        self.assertEqual(ahead.recv_json(), {"type": "sync", "zxid": z0 + 2})
        _, a = self.zk.create("/fut", include_data=True)
        b = self.zk.set("/fut", b"1")
        c = self.zk.set("/fut", b"2")
        self.assertLessEqual(b.mzxid, z0 + 2, "another write came between")
        ev = ahead.recv_json()
        self.assertEqual((ev["type"], ev["zxid"]), ("changed", c.mzxid))
        self.assertGreater(a.czxid, z0)

    def test_bad_requests(self):
        port = self.server.http_port
        status, headers, body = get(port, "/v1/events?path=/")
        self.assertEqual(status, 426, body)
        self.assertEqual(headers.get("Upgrade"), "websocket")
        for bad in ("path=relative", "path=/a/", "recursive=2", "from_zxid=-1", "colour=red",
                    "path=%zz"):
            with self.assertRaises(HandshakeRefused, msg=bad) as e:
                WebSocket.connect(port, "/v1/events?" + bad)
            self.assertEqual(e.exception.status, 400, bad)
            self.assertEqual(json.loads(e.exception.body)["error"], "BadArguments")
        with self.assertRaises(HandshakeRefused) as e:
            stream(port, "/", headers={"Origin": "https://evil.example"})
        self.assertEqual(e.exception.status, 403)
        with self.assertRaises(HandshakeRefused) as e:
            stream(port, "/", token="0" * 32)
        self.assertEqual(e.exception.status, 401)
        self.assertEqual(json.loads(e.exception.body)["code"], -112)
        # The server's own origin is welcome.
        ok = self.open("/", headers={"Origin": "http://127.0.0.1:%d" % port})
        self.assertEqual(ok.recv_json()["type"], "sync")
        self.assertEqual(get(port, "/healthz")[0], 200)


class StalledConsumer(unittest.TestCase):
    """A consumer that never reads is cut off with 1008 and the server's
    memory stays flat."""

    def setUp(self):
        skip_without_kazoo(self)
        # Freed memory goes back to the allocator at once, and from it to
        # the system (AddressSanitizer would hold it in quarantine, and its
        # allocator would keep it, which is not what is measured here).
        old = os.environ.get("ASAN_OPTIONS")
        os.environ["ASAN_OPTIONS"] = ((old + ":" if old else "") + "quarantine_size_mb=1"
                                      ":allocator_release_to_os_interval_ms=0")
        self.server = Coordd()
        try:
            self.server.start()
        finally:
            if old is None:
                del os.environ["ASAN_OPTIONS"]
            else:
                os.environ["ASAN_OPTIONS"] = old
        self.addCleanup(self.server.cleanup)
        self.zk = kazoo("127.0.0.1:%d" % self.server.port)
        self.addCleanup(self.zk.close)
        self.addCleanup(self.zk.stop)

    def churn(self, path, count, window=500):
        # At most `window` writes in flight: the server holds a session's
        # waiting requests (up to 10,000, ~10 MiB of these), which is the
        # client's doing and not what is measured here.
        pending = collections.deque()
        for i in range(count):
            pending.append(self.zk.set_async(path, b"%d" % i))
            if len(pending) >= window:
                pending.popleft().get(timeout=WAIT_S)
        for p in pending:
            p.get(timeout=WAIT_S)

    def test_stalled_consumer_is_cut_off_and_memory_stays_flat(self):
        # Long paths make long messages: ~1 KiB each.
        path = "/stall/" + "n" * 900
        self.zk.create(path, makepath=True)
        # While streams are open the server keeps recent changes for
        # resumes (a few MiB at most), and the allocators of its threads
        # keep what their largest batches took: fill both first. Then the
        # same writes once more without the stalled stream, as the control
        # of what they cost alone, so that what is compared is the stalled
        # stream itself.
        first = stream(self.server.http_port, "/elsewhere")
        self.assertEqual(first.recv_json()["type"], "sync")
        first.close()
        count = 12000  # ~12 MiB of messages, were they all kept
        self.churn(path, count)
        rss0 = rss_bytes(self.server.proc.pid)
        self.churn(path, count)
        control = rss_bytes(self.server.proc.pid) - rss0
        rss1 = rss_bytes(self.server.proc.pid)
        stalled = stream(self.server.http_port, "/stall", rcvbuf=4096)
        self.addCleanup(stalled.close)
        self.churn(path, count)
        deadline = time.monotonic() + WAIT_S
        while (metric(self.server.http_port, "coord_event_streams_cut_slow_total") < 1
               and time.monotonic() < deadline):
            time.sleep(0.05)
        grew = rss_bytes(self.server.proc.pid) - rss1
        print("stalled consumer: RSS grew %.1f MiB over %d changes of ~1 KiB, %.1f MiB without it"
              % (grew / MiB, count, control / MiB))
        self.assertEqual(metric(self.server.http_port, "coord_event_streams_cut_slow_total"), 1)
        # Kept whole, the messages alone would take over 12 MiB. The
        # stream's queue holds at most 1 MiB, which is what a release build
        # shows; a sanitizer build's allocator keeps more of the bursts the
        # stream's messages took.
        self.assertLess(grew - max(control, 0), 8 * MiB)
        # Reading now, it finds what was written to it, then the close.
        received = 0
        with self.assertRaises(Closed) as e:
            for _ in range(count + 1):
                stalled.recv(timeout_s=10.0)
                received += 1
        self.assertEqual(e.exception.code, 1008)
        self.assertIn("too slow", e.exception.reason)
        self.assertLess(received, count)
        self.assertEqual(metric(self.server.http_port, "coord_event_streams"), 0)
        # The server serves on, and so do the streams that read.
        ws = stream(self.server.http_port, "/stall")
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv_json()["type"], "sync")
        self.zk.set(path, b"x")
        self.assertEqual(ws.recv_json()["type"], "changed")


class ResumeAcrossRestart(unittest.TestCase):
    def test_from_zxid_older_than_the_servers_history_gets_resync(self):
        skip_without_kazoo(self)
        server = Coordd()
        self.addCleanup(server.cleanup)
        server.start()
        zk = kazoo("127.0.0.1:%d" % server.port)
        zk.create("/r", b"1")
        ws = stream(server.http_port, "/r")
        z0 = ws.recv_json()["zxid"]
        ws.close()
        zk.set("/r", b"2")
        zk.stop()
        zk.close()
        server.terminate()
        server.start()
        # A session opens only once the restarted server has applied its log
        # again: from then on z0 is older than anything it holds. (Before, a
        # stream from z0 is told "sync" at z0, and gets the changes after it
        # as the server applies them.)
        zk = kazoo("127.0.0.1:%d" % server.port)
        self.addCleanup(zk.close)
        self.addCleanup(zk.stop)
        self.assertEqual(zk.get("/r")[0], b"2")
        ws = stream(server.http_port, "/r", from_zxid=z0)
        self.addCleanup(ws.close)
        first = ws.recv_json()
        self.assertEqual(first["type"], "resync")
        self.assertGreater(first["zxid"], z0)
        # Live events follow.
        st = zk.set("/r", b"3")
        ev = ws.recv_json()
        self.assertEqual((ev["type"], ev["zxid"]), ("changed", st.mzxid))


class OnAFollower(unittest.TestCase):
    def test_a_stream_on_a_follower_sees_writes_through_the_leader(self):
        skip_without_kazoo(self)
        cluster = CoorddCluster(size=3)
        self.addCleanup(cluster.cleanup)
        cluster.start()
        leader = cluster.wait_leader()
        follower = next(s for s in cluster.live() if s != leader)
        ws = stream(cluster.servers[follower].http_port, "/fo")
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv_json()["type"], "sync")
        zk = kazoo("127.0.0.1:%d" % cluster.port(leader))
        self.addCleanup(zk.close)
        self.addCleanup(zk.stop)
        _, st = zk.create("/fo", b"x", include_data=True)
        st2 = zk.set("/fo", b"y")
        got = [ws.recv_json(timeout_s=WAIT_S) for _ in range(2)]
        self.assertEqual([(e["type"], e["zxid"]) for e in got],
                         [("created", st.czxid), ("changed", st2.mzxid)])
        self.assertEqual(got[1]["stat"]["version"], 1)


class OverTls(unittest.TestCase):
    def test_a_stream_over_https(self):
        from tls_support import OPENSSL, Pki, TlsCoordd, tls_args
        if not OPENSSL:
            self.skipTest("the openssl command is needed to make test certificates")
        pki = Pki()
        self.addCleanup(pki.cleanup)
        pki.make_cert("server", "/CN=coordd", server=True)
        server = TlsCoordd(pki, plain=True, extra_args=tls_args(pki) + ["--http-tls"])
        self.addCleanup(server.cleanup)
        server.start()
        ctx = server.client_context()
        own = "https://127.0.0.1:%d" % server.http_port
        ws = WebSocket.connect(server.http_port, "/v1/events?path=/t", ssl_context=ctx,
                               headers={"Origin": own})
        self.addCleanup(ws.close)
        self.assertEqual(ws.recv_json()["type"], "sync")
        import urllib.request
        req = urllib.request.Request(own + "/v1/znodes/t", data=b"over tls", method="PUT",
                                     headers={"Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
            self.assertEqual(r.status, 201)
        ev = ws.recv_json()
        self.assertEqual((ev["type"], ev["path"], ev["stat"]["dataLength"]), ("created", "/t", 8))
        # The same host over plain http is another origin.
        with self.assertRaises(HandshakeRefused) as e:
            WebSocket.connect(server.http_port, "/v1/events", ssl_context=ctx,
                              headers={"Origin": own.replace("https:", "http:")})
        self.assertEqual(e.exception.status, 403)


if __name__ == "__main__":
    ctest_main.main()
