"""The REST API against a real coordd: every request acts with its caller's
identity (ip:<caller address>), and a request too large for one frame is
refused with 413 without disturbing anything else.

coordd listens on 127.0.0.1; requests come from 127.0.0.1 and, through the
source address, from 127.0.0.2 (the whole 127/8 block is loopback on Linux).
"""

import http.client
import json
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zkwire as zw  # noqa: E402
import ctest_main
from coordd_harness import Coordd  # noqa: E402

ALL = 31
READ = 1


def rest(port, method, path, body=None, source="127.0.0.1"):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=20, source_address=(source, 0))
    try:
        c.request(method, "/v1/znodes" + path, body=body)
        r = c.getresponse()
        data = r.read()
        return r.status, (json.loads(data) if data else None)
    finally:
        c.close()


class RestApi(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Coordd()
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

    def create(self, path, data, acl):
        _, f = self.zk.call(zw.CREATE, zw.create_body(path, data, acl=acl))
        self.assertEqual(f.err, 0, path)

    def data_of(self, path):
        _, f = self.zk.call(zw.GET_DATA, zw.path_watch_body(path))
        self.assertEqual(f.err, 0, path)
        return zw.Reader(f.body).buffer()

    def exists(self, path):
        _, f = self.zk.call(zw.EXISTS, zw.path_watch_body(path))
        return f.err == 0

    def test_ip_acl_binds_rest_writes_to_the_caller(self):
        port = self.server.http_port
        # Only 127.0.0.1 may touch /only-one (the ZooKeeper client here is
        # at 127.0.0.1 too); only 127.0.0.2 may touch /only-two.
        self.create("/only-one", b"orig", [(ALL, "ip", "127.0.0.1")])
        self.create("/only-two", b"orig", [(ALL, "ip", "127.0.0.2")])

        status, _ = rest(port, "GET", "/only-one", source="127.0.0.2")
        self.assertEqual(status, 403)
        status, body = rest(port, "PUT", "/only-one", b"from two", source="127.0.0.2")
        self.assertEqual((status, body and body.get("error")), (403, "NoAuth"))
        status, body = rest(port, "PUT", "/only-one/child", b"x", source="127.0.0.2")
        self.assertEqual((status, body and body.get("error")), (403, "NoAuth"))
        self.assertEqual(self.data_of("/only-one"), b"orig")
        self.assertFalse(self.exists("/only-one/child"))

        # The same requests from the address the ACL names go through.
        status, _ = rest(port, "PUT", "/only-one", b"from one", source="127.0.0.1")
        self.assertEqual(status, 200)
        status, _ = rest(port, "PUT", "/only-one/child", b"x", source="127.0.0.1")
        self.assertEqual(status, 201)
        self.assertEqual(self.data_of("/only-one"), b"from one")
        status, _ = rest(port, "DELETE", "/only-one/child", source="127.0.0.2")
        self.assertEqual(status, 403)
        self.assertTrue(self.exists("/only-one/child"))

        # And the other way round: coordd's own address is no pass.
        status, _ = rest(port, "PUT", "/only-two", b"from one", source="127.0.0.1")
        self.assertEqual(status, 403)
        status, _ = rest(port, "PUT", "/only-two", b"from two", source="127.0.0.2")
        self.assertEqual(status, 200)
        status, body = rest(port, "GET", "/only-two", source="127.0.0.2")
        self.assertEqual((status, body["data"]), (200, "from two"))

    def test_read_only_acl_refuses_rest_writes(self):
        port = self.server.http_port
        self.create("/read-only", b"orig", [(READ, "world", "anyone")])
        status, body = rest(port, "GET", "/read-only", source="127.0.0.2")
        self.assertEqual((status, body["data"]), (200, "orig"))
        status, _ = rest(port, "PUT", "/read-only", b"changed", source="127.0.0.2")
        self.assertEqual(status, 403)
        status, _ = rest(port, "PUT", "/read-only/kid", b"x", source="127.0.0.1")
        self.assertEqual(status, 403)
        self.assertEqual(self.data_of("/read-only"), b"orig")

    def test_put_too_large_for_one_frame_is_413_and_nothing_else_notices(self):
        port = self.server.http_port
        status, _ = rest(port, "PUT", "/big", b"a")
        self.assertEqual(status, 201)
        # A watch held by a bystander session must not fire, nor the
        # session notice anything.
        _, f = self.zk.call(zw.GET_DATA, zw.path_watch_body("/big", watch=True))
        self.assertEqual(f.err, 0)
        for size in (1024 * 1024, 1024 * 1024 - 8, 1024 * 1024 + 1):
            status, body = rest(port, "PUT", "/big", b"b" * size)
            self.assertEqual(status, 413, size)
            self.assertEqual(body["error"], "BadArguments")
            status, body = rest(port, "PUT", "/big-new", b"b" * size)
            self.assertEqual(status, 413, size)
        # The REST session of this caller still works, right away.
        status, _ = rest(port, "PUT", "/big", b"c")
        self.assertEqual(status, 200)
        status, body = rest(port, "GET", "/big")
        self.assertEqual((status, body["data"]), (200, "c"))
        # The one change the bystander saw is the last PUT's (the event
        # comes before the reply to its next request).
        events, f = self.zk.call(zw.EXISTS, zw.path_watch_body("/big-new"))
        self.assertEqual(f.err, zw.NO_NODE)
        self.assertEqual([e.event()[2] for e in events], ["/big"])
        # The largest data that fits in a frame is stored.
        fits = 1024 * 1024 - 64
        status, _ = rest(port, "PUT", "/big", b"d" * fits)
        self.assertEqual(status, 200)
        self.assertEqual(len(self.data_of("/big")), fits)


if __name__ == "__main__":
    ctest_main.main()
