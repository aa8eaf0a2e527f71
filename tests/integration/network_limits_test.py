"""What a client can cost coordd, over real sockets: connections that never
speak, HTTP connections that idle, more connections than descriptors, and
clients that never read their replies.

Each case checks the bound holds and that the server keeps answering
others (ruok, /healthz, a fresh session) meanwhile.
"""

import http.client
import os
import re
import resource
import socket
import struct
import sys
import threading
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import zkwire as zw  # noqa: E402
import ctest_main
from coordd_harness import Coordd, four_letter  # noqa: E402

MiB = 1024 * 1024


def frame(payload):
    return struct.pack(">i", len(payload)) + payload


def request(xid, opcode, body=b""):
    return frame(struct.pack(">ii", xid, opcode) + body)


def http_get(port, path, timeout_s=30.0):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout_s)
    try:
        c.request("GET", path)
        r = c.getresponse()
        return r.status, r.read().decode()
    finally:
        c.close()


def metric(port, name):
    _, text = http_get(port, "/metrics")
    m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
    if not m:
        raise AssertionError("no %s in /metrics" % name)
    return int(m.group(1))


def closed_within(sock, timeout_s):
    """True when the peer closes `sock` within the timeout (data is read
    and dropped)."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        sock.settimeout(left)
        try:
            if not sock.recv(1 << 16):
                return True
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_bytes(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class Healthy:
    def assert_serving(self, server):
        self.assertIsNone(server.proc.poll(), "coordd died:\n" + server.log()[-3000:])
        self.assertEqual(four_letter(server.port, "ruok"), "imok")
        self.assertEqual(http_get(server.http_port, "/healthz")[0], 200)


class SilentConnections(unittest.TestCase, Healthy):
    """Connections that never speak, or stop speaking, are closed."""

    @classmethod
    def setUpClass(cls):
        cls.server = Coordd(extra_args=[
            "--handshake-timeout-ms", "1000",
            "--min-session-timeout-ms", "1000", "--max-session-timeout-ms", "2000",
            "--http-idle-timeout-ms", "1000"])
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def connect(self, port=None):
        s = socket.create_connection(("127.0.0.1", port or self.server.port), timeout=5)
        self.addCleanup(s.close)
        return s

    def test_no_handshake_is_closed(self):
        before = metric(self.server.http_port, "coord_connections_closed_handshake_total")
        silent = self.connect()
        partial = self.connect()
        partial.sendall(struct.pack(">i", 44) + b"\0" * 10)  # a handshake cut short
        length_only = self.connect()
        length_only.sendall(b"\0\0")  # not even a length
        start = time.monotonic()
        for s in (silent, partial, length_only):
            self.assertTrue(closed_within(s, 6.0), "a connection without a handshake stayed open")
        self.assertLess(time.monotonic() - start, 6.0)
        after = metric(self.server.http_port, "coord_connections_closed_handshake_total")
        self.assertGreaterEqual(after - before, 3)
        self.assert_serving(self.server)

    def test_silent_session_connection_is_closed(self):
        # A session whose client stops talking: its connection goes once its
        # session's timeout (at most 2 s here) and the margin have passed,
        # whether it is mid-frame or between frames.
        quiet = zw.Conn(self.server.port)
        self.addCleanup(quiet.close)
        quiet.handshake(timeout_ms=2000)
        mid_frame = zw.Conn(self.server.port)
        self.addCleanup(mid_frame.close)
        mid_frame.handshake(timeout_ms=2000)
        mid_frame.send_raw(struct.pack(">i", 100) + b"\0" * 20)
        talker = zw.Conn(self.server.port)
        self.addCleanup(talker.close)
        talker.handshake(timeout_ms=2000)
        deadline = time.monotonic() + 8.0
        # The one that pings stays.
        while time.monotonic() < deadline:
            _, f = talker.call(zw.PING, xid=-2)
            self.assertEqual(f.err, 0)
            time.sleep(0.3)
        self.assertTrue(quiet.is_closed(0.5))
        self.assertTrue(mid_frame.is_closed(0.5))
        _, f = talker.call(zw.EXISTS, zw.path_watch_body("/"))
        self.assertEqual(f.err, 0)

    def test_a_client_that_never_closes_after_its_answer_is_dropped(self):
        # After a four-letter word's answer the server sends FIN and waits
        # for the client's; a client that neither closes nor sends is
        # dropped once the drain limit (5 s) has passed, not before.
        gauge = "coord_client_connections"
        s = self.connect()
        s.sendall(b"ruok")
        got = b""
        while True:
            data = s.recv(64)
            if not data:
                break
            got += data
        self.assertEqual(got, b"imok")
        answered = time.monotonic()
        self.assertGreaterEqual(metric(self.server.http_port, gauge), 1)
        time.sleep(3.0)
        self.assertGreaterEqual(metric(self.server.http_port, gauge), 1,
                                "dropped before the drain limit")
        deadline = answered + 10.0
        while metric(self.server.http_port, gauge) > 0 and time.monotonic() < deadline:
            time.sleep(0.2)
        self.assertEqual(metric(self.server.http_port, gauge), 0,
                         "a lingering connection outlived the drain limit")
        self.assertGreater(time.monotonic() - answered, 4.5)
        self.assert_serving(self.server)

    def test_idle_http_connections_are_closed(self):
        silent = self.connect(self.server.http_port)
        partial = self.connect(self.server.http_port)
        partial.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # headers never end
        for s in (silent, partial):
            self.assertTrue(closed_within(s, 5.0), "an idle HTTP connection stayed open")
        # Keep-alive between requests counts as idle too.
        kept = http.client.HTTPConnection("127.0.0.1", self.server.http_port, timeout=5)
        self.addCleanup(kept.close)
        kept.request("GET", "/healthz")
        self.assertEqual(kept.getresponse().read(), b"ok\n")
        self.assertTrue(closed_within(kept.sock, 5.0))
        self.assert_serving(self.server)


class DefaultHandshakeDeadline(unittest.TestCase):
    def test_default_is_ten_seconds(self):
        server = Coordd()
        self.addCleanup(server.cleanup)
        server.start()
        s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
        self.addCleanup(s.close)
        start = time.monotonic()
        self.assertTrue(closed_within(s, 20.0))
        self.assertGreater(time.monotonic() - start, 8.0)


def low_descriptor_limit(n):
    def apply():
        resource.setrlimit(resource.RLIMIT_NOFILE, (n, n))
    return apply


class OutOfDescriptors(unittest.TestCase, Healthy):
    """More connections than coordd has descriptors for."""

    FDS = 200

    def test_server_stays_responsive_and_does_not_spin(self):
        server = Coordd()
        self.addCleanup(server.cleanup)
        server.preexec_fn = low_descriptor_limit(self.FDS)
        server.start()
        socks = []

        def close_all():
            for s in socks:
                s.close()
        self.addCleanup(close_all)
        # Far more connections than descriptors; each starts a session.
        for _ in range(3 * self.FDS):
            try:
                s = socket.create_connection(("127.0.0.1", server.port), timeout=5)
            except OSError:
                continue
            socks.append(s)
            try:
                s.sendall(frame(zw.connect_body(timeout_ms=30000)))
            except OSError:
                pass
        cpu0 = cpu_seconds(server.proc.pid)
        t0 = time.monotonic()
        # Monitoring and health checks keep working while it is full.
        for _ in range(10):
            self.assert_serving(server)
            time.sleep(0.2)
        mntr = four_letter(server.port, "mntr")
        self.assertIn("zk_open_file_descriptor_count", mntr)
        cpu = (cpu_seconds(server.proc.pid) - cpu0) / (time.monotonic() - t0)
        self.assertLess(cpu, 0.5, "coordd spins while out of descriptors")
        refused = metric(server.http_port, "coord_connections_refused_total")
        self.assertGreater(refused, 0)
        self.assertLess(metric(server.http_port, "coord_client_connections"), self.FDS)
        self.assertIn("refusing client connections", server.log())
        # Room again: new sessions work.
        close_all()
        socks.clear()
        deadline = time.monotonic() + 10
        while True:
            try:
                c = zw.Conn(server.port)
                c.handshake()
                _, f = c.call(zw.CREATE, zw.create_body("/after-flood", b"ok"))
                c.close()
                self.assertEqual(f.err, 0)
                break
            except (zw.Closed, OSError, TimeoutError):
                self.assertLess(time.monotonic(), deadline, "no new session after the flood")
                time.sleep(0.2)
        self.assert_serving(server)


class UnreadOutput(unittest.TestCase, Healthy):
    """Clients that ask for a lot and never read the answers."""

    BUDGET = 16 * MiB

    def test_total_unread_output_is_bounded(self):
        server = Coordd(extra_args=["--max-unread-output-bytes", str(self.BUDGET)])
        self.addCleanup(server.cleanup)
        server.start()
        writer = zw.Conn(server.port)
        self.addCleanup(writer.close)
        writer.handshake(timeout_ms=30000)
        _, f = writer.call(zw.CREATE, zw.create_body("/big", b"u" * (1000 * 1024)))
        self.assertEqual(f.err, 0)
        rss0 = rss_bytes(server.proc.pid)
        # 12 clients, each asking for 10 replies of 1 MB, well under the
        # 64 MiB one connection may hold, but together far over the budget.
        hogs = []
        for _ in range(12):
            c = zw.Conn(server.port, timeout_s=30)
            self.addCleanup(c.close)
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            c.handshake(timeout_ms=30000)
            hogs.append(c)
        req = b"".join(request(i + 1, zw.GET_DATA, zw.path_watch_body("/big")) for i in range(10))
        peak_unread = 0
        for c in hogs:
            try:
                c.sock.sendall(req)
            except OSError:
                pass
            # One at a time: the server has answered this one before the next.
            _, f = writer.call(zw.EXISTS, zw.path_watch_body("/big"), timeout_s=60)
            self.assertEqual(f.err, 0)
            peak_unread = max(peak_unread, metric(server.http_port, "coord_unread_output_bytes"))
        cut = metric(server.http_port, "coord_connections_cut_unread_total")
        held = metric(server.http_port, "coord_unread_output_bytes")
        print("cut %d of %d, %d bytes held, peak %d, rss grew %d MiB" % (
            cut, len(hogs), held, peak_unread, (rss_bytes(server.proc.pid) - rss0) // MiB))
        self.assertGreaterEqual(cut, 6)
        self.assertLess(cut, len(hogs), "the budget cut off connections it could have kept")
        self.assertLessEqual(peak_unread, self.BUDGET)
        self.assertLessEqual(held, self.BUDGET)
        self.assertIn("unread output of all connections is over", server.log())
        # The ones cut off see their connection closed.
        closed = sum(1 for c in hogs if c.is_closed(2.0))
        self.assertEqual(closed, cut)
        # A client that reads is served meanwhile, and so is the writer.
        reader = zw.Conn(server.port)
        self.addCleanup(reader.close)
        reader.handshake()
        _, f = reader.call(zw.GET_DATA, zw.path_watch_body("/big"))
        self.assertEqual((f.err, len(zw.Reader(f.body).buffer())), (0, 1000 * 1024))
        _, f = writer.call(zw.EXISTS, zw.path_watch_body("/big"))
        self.assertEqual(f.err, 0)
        self.assert_serving(server)


class ReadBuffers(unittest.TestCase, Healthy):
    """Connections share one read buffer: a frame larger than one read, many
    frames in one read, and what an idle connection costs."""

    SESSIONS = 400
    # Resident memory one idle session may add. A read buffer of
    # connection_read_chunk_bytes (64 KiB) per connection is far over it;
    # the bound leaves room for the sanitizers' own cost per allocation
    # (about 18 KB a session under ASan, 3.3 KB in a release build).
    IDLE_SESSION_BYTES_MAX = 32 * 1024

    @classmethod
    def setUpClass(cls):
        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        want = cls.SESSIONS + 256
        if soft < want and (hard == resource.RLIM_INFINITY or hard >= want):
            resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
        cls.server = Coordd(extra_args=["--max-connections-per-address", str(cls.SESSIONS + 64)])
        cls.server.start()

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def session(self):
        c = zw.Conn(self.server.port, timeout_s=30)
        self.addCleanup(c.close)
        c.handshake(timeout_ms=30000)
        return c

    def test_frame_larger_than_a_read(self):
        c = self.session()
        data = bytes(range(256)) * 4000  # 1,024,000 bytes, 16 reads and more
        _, f = c.call(zw.CREATE, zw.create_body("/large-frame", b""))
        self.assertEqual(f.err, 0)
        _, f = c.call(zw.SET_DATA, zw.set_data_body("/large-frame", data), timeout_s=60)
        self.assertEqual(f.err, 0)
        _, f = c.call(zw.GET_DATA, zw.path_watch_body("/large-frame"), timeout_s=60)
        self.assertEqual(f.err, 0)
        self.assertEqual(zw.Reader(f.body).buffer(), data)
        # The same connection goes on with small frames.
        _, f = c.call(zw.EXISTS, zw.path_watch_body("/large-frame"))
        self.assertEqual(f.err, 0)
        self.assert_serving(self.server)

    def test_many_pipelined_frames_in_one_write(self):
        c = self.session()
        _, f = c.call(zw.CREATE, zw.create_body("/pipelined", b"v"))
        self.assertEqual(f.err, 0)
        # Small frames far beyond one read's worth, sent at once, with a
        # frame cut across every read boundary somewhere in the stream.
        count = 5000
        first = c.next_xid
        stream = b"".join(
            request(first + i, zw.GET_DATA if i % 2 else zw.SET_DATA,
                    zw.path_watch_body("/pipelined") if i % 2
                    else zw.set_data_body("/pipelined", b"x" * (i % 97)))
            for i in range(count))
        c.next_xid += count
        self.assertGreater(len(stream), 4 * 64 * 1024)
        c.send_raw(stream)
        for i in range(count):
            f = c.read_frame(timeout_s=60)
            self.assertEqual((f.xid, f.err), (first + i, 0))
            if i % 2:
                # A read sees the write just before it.
                self.assertEqual(zw.Reader(f.body).buffer(), b"x" * ((i - 1) % 97))

    def test_idle_sessions_hold_no_read_buffer(self):
        pid = self.server.proc.pid
        # A first session's costs (code paths, the core's first tables) are
        # not the idle sessions'.
        self.session()
        rss0 = rss_bytes(pid)
        conns = []
        try:
            for _ in range(self.SESSIONS):
                c = zw.Conn(self.server.port, timeout_s=30)
                conns.append(c)
                c.handshake(timeout_ms=30000)
            # Each makes one request, as an idle client's ping, and is
            # answered: every connection has read since its handshake.
            for c in conns:
                c.send_request(zw.PING, xid=-2)
            for c in conns:
                self.assertEqual(c.read_frame().xid, -2)
            per_session = (rss_bytes(pid) - rss0) / self.SESSIONS
        finally:
            for c in conns:
                c.close()
        print("%d idle sessions: %.0f bytes of RSS each" % (self.SESSIONS, per_session))
        self.assertLess(per_session, self.IDLE_SESSION_BYTES_MAX)
        self.assert_serving(self.server)


if __name__ == "__main__":
    ctest_main.main()
