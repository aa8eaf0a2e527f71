"""Bad input over raw sockets against coordd: broken frames, lying lengths,
oversized frames, truncated handshakes, garbage, unknown opcodes, records that
do not decode, many connections from one address.

Each case checks ZooKeeper's answer (an error reply, or a closed connection
for a broken frame), and after each case that the server is still up, that a
bystander session opened before the case did not notice, and that a fresh
client still works.
"""

import os
import random
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ctest_main  # noqa: E402
import zkwire as zw  # noqa: E402
from coordd_harness import Coordd, four_letter  # noqa: E402

CLOSE_WAIT_S = 5.0


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def request(xid, opcode, body=b""):
    return frame(struct.pack(">ii", xid, opcode) + body)


class BadInput(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Coordd()
        try:
            cls.server.start()
            cls.port = cls.server.port
            cls.bystander = zw.Conn(cls.port)
            cls.bystander.handshake(timeout_ms=40000)
            _, f = cls.bystander.call(zw.CREATE, zw.create_body("/bystander", b"here"))
            assert f.err == 0, f
        except Exception:
            cls.server.cleanup()
            raise
        cls.counter = 0

    @classmethod
    def tearDownClass(cls):
        cls.bystander.close()
        cls.server.cleanup()

    def tearDown(self):
        self.assert_healthy()

    # -- helpers ----------------------------------------------------------
    def assert_healthy(self):
        self.assertIsNone(self.server.proc.poll(), "coordd died:\n" + self.server.log()[-3000:])
        events, f = self.bystander.call(zw.GET_DATA, zw.path_watch_body("/bystander"))
        self.assertEqual((f.err, events), (0, []), "bystander noticed")
        self.assertEqual(zw.Reader(f.body).buffer(), b"here")
        BadInput.counter += 1
        c = self.session()
        path = "/fresh-%d" % BadInput.counter
        _, f = c.call(zw.CREATE, zw.create_body(path, b"ok"))
        self.assertEqual(f.err, 0)
        _, f = c.call(zw.GET_DATA, zw.path_watch_body(path))
        self.assertEqual((f.err, zw.Reader(f.body).buffer()), (0, b"ok"))
        _, f = c.call(zw.DELETE, zw.path_version_body(path))
        self.assertEqual(f.err, 0)
        _, f = c.call(zw.CLOSE_SESSION)
        self.assertEqual(f.err, 0)
        c.close()

    def raw(self):
        c = zw.Conn(self.port)
        self.addCleanup(c.close)
        return c

    def session(self):
        c = self.raw()
        r = c.handshake()
        self.assertNotEqual(r["sessionId"], 0)
        return c

    def assert_closed(self, c, why):
        self.assertTrue(c.is_closed(CLOSE_WAIT_S), "connection not closed after " + why)

    def assert_error_or_closed(self, c, xid, err, why):
        """ZooKeeper answers some undecodable records with an error and closes
        on others; either is fine, anything else is not."""
        try:
            f = c.read_frame(CLOSE_WAIT_S)
        except zw.Closed:
            return "closed"
        except TimeoutError:
            self.fail("no reply and no close after " + why)
        self.assertEqual((f.xid, f.err), (xid, err), why)
        return "error"

    def send_quietly(self, c, data):
        try:
            c.send_raw(data)
        except OSError:
            pass  # the server may close before reading it all

    # -- framing ----------------------------------------------------------
    def test_negative_length_before_handshake(self):
        c = self.raw()
        c.send_raw(struct.pack(">i", -16) + b"x" * 16)
        self.assert_closed(c, "negative handshake length")

    def test_negative_length_after_handshake(self):
        for n in (-1, -2, -(1 << 31)):
            c = self.session()
            c.send_raw(struct.pack(">i", n) + b"\x00" * 8)
            self.assert_closed(c, "frame length %d" % n)

    def test_zero_length_frame_after_handshake(self):
        c = self.session()
        c.send_raw(struct.pack(">i", 0))
        outcome = self.assert_error_or_closed(c, 0, zw.MARSHALLING_ERROR, "empty frame")
        if outcome == "error":
            _, f = c.call(zw.EXISTS, zw.path_watch_body("/"))
            self.assertEqual(f.err, 0)

    def test_two_mib_frame_closes_only_that_connection(self):
        c = self.session()
        payload = struct.pack(">ii", 1, zw.CREATE) + zw.create_body("/too-big", b"x" * (2 << 20))
        self.send_quietly(c, frame(payload))
        self.assert_closed(c, "2 MiB frame")
        _, f = self.bystander.call(zw.EXISTS, zw.path_watch_body("/too-big"))
        self.assertEqual(f.err, zw.NO_NODE)

    def test_frame_one_byte_over_the_limit(self):
        c = self.session()
        self.send_quietly(c, struct.pack(">i", 0xFFFFF + 1) + b"\x00" * 4096)
        self.assert_closed(c, "frame of 0x100000 bytes")

    def test_oversized_handshake(self):
        c = self.raw()
        self.send_quietly(c, struct.pack(">i", 2 << 20) + b"\x00" * 4096)
        self.assert_closed(c, "2 MiB handshake")

    def test_length_longer_than_payload_then_hang_up(self):
        c = self.session()
        c.send_raw(struct.pack(">i", 100) + struct.pack(">ii", 1, zw.GET_DATA) + b"\x00\x00")
        with self.assertRaises(TimeoutError):
            c.read_frame(0.3)
        self.assert_healthy()  # a half-sent frame stalls nobody else
        c.close()

    def test_length_shorter_than_record(self):
        # getData whose frame ends inside the path string.
        c = self.session()
        body = zw.path_watch_body("/bystander")
        c.send_raw(frame(struct.pack(">ii", 7, zw.GET_DATA) + body[:6]))
        self.assert_error_or_closed(c, 7, zw.MARSHALLING_ERROR, "truncated getData record")

    def test_length_shorter_than_payload_rest_is_garbage(self):
        c = self.session()
        body = zw.create_body("/lying-length", b"data")
        c.send_raw(frame(struct.pack(">ii", 3, zw.CREATE) + body[:10]) + body[10:])
        try:
            while True:
                f = c.read_frame(1.0)
                self.assertNotEqual(f.err, 0, "a lying frame was executed: %r" % f)
        except (zw.Closed, TimeoutError):
            pass
        _, f = self.bystander.call(zw.EXISTS, zw.path_watch_body("/lying-length"))
        self.assertEqual(f.err, zw.NO_NODE)

    def test_request_header_cut_short(self):
        c = self.session()
        c.send_raw(frame(b"\x00\x00\x00\x01\x00\x00"))
        self.assert_error_or_closed(c, 1, zw.MARSHALLING_ERROR, "6-byte request header")

    # -- handshake --------------------------------------------------------
    def test_truncated_handshake_then_hang_up(self):
        c = self.raw()
        c.send_raw(struct.pack(">i", 45) + zw.connect_body()[:10])
        with self.assertRaises(TimeoutError):
            c.read_frame(0.3)
        c.close()

    def test_handshake_record_too_short(self):
        c = self.raw()
        c.send_raw(frame(zw.connect_body()[:20]))
        self.assert_closed(c, "20-byte ConnectRequest")

    def test_handshake_with_bad_password_length(self):
        for pw in (b"", b"\x00" * 15, b"\x00" * 17, b"\x00" * 4096):
            c = self.raw()
            c.send_raw(frame(zw.connect_body(passwd=pw)))
            try:
                r = zw.Reader(c.read_frame_bytes(CLOSE_WAIT_S))
                r.int()
                timeout, sid = r.int(), r.long()
                self.assertEqual(len(r.buffer() or b""), 16, "password in reply always 16 bytes")
                self.assertEqual(timeout > 0, sid != 0, "a granted session has a timeout")
                if sid != 0:
                    # Accepted as a new session: it must work.
                    _, f = c.call(zw.EXISTS, zw.path_watch_body("/"))
                    self.assertEqual(f.err, 0)
                    c.call(zw.CLOSE_SESSION)
            except zw.Closed:
                pass
            c.close()

    def test_handshake_with_trailing_garbage(self):
        c = self.raw()
        c.send_raw(frame(zw.connect_body() + b"\x07" * 64))
        try:
            r = zw.Reader(c.read_frame_bytes(CLOSE_WAIT_S))
            self.assertIn(len(r.data), (36, 37))
        except zw.Closed:
            pass

    def test_requests_pipelined_behind_the_handshake(self):
        c = self.raw()
        c.send_raw(frame(zw.connect_body()) + request(1, zw.EXISTS, zw.path_watch_body("/bystander"))
                   + request(2, zw.GET_DATA, zw.path_watch_body("/bystander")))
        self.assertEqual(len(c.read_frame_bytes()), 37)
        f1, f2 = c.read_frame(), c.read_frame()
        self.assertEqual((f1.xid, f1.err, f2.xid, f2.err), (1, 0, 2, 0))

    def test_unknown_four_letter_word(self):
        c = self.raw()
        c.send_raw(b"xyzw")
        self.assert_closed(c, "unknown 4lw")
        self.assertEqual(four_letter(self.port, "ruok"), "imok")

    # -- garbage ----------------------------------------------------------
    def test_garbage_after_handshake(self):
        rng = random.Random(5)
        for _ in range(5):
            c = self.session()
            blob = bytes(rng.getrandbits(8) for _ in range(rng.randint(1, 3000)))
            self.send_quietly(c, blob)
            deadline = time.monotonic() + CLOSE_WAIT_S
            try:  # answers (errors), a close or silence are all fine
                while time.monotonic() < deadline:
                    c.read_frame(0.2)
            except (zw.Closed, TimeoutError, zw.DecodeError):
                pass
            c.close()

    def test_garbage_frames_of_every_size(self):
        rng = random.Random(7)
        c = self.session()
        for n in range(8, 64):
            body = struct.pack(">ii", n, rng.choice([1, 2, 4, 5, 6, 7, 12, 14, 15, 19, 21, 22,
                                                     101, 103, 104, 105, 106]))
            body += bytes(rng.getrandbits(8) for _ in range(n))
            try:
                c.send_frame(body)
                f = c.read_frame(CLOSE_WAIT_S)
            except TimeoutError:
                self.fail("no answer and no close for a garbage frame of %d bytes" % n)
            except (zw.Closed, OSError):
                c = self.session()
                continue
            self.assertEqual(f.xid, n)

    # -- opcodes and records ----------------------------------------------
    def test_unknown_opcodes_close_the_connection(self):
        """As ZooKeeper 3.8: Unimplemented with zxid -1, then the close; a
        request sent behind it is not run."""
        for op in (99, 10, 0, -1, 23, 99999, -100, -12, (1 << 31) - 1):
            c = self.session()
            c.send_request(op, b"\x00" * 8, xid=5)
            c.send_request(zw.CREATE, zw.create_body("/after-unknown"), xid=6)
            f = c.read_frame(CLOSE_WAIT_S)
            self.assertEqual((f.xid, f.zxid, f.err, f.body), (5, -1, zw.UNIMPLEMENTED, b""),
                             "opcode %d" % op)
            self.assert_closed(c, "unknown opcode %d" % op)
        _, f = self.bystander.call(zw.EXISTS, zw.path_watch_body("/after-unknown"))
        self.assertEqual(f.err, zw.NO_NODE)

    def test_second_handshake_closes_the_connection(self):
        c = self.session()
        c.send_frame(zw.connect_body())
        f = c.read_frame(CLOSE_WAIT_S)
        self.assertEqual((f.xid, f.zxid, f.err), (0, -1, zw.UNIMPLEMENTED))
        self.assert_closed(c, "a second ConnectRequest")

    def check_undecodable(self, opcode, body, why, must_not_exist=None):
        c = self.session()
        c.send_request(opcode, body, xid=11)
        outcome = self.assert_error_or_closed(c, 11, zw.MARSHALLING_ERROR, why)
        if outcome == "error":
            _, f = c.call(zw.EXISTS, zw.path_watch_body("/bystander"))
            self.assertEqual(f.err, 0, "connection unusable after " + why)
        if must_not_exist:
            _, f = self.bystander.call(zw.EXISTS, zw.path_watch_body(must_not_exist))
            self.assertEqual(f.err, zw.NO_NODE, why + " created a node")

    def test_string_length_negative(self):
        self.check_undecodable(zw.GET_DATA, struct.pack(">i", -7) + b"\x00", "path length -7")

    def test_string_length_beyond_frame(self):
        self.check_undecodable(zw.GET_DATA, struct.pack(">i", 1000) + b"/abc\x00",
                               "path length past the frame")

    def test_create_acl_count_huge(self):
        body = zw.Writer().ustring("/acl-huge").buffer(b"").int((1 << 31) - 1).bytes()
        self.check_undecodable(zw.CREATE, body, "ACL count 2^31-1", "/acl-huge")

    def test_create_missing_flags(self):
        body = zw.Writer().ustring("/no-flags").buffer(b"").acls(zw.OPEN_ACL).bytes()
        self.check_undecodable(zw.CREATE, body, "create without flags", "/no-flags")

    def test_multi_without_terminator(self):
        body = zw.Writer().int(zw.CREATE).bool(False).int(-1) \
            .raw(zw.create_body("/multi-unterminated")).bytes()
        self.check_undecodable(zw.MULTI, body, "multi without end marker", "/multi-unterminated")

    def test_multi_with_unknown_op_type(self):
        body = zw.Writer().int(77).bool(False).int(-1).raw(zw.path_version_body("/x")) \
            .int(-1).bool(True).int(-1).bytes()
        self.check_undecodable(zw.MULTI, body, "multi with op type 77")

    def test_set_watches_negative_count(self):
        body = zw.Writer().long(0).int(-5).bytes()
        c = self.session()
        c.send_request(zw.SET_WATCHES, body, xid=-8)
        self.assert_error_or_closed(c, -8, zw.MARSHALLING_ERROR, "setWatches count -5")

    def test_auth_buffer_overflows(self):
        body = zw.Writer().int(0).ustring("digest").int(1 << 30).raw(b"u:p").bytes()
        c = self.session()
        c.send_request(zw.AUTH, body, xid=-4)
        self.assert_error_or_closed(c, -4, zw.MARSHALLING_ERROR, "auth buffer length 2^30")

    def test_invalid_utf8_path(self):
        c = self.session()
        body = zw.Writer().ustring(b"/bad-\xff\xfe").buffer(b"").acls(zw.OPEN_ACL).int(0).bytes()
        c.send_request(zw.CREATE, body, xid=13)
        self.assert_error_or_closed(c, 13, zw.BAD_ARGUMENTS, "path not UTF-8")

    def test_many_pending_requests_on_one_session(self):
        """Far more requests than a session may have pending, sent without
        waiting: every one is answered, in order (the server reads slower,
        as ZooKeeper throttles), or the connection is closed; none is lost
        silently and no reply is out of order."""
        c = self.session()
        n = 25000
        burst = b"".join(request(i + 1, zw.EXISTS, zw.path_watch_body("/bystander"))
                         for i in range(n))
        sender = threading.Thread(target=self.send_quietly, args=(c, burst))
        sender.start()
        got = 0
        try:
            while got < n:
                f = c.read_frame(CLOSE_WAIT_S)
                self.assertEqual((f.xid, f.err), (got + 1, 0))
                got += 1
        except zw.Closed:
            pass
        finally:
            sender.join(30)
        self.assertEqual(got, n, "connection closed after %d of %d replies" % (got, n))

    # -- load from one address --------------------------------------------
    def test_many_connections_from_one_address(self):
        conns = []
        try:
            for _ in range(150):
                c = zw.Conn(self.port)
                conns.append(c)
                c.send_frame(zw.connect_body(timeout_ms=4000))
            for c in conns:
                self.assertEqual(len(c.read_frame_bytes()), 37)
            for i, c in enumerate(conns[:20]):
                _, f = c.call(zw.EXISTS, zw.path_watch_body("/bystander"))
                self.assertEqual(f.err, 0, "connection %d" % i)
            for c in conns:
                c.send_request(zw.CLOSE_SESSION)
            for c in conns:
                try:
                    c.read_frame(CLOSE_WAIT_S)
                except zw.Closed:
                    pass
        finally:
            for c in conns:
                c.close()

    def test_connection_limit_per_address(self):
        limited = Coordd(extra_args=["--max-connections-per-address", "8"])
        self.addCleanup(limited.cleanup)
        limited.start()
        conns = []
        try:
            for _ in range(12):
                conns.append(zw.Conn(limited.port))
            served = 0
            for c in conns:
                try:
                    r = c.handshake()
                    served += 1 if r["sessionId"] else 0
                except (zw.Closed, OSError):
                    pass
            self.assertLessEqual(served, 8)
            self.assertGreaterEqual(served, 7)  # a 4lw probe may still be closing
            for c in conns:
                c.close()
            conns = []
            deadline = time.monotonic() + 10
            while True:  # the server notices the closes; then new clients are served
                c = zw.Conn(limited.port)
                try:
                    if c.handshake()["sessionId"]:
                        c.close()
                        break
                except (zw.Closed, OSError):
                    pass
                c.close()
                self.assertLess(time.monotonic(), deadline, "connections never freed")
                time.sleep(0.1)
        finally:
            for c in conns:
                c.close()


def rss_kb(pid, field):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError("no %s for pid %d" % (field, pid))


class BigReplies(unittest.TestCase):
    """Requests whose replies would be larger than a client may read, on a
    server of its own: each is refused while its reply is built (header or
    every multi result MarshallingError), with memory flat and nobody else
    stalled."""

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

    def session(self):
        c = zw.Conn(self.server.port, timeout_s=60.0)
        self.addCleanup(c.close)
        self.assertNotEqual(c.handshake(timeout_ms=40000)["sessionId"], 0)
        return c

    def assert_alive_and_serving(self, c):
        self.assertIsNone(self.server.proc.poll(), "coordd died:\n" + self.server.log()[-3000:])
        _, f = c.call(zw.EXISTS, zw.path_watch_body("/"))
        self.assertEqual(f.err, 0)

    def test_multiread_of_one_mib_node_two_thousand_times(self):
        c = self.session()
        _, f = c.call(zw.CREATE, zw.create_body("/mib", b"m" * 1_000_000))
        self.assertEqual(f.err, 0)
        bystander = self.session()
        pid = self.server.proc.pid
        peak_before = rss_kb(pid, "VmHWM")
        ops = [(zw.GET_DATA, zw.path_watch_body("/mib"))] * 2100
        request = zw.multi_body(ops)
        self.assertLess(len(request), 48 * 1024)
        xid = c.send_request(zw.MULTI_READ, request)
        # Another client is served meanwhile, promptly.
        started = time.monotonic()
        _, f = bystander.call(zw.GET_DATA, zw.path_watch_body("/mib"), timeout_s=10.0)
        self.assertEqual(f.err, 0)
        self.assertLess(time.monotonic() - started, 5.0)
        f = c.read_frame(60.0)
        self.assertEqual((f.xid, f.err), (xid, 0))
        results = zw.decode_multi(zw.Reader(f.body))
        self.assertEqual(results, [("error", zw.MARSHALLING_ERROR)] * 2100)
        grown_mb = (rss_kb(pid, "VmHWM") - peak_before) / 1024.0
        self.assertLess(grown_mb, 64.0, "peak RSS grew by %.0f MB" % grown_mb)
        self.assert_alive_and_serving(c)
        # One read of the node still works, on the same connection.
        _, f = c.call(zw.MULTI_READ, zw.multi_body([(zw.GET_DATA, zw.path_watch_body("/mib"))]))
        self.assertEqual(f.err, 0)
        self.assertEqual(len(zw.decode_multi(zw.Reader(f.body))[0][1]), 1_000_000)

    def test_children_list_larger_than_a_frame(self):
        c = self.session()
        _, f = c.call(zw.CREATE, zw.create_body("/wide"))
        self.assertEqual(f.err, 0)
        n, batch = 48_000, 1000  # names of 24 bytes: about 1.3 MB of reply
        for start in range(0, n, batch):
            _, f = c.call(zw.MULTI, zw.multi_body(
                [(zw.CREATE, zw.create_body("/wide/child-%018d" % i))
                 for i in range(start, start + batch)]))
            self.assertEqual(f.err, 0)
        for op in (zw.GET_CHILDREN, zw.GET_CHILDREN2):
            _, f = c.call(op, zw.path_watch_body("/wide", True))
            self.assertEqual((f.err, f.body), (zw.MARSHALLING_ERROR, b""))
        _, f = c.call(zw.GET_ALL_CHILDREN_NUMBER, zw.path_body("/wide"))
        self.assertEqual((f.err, zw.Reader(f.body).int()), (0, n))
        # The refused getChildren left no watch behind.
        self.assertIn("Total watches:0", four_letter(self.server.port, "wchs"))
        self.assert_alive_and_serving(c)


class SlowReader(unittest.TestCase):
    """A client that sends requests and never reads their replies, on a server
    of its own (a crash here must not take the other cases with it)."""

    def test_client_that_does_not_read_is_cut_off(self):
        server = Coordd()
        self.addCleanup(server.cleanup)
        server.start()
        c = zw.Conn(server.port)
        self.addCleanup(c.close)
        c.handshake()
        _, f = c.call(zw.CREATE, zw.create_body("/big-for-reader", b"r" * (1000 * 1024)))
        self.assertEqual(f.err, 0)
        req = request(1, zw.GET_DATA, zw.path_watch_body("/big-for-reader"))
        try:
            c.sock.settimeout(5.0)
            for _ in range(96):  # about 96 MB of replies, past the 64 MiB outbound bound
                c.sock.sendall(req)
        except OSError:
            pass
        self.assertTrue(c.is_closed(20.0), "a client that does not read was not cut off")
        self.assertIsNone(server.proc.poll(), "coordd died:\n" + server.log()[-2000:])
        other = zw.Conn(server.port)
        self.addCleanup(other.close)
        other.handshake()
        _, f = other.call(zw.GET_DATA, zw.path_watch_body("/big-for-reader"))
        self.assertEqual(f.err, 0)


if __name__ == "__main__":
    ctest_main.main()
