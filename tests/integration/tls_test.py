"""coordd's secure client port and HTTPS, driven by real TLS clients: kazoo
with use_ssl, Python's ssl module, curl, zkCli.sh with ZooKeeper's client TLS
properties and coordctl. Certificates are made at test time (tls_support).
"""

import os
import shutil
import signal
import socket
import ssl
import struct
import subprocess
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import ctest_main
import coordd_harness as h
from tls_support import OPENSSL, Pki, TlsCoordd, metric, tls_args

try:
    from kazoo.client import KazooClient
    from kazoo.exceptions import NoAuthError
    from kazoo.security import ACL, Id, Permissions
    KAZOO_MISSING = ""
except ImportError as e:
    KAZOO_MISSING = "kazoo is missing (Debian python3-kazoo): %s" % e

WAIT_S = 10.0
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
ALICE = "CN=alice,O=coord,C=US"
COORDCTL = os.environ.get("COORDCTL_BINARY", "")

if not OPENSSL:
    raise SystemExit("the openssl command is needed to make test certificates")


def make_pki():
    pki = Pki()
    pki.make_cert("server", "/CN=coordd", server=True)
    pki.make_cert("server2", "/CN=coordd-rotated", server=True)
    pki.make_cert("alice", "/C=US/O=coord/CN=alice")
    pki.make_cert("bob", "/CN=bob")
    pki.make_ca("other-ca", "/CN=another CA")
    pki.make_cert("mallory", "/CN=mallory", ca="other-ca")
    return pki


def kazoo(server, cert=None, ca=None, **kw):
    pki = server.pki
    args = dict(use_ssl=True, ca=pki.cert(ca or pki.ca), verify_certs=True)
    if cert:
        args.update(certfile=pki.cert(cert), keyfile=pki.key(cert))
    args.update(kw)
    zk = KazooClient(hosts=server.hosts(), timeout=10.0, **args)
    zk.start(timeout=WAIT_S)
    return zk


def stop(zk):
    zk.stop()
    zk.close()


def connect_frame():
    """A ZooKeeper ConnectRequest, as a client sends it first."""
    body = struct.pack(">iqiq", 0, 0, 10000, 0) + struct.pack(">i", 16) + b"\0" * 16
    return struct.pack(">i", len(body)) + body


def peer_subject(server):
    with server.tls_connect() as s:
        cert = s.getpeercert()
    return dict(x[0] for x in cert["subject"])["commonName"]


@unittest.skipIf(KAZOO_MISSING, KAZOO_MISSING)
class SecurePort(unittest.TestCase):
    """One coordd with only a secure client port, client certificates wanted."""

    @classmethod
    def setUpClass(cls):
        cls.pki = make_pki()
        cls.server = TlsCoordd(cls.pki, extra_args=tls_args(cls.pki, client_auth="want"))
        try:
            cls.server.start()
        except Exception:
            cls.server.cleanup()
            cls.pki.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        cls.pki.cleanup()

    def test_create_get_and_watch_over_tls(self):
        zk = kazoo(self.server, cert="alice")
        other = kazoo(self.server)  # no certificate: let in under "want"
        try:
            events = []
            zk.create("/tls-watch", b"one")
            data, _ = zk.get("/tls-watch", watch=events.append)
            self.assertEqual(data, b"one")
            other.set("/tls-watch", b"two")
            deadline = time.monotonic() + WAIT_S
            while not events and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertEqual([e.type for e in events], ["CHANGED"])
            self.assertEqual(zk.get("/tls-watch")[0], b"two")
        finally:
            stop(zk)
            stop(other)

    def test_x509_acl_lets_the_certificate_holder_write_and_refuses_another(self):
        alice = kazoo(self.server, cert="alice")
        bob = kazoo(self.server, cert="bob")
        nobody = kazoo(self.server)
        try:
            acl = [ACL(Permissions.ALL, Id("x509", ALICE)),
                   ACL(Permissions.READ, Id("world", "anyone"))]
            alice.create("/x509-owned", b"v0", acl=acl)
            alice.set("/x509-owned", b"v1")
            self.assertEqual(alice.get_acls("/x509-owned")[0][0].id.id, ALICE)
            for zk in (bob, nobody):
                with self.assertRaises(NoAuthError):
                    zk.set("/x509-owned", b"not yours")
                self.assertEqual(zk.get("/x509-owned")[0], b"v1")
        finally:
            for zk in (alice, bob, nobody):
                stop(zk)

    def test_a_client_that_trusts_another_ca_is_refused(self):
        with self.assertRaises(ssl.SSLError):
            self.server.tls_connect(ca="other-ca").close()
        self.assertEqual(self.server.four_letter_tls("ruok"), "imok")

    def test_a_certificate_of_another_ca_is_refused_and_counted(self):
        before = metric(self.server.http_port, "coord_tls_handshake_failures_total")
        with self.assertRaises((ssl.SSLError, ConnectionError)):
            with self.server.tls_connect(cert="mallory") as s:
                # TLS 1.3 reports the server's refusal of the client
                # certificate at the first read.
                s.sendall(b"ruok")
                if not s.recv(16):
                    raise ConnectionError("closed")
        self.assertEqual(self.server.four_letter_tls("ruok"), "imok")
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            if metric(self.server.http_port, "coord_tls_handshake_failures_total") > before:
                break
            time.sleep(0.05)
        self.assertGreater(metric(self.server.http_port, "coord_tls_handshake_failures_total"),
                           before)
        self.assertIn("TLS handshake with 127.0.0.1", self.server.log())

    def test_plain_text_on_the_secure_port_is_refused(self):
        before = metric(self.server.http_port, "coord_tls_handshake_failures_total")
        for payload in (connect_frame(), b"ruok"):
            # A payload that could still be the start of a TLS record is
            # given up after the handshake bound (5 s): wait longer than it.
            with socket.create_connection(("127.0.0.1", self.server.secure_port), timeout=15) as s:
                s.sendall(payload)
                got = b""
                try:
                    while True:
                        data = s.recv(4096)
                        if not data:
                            break
                        got += data
                except ConnectionResetError:
                    pass
                # Whatever comes back is a TLS alert record (type 21), never
                # a ZooKeeper reply or "imok".
                self.assertNotIn(b"imok", got)
                if got:
                    self.assertEqual(got[0], 21, got)
        self.assertGreaterEqual(
            metric(self.server.http_port, "coord_tls_handshake_failures_total"), before + 2)
        self.assertEqual(self.server.four_letter_tls("ruok"), "imok")

    def test_old_protocols_are_refused(self):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.load_verify_locations(self.pki.cert(self.pki.ca))
        # Security level 0: the client itself would offer TLS 1.1.
        ctx.set_ciphers("DEFAULT:@SECLEVEL=0")
        ctx.minimum_version = ssl.TLSVersion.TLSv1_1
        ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        with socket.create_connection(("127.0.0.1", self.server.secure_port), timeout=5) as raw:
            with self.assertRaises(ssl.SSLError) as refused:
                ctx.wrap_socket(raw, server_hostname="127.0.0.1")
            self.assertIn("ALERT", str(refused.exception).upper())
        # TLS 1.2 is taken, with a forward-secret AEAD suite.
        ctx12 = self.server.client_context()
        ctx12.maximum_version = ssl.TLSVersion.TLSv1_2
        with socket.create_connection(("127.0.0.1", self.server.secure_port), timeout=5) as raw:
            with ctx12.wrap_socket(raw, server_hostname="127.0.0.1") as s:
                self.assertEqual(s.version(), "TLSv1.2")
                self.assertRegex(s.cipher()[0], r"^ECDHE-.*(GCM|CHACHA20)")

    def test_the_plain_port_is_off(self):
        self.assertIsNone(self.server.port)
        self.assertIn("serving ZooKeeper clients on the TLS port only", self.server.log())


@unittest.skipIf(KAZOO_MISSING, KAZOO_MISSING)
class ClientAuthNeed(unittest.TestCase):
    def test_a_client_without_a_certificate_is_refused(self):
        pki = make_pki()
        server = TlsCoordd(pki, extra_args=tls_args(pki, client_auth="need"))
        try:
            # Ready once a client with a certificate answers.
            server.four_letter_tls = (
                lambda word, cert="alice", timeout_s=5.0, f=server.four_letter_tls:
                f(word, cert=cert, timeout_s=timeout_s))
            server.start()
            with self.assertRaises((ssl.SSLError, ConnectionError)):
                with server.tls_connect() as s:
                    s.sendall(b"ruok")
                    if not s.recv(16):
                        raise ConnectionError("closed")
            zk = kazoo(server, cert="bob")
            try:
                zk.create("/need", b"x")
            finally:
                stop(zk)
        finally:
            server.cleanup()
            pki.cleanup()


class Reload(unittest.TestCase):
    def test_sighup_reloads_the_certificate_and_keeps_connections(self):
        pki = make_pki()
        work = tempfile.mkdtemp(prefix="coord-tls-live-")
        cert, key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        shutil.copy(pki.cert("server"), cert)
        shutil.copy(pki.key("server"), key)
        args = ["--secure-client-port", "0", "--tls-cert-file", cert, "--tls-key-file", key]
        server = TlsCoordd(pki, extra_args=args)
        try:
            server.start()
            self.assertEqual(peer_subject(server), "coordd")
            old = server.tls_connect()
            old.sendall(connect_frame())
            self.assertTrue(old.recv(4))  # the session is open

            # A reload that fails keeps the old files, and says why.
            with open(key, "w") as f:
                f.write("not a key\n")
            server.proc.send_signal(signal.SIGHUP)
            self.wait_log(server, "TLS files not reloaded")
            self.assertIn("--tls-key-file " + key, server.log())
            self.assertEqual(peer_subject(server), "coordd")

            shutil.copy(pki.cert("server2"), cert)
            shutil.copy(pki.key("server2"), key)
            server.proc.send_signal(signal.SIGHUP)
            self.wait_log(server, "TLS certificate, key and CA reloaded")
            self.assertEqual(peer_subject(server), "coordd-rotated")
            # The connection from before the reload still works: a ping.
            old.recv(65536)
            old.sendall(struct.pack(">iii", 8, -2, 11))
            reply = old.recv(65536)
            self.assertGreaterEqual(len(reply), 16, reply)
            self.assertEqual(struct.unpack(">i", reply[4:8])[0], -2)
            old.close()
            self.assertIsNone(server.proc.poll())
        finally:
            server.cleanup()
            pki.cleanup()
            shutil.rmtree(work, ignore_errors=True)

    def wait_log(self, server, text):
        deadline = time.monotonic() + WAIT_S
        while text not in server.log() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertIn(text, server.log())


class Stop(unittest.TestCase):
    def test_sigterm_closes_idle_tls_sessions_at_once(self):
        """The server's read of an idle client is in flight when it stops:
        it still sends close_notify at once, so the client closes and the
        server exits without waiting out the drain limit (5 s)."""
        pki = make_pki()
        server = TlsCoordd(pki, extra_args=tls_args(pki))
        try:
            server.start()
            conns = []
            for _ in range(3):
                s = server.tls_connect()
                s.sendall(connect_frame())
                self.assertTrue(s.recv(4))  # the session is open, the client idle
                conns.append(s)
            time.sleep(0.2)  # the server's next reads are in flight
            started = time.monotonic()
            server.proc.send_signal(signal.SIGTERM)
            # Each client, reading, learns of the close (close_notify) and
            # closes its end, as kazoo and the Java client do.
            for s in conns:
                s.settimeout(10)
                while s.recv(65536):
                    pass
                s.close()
            self.assertEqual(server.proc.wait(timeout=15), 0)
            self.assertLess(time.monotonic() - started, 3.0, server.log())
        finally:
            server.cleanup()
            pki.cleanup()


class RefusedAtStart(unittest.TestCase):
    """Files coordd must not start with: one clear line, exit status 1."""

    @classmethod
    def setUpClass(cls):
        cls.pki = make_pki()
        cls.pki.make_cert("expired", "/CN=expired", server=True,
                          start="20200101000000Z", end="20200201000000Z")
        cls.pki.make_cert("future", "/CN=future", server=True,
                          start="20991201000000Z", end="20991231000000Z")

    @classmethod
    def tearDownClass(cls):
        cls.pki.cleanup()

    def refused(self, args):
        d = tempfile.mkdtemp(prefix="coordd-tls-refused-")
        try:
            p = subprocess.run([h.COORDD, "--client-port", "0", "--http-port", "0",
                                "--data-dir", os.path.join(d, "data")] + args,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                               timeout=30)
            self.assertNotEqual(p.returncode, 0, p.stdout)
            lines = [l for l in p.stdout.splitlines() if "cannot start" in l]
            self.assertEqual(len(lines), 1, p.stdout)
            return lines[0]
        finally:
            shutil.rmtree(d, ignore_errors=True)

    def args(self, cert="server", key=None):
        return ["--secure-client-port", "0", "--tls-cert-file", self.pki.cert(cert),
                "--tls-key-file", self.pki.key(key or cert)]

    def test_expired_certificate(self):
        line = self.refused(self.args("expired"))
        self.assertIn("expired", line)
        self.assertIn(self.pki.cert("expired"), line)

    def test_certificate_not_yet_valid(self):
        self.assertIn("not valid before", self.refused(self.args("future")))

    def test_key_of_another_certificate(self):
        self.assertIn("does not match the certificate", self.refused(self.args("server", "bob")))

    def test_missing_file(self):
        missing = os.path.join(self.pki.dir, "missing.pem")
        line = self.refused(["--secure-client-port", "0", "--tls-cert-file", missing,
                             "--tls-key-file", self.pki.key("server")])
        self.assertIn(missing, line)
        self.assertIn("No such file", line)

    def test_client_auth_without_a_ca(self):
        self.assertIn("--tls-ca-file", self.refused(self.args() + ["--tls-client-auth", "need"]))

    def test_files_without_a_tls_listener(self):
        line = self.refused(["--tls-cert-file", self.pki.cert("server"),
                             "--tls-key-file", self.pki.key("server")])
        self.assertIn("--secure-client-port, --http-tls or --peer-tls", line)


class Https(unittest.TestCase):
    def test_http_port_speaks_https_only(self):
        pki = make_pki()
        server = TlsCoordd(pki, plain=True, extra_args=tls_args(pki) + ["--http-tls"])
        try:
            server.start()
            ctx = server.client_context()
            url = "https://127.0.0.1:%d/healthz" % server.http_port
            with urllib.request.urlopen(url, timeout=5, context=ctx) as r:
                self.assertEqual(r.status, 200)
            own = "https://127.0.0.1:%d" % server.http_port
            req = urllib.request.Request(own + "/v1/znodes/https", data=b"over tls", method="PUT",
                                         headers={"Content-Type": "application/octet-stream",
                                                  "Origin": own})
            with urllib.request.urlopen(req, timeout=10, context=ctx) as r:
                self.assertIn(r.status, (200, 201))
            # The page a browser shows from this server has an https
            # origin; the same host over plain http is another site.
            req = urllib.request.Request(own + "/v1/znodes/https", data=b"x", method="PUT",
                                         headers={"Content-Type": "application/octet-stream",
                                                  "Origin": own.replace("https:", "http:")})
            with self.assertRaises(urllib.error.HTTPError) as refused:
                urllib.request.urlopen(req, timeout=10, context=ctx)
            self.assertEqual(refused.exception.code, 403)
            self.assertGreaterEqual(
                metric(server.http_port, "coord_tls_handshakes_total", tls_context=ctx), 1)
            # Plain HTTP on the HTTPS port gets no HTTP answer.
            with self.assertRaises(Exception):
                urllib.request.urlopen("http://127.0.0.1:%d/healthz" % server.http_port,
                                       timeout=5).read()
            # The plain client port still serves ZooKeeper clients.
            self.assertEqual(h.four_letter(server.port, "ruok"), "imok")
            curl = shutil.which("curl")
            if curl:
                out = subprocess.run([curl, "-sS", "--cacert", pki.cert(pki.ca),
                                      "https://127.0.0.1:%d/v1/znodes/https" % server.http_port],
                                     stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                     timeout=30)
                self.assertEqual(out.returncode, 0, out.stdout)
                self.assertIn("over tls", out.stdout)
        finally:
            server.cleanup()
            pki.cleanup()


@unittest.skipIf(KAZOO_MISSING, KAZOO_MISSING)
class PeerTls(unittest.TestCase):
    """Three servers with --peer-tls: two with certificates of the cluster's
    CA, one with a certificate of another CA, which is refused."""

    def test_peers_over_mutual_tls_refuse_a_certificate_of_another_ca(self):
        pki = make_pki()
        for sid in (1, 2):
            pki.make_cert("peer%d" % sid, "/CN=coordd-%d" % sid, server=True)
        pki.make_cert("stranger", "/CN=coordd-3", ca="other-ca", server=True)
        cluster = h.CoorddCluster(size=3, extra_args=["--peer-tls",
                                                      "--tls-ca-file", pki.cert(pki.ca)])
        for sid, name in ((1, "peer1"), (2, "peer2"), (3, "stranger")):
            cluster.args_of[sid] = ["--tls-cert-file", pki.cert(name),
                                    "--tls-key-file", pki.key(name)]
        zks = []
        try:
            cluster.start()
            leader = cluster.wait_leader(among=(1, 2))
            self.assertIn(leader, (1, 2))
            self.assertIn("peers over mutual TLS", cluster.log(1))
            # A write through one server is read through the other: the log
            # travelled between them over TLS.
            for sid in (1, 2):
                zk = KazooClient(hosts="127.0.0.1:%d" % cluster.port(sid), timeout=10.0)
                zk.start(timeout=WAIT_S)
                zks.append(zk)
            zks[0].create("/over-peer-tls", b"replicated")
            zks[1].sync("/over-peer-tls")
            self.assertEqual(zks[1].get("/over-peer-tls")[0], b"replicated")
            # The stranger is refused on both sides, and the refusals logged.
            cluster.wait("the stranger's refusal logged",
                         lambda: "TLS handshake failed" in cluster.log(1) + cluster.log(2)
                         and "TLS handshake failed" in cluster.log(3))
            # It knows no leader and has none of the log (its srvr may still
            # say follower between its elections).
            self.assertEqual(cluster.status(3)["leader_id"], 0)
            self.assertLess(cluster.zxid(3), cluster.zxid(1))
        finally:
            for zk in zks:
                stop(zk)
            cluster.cleanup()
            pki.cleanup()


COORDCTL_MISSING = ("" if COORDCTL and os.access(COORDCTL, os.X_OK) else
                    "COORDCTL_BINARY is not set (ctest sets it when coordctl is built)")


@unittest.skipIf(COORDCTL_MISSING, COORDCTL_MISSING)
class Coordctl(unittest.TestCase):
    """coordctl, and through it libcoord, against the secure port."""

    @classmethod
    def setUpClass(cls):
        cls.pki = make_pki()
        cls.pki.make_cert("noname", "/CN=coordd-without-names", server=True, san=False)
        cls.server = TlsCoordd(cls.pki, extra_args=tls_args(cls.pki, client_auth="want"))
        try:
            cls.server.start()
        except Exception:
            cls.server.cleanup()
            cls.pki.cleanup()
            raise

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()
        cls.pki.cleanup()

    def ctl(self, *args, hosts=None):
        p = subprocess.run([COORDCTL, "-s", hosts or self.server.hosts(),
                            "--connect-timeout", "3000"] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        return p.returncode, p.stdout, p.stderr

    def test_create_and_get_over_tls(self):
        ca = ["--tls-ca-file", self.pki.cert(self.pki.ca)]
        rc, out, err = self.ctl(*ca, "create", "/ctl-tls", "hello")
        self.assertEqual(rc, 0, err)
        rc, out, err = self.ctl(*ca, "get", "/ctl-tls")
        self.assertEqual((rc, out), (0, "hello\n"), err)
        # By name too: the certificate names localhost.
        rc, out, err = self.ctl(*ca, "get", "/ctl-tls",
                                hosts="localhost:%d" % self.server.secure_port)
        self.assertEqual((rc, out), (0, "hello\n"), err)

    def test_client_certificate_is_the_x509_identity(self):
        rc, out, err = self.ctl("--tls-ca-file", self.pki.cert(self.pki.ca),
                                "--tls-cert-file", self.pki.cert("alice"),
                                "--tls-key-file", self.pki.key("alice"), "whoami")
        self.assertEqual(rc, 0, err)
        self.assertIn("x509", out)
        self.assertIn(ALICE, out)

    def test_a_server_of_another_ca_is_refused(self):
        rc, out, err = self.ctl("--tls-ca-file", self.pki.cert("other-ca"), "get", "/")
        self.assertEqual(rc, 7, out + err)
        self.assertIn("certificate verify failed", err)
        # Plain text to the secure port does not get a session either.
        rc, out, err = self.ctl("get", "/")
        self.assertEqual(rc, 7, out + err)

    def test_the_server_name_is_checked_unless_told_not_to(self):
        server = TlsCoordd(self.pki, extra_args=tls_args(self.pki, server="noname"),
                           check_hostname=False)
        try:
            server.start()
            ca = ["--tls-ca-file", self.pki.cert(self.pki.ca)]
            rc, out, err = self.ctl(*ca, "get", "/", hosts=server.hosts())
            self.assertEqual(rc, 7, out + err)
            self.assertIn("certificate verify failed", err)
            rc, out, err = self.ctl(*ca, "--tls-no-name-check", "stat", "/", hosts=server.hosts())
            self.assertEqual(rc, 0, err)
        finally:
            server.cleanup()


ZK_JARS = ["/usr/share/java/zookeeper.jar", "/usr/share/java/zookeeper-jute.jar",
           "/usr/share/java/slf4j-api.jar"]
ZK_MISSING = ("" if shutil.which("java") and shutil.which("keytool") and COORDCTL and all(
    os.path.exists(j) for j in ZK_JARS + ["/usr/share/java/netty-codec.jar",
                                          "/usr/share/java/netty-resolver.jar"]) else
    "java, keytool, coordctl or Debian's ZooKeeper and netty jars are missing")


@unittest.skipIf(ZK_MISSING, ZK_MISSING)
class AgainstZooKeeper(unittest.TestCase):
    """coordctl (libcoord) with a client certificate against Apache
    ZooKeeper 3.8's secure port (Netty, X509AuthenticationProvider) and
    against coordd: the same session works, and both name the certificate
    with the same x509 id."""

    SUBJECTS = {"alice": "/C=US/O=coord/CN=alice",
                "carol": "/C=US/O=Coord\\, Inc./OU=ops team/CN=carol smith"}

    @classmethod
    def setUpClass(cls):
        cls.pki = make_pki()
        for name, subject in cls.SUBJECTS.items():
            cls.pki.make_cert(name, subject)
        cls.zk = None
        cls.coordd = TlsCoordd(cls.pki, extra_args=tls_args(cls.pki, client_auth="want"))
        try:
            cls.coordd.start()
            cls.zk_port = cls.start_zookeeper()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def start_zookeeper(cls):
        pki = cls.pki
        ks, ts = pki.path("zk-keys.p12"), pki.path("zk-trust.p12")
        subprocess.run([OPENSSL, "pkcs12", "-export", "-in", pki.cert("server"), "-inkey",
                        pki.key("server"), "-out", ks, "-passout", "pass:changeit"],
                       check=True, capture_output=True, timeout=60)
        subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "ca", "-file",
                        pki.cert(pki.ca), "-keystore", ts, "-storetype", "PKCS12",
                        "-storepass", "changeit"], check=True, capture_output=True, timeout=60)
        data = pki.path("zk-data")
        os.makedirs(data)
        plain, secure = h.free_ports(2)
        cfg = pki.path("zoo.cfg")
        with open(cfg, "w") as f:
            f.write("dataDir=%s\nclientPort=%d\nsecureClientPort=%d\n"
                    "admin.enableServer=false\n4lw.commands.whitelist=*\n"
                    % (data, plain, secure))
        props = ["-Dzookeeper.serverCnxnFactory=org.apache.zookeeper.server.NettyServerCnxnFactory",
                 "-Dzookeeper.authProvider.x509="
                 "org.apache.zookeeper.server.auth.X509AuthenticationProvider",
                 "-Dzookeeper.ssl.clientAuth=want"]
        for store, path in (("keyStore", ks), ("trustStore", ts)):
            props += ["-Dzookeeper.ssl.%s.location=%s" % (store, path),
                      "-Dzookeeper.ssl.%s.password=changeit" % store,
                      "-Dzookeeper.ssl.%s.type=PKCS12" % store]
        cls.zk_log = pki.path("zookeeper.log")
        with open(cls.zk_log, "wb") as log:
            cls.zk = subprocess.Popen(
                ["java", "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp",
                 ":".join(ZK_JARS + NETTY_EXTRA)] + props +
                ["org.apache.zookeeper.server.ZooKeeperServerMain", cfg],
                stdout=log, stderr=log)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if cls.zk.poll() is not None:
                break
            try:
                if h.four_letter(plain, "ruok", 1.0) == "imok":
                    return secure
            except OSError:
                pass
            time.sleep(0.1)
        with open(cls.zk_log) as f:
            raise RuntimeError("ZooKeeper did not start:\n" + f.read()[-3000:])

    @classmethod
    def tearDownClass(cls):
        if cls.zk is not None and cls.zk.poll() is None:
            cls.zk.kill()
            cls.zk.wait(timeout=30)
        cls.coordd.cleanup()
        cls.pki.cleanup()

    def ctl(self, port, cert, *args):
        p = subprocess.run([COORDCTL, "-s", "127.0.0.1:%d" % port, "--connect-timeout", "10000",
                            "--tls-ca-file", self.pki.cert(self.pki.ca),
                            "--tls-cert-file", self.pki.cert(cert),
                            "--tls-key-file", self.pki.key(cert)] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, timeout=60)
        self.assertEqual(p.returncode, 0, p.stderr)
        return p.stdout

    def test_the_same_session_and_x509_id_on_both(self):
        for port in (self.zk_port, self.coordd.secure_port):
            self.assertEqual(self.ctl(port, "alice", "create", "/tls-both", "v"),
                             "Created /tls-both\n")
            self.assertEqual(self.ctl(port, "alice", "get", "/tls-both"), "v\n")
        for name in self.SUBJECTS:
            ids = [[l for l in self.ctl(port, name, "whoami").splitlines()
                    if l.startswith("x509: ")] for port in (self.zk_port, self.coordd.secure_port)]
            self.assertEqual(len(ids[0]), 1, ids)
            self.assertEqual(ids[0], ids[1])


NETTY_EXTRA = ["/usr/share/java/netty-codec.jar", "/usr/share/java/netty-resolver.jar"]
ZKCLI_MISSING = ("" if os.access(ZKCLI, os.X_OK) and shutil.which("java") and shutil.which("keytool")
                 and all(os.path.exists(j) for j in NETTY_EXTRA) else
                 "zkCli.sh, java, keytool or netty-codec/netty-resolver is missing "
                 "(Debian zookeeper, a JDK)")


@unittest.skipIf(ZKCLI_MISSING, ZKCLI_MISSING)
class ZkCliTls(unittest.TestCase):
    def test_zkcli_over_tls(self):
        pki = make_pki()
        server = TlsCoordd(pki, extra_args=tls_args(pki))
        try:
            server.start()
            trust = pki.path("trust.p12")
            subprocess.run(["keytool", "-importcert", "-noprompt", "-alias", "coord-ca",
                            "-file", pki.cert(pki.ca), "-keystore", trust, "-storetype", "PKCS12",
                            "-storepass", "changeit"], check=True, stdout=subprocess.DEVNULL,
                           stderr=subprocess.STDOUT, timeout=60)
            # Debian's zookeeper.jar lists netty-handler but not netty-codec
            # and netty-resolver, which its Netty client needs: a later -cp
            # (the last one counts) adds them to zkCli.sh's class path.
            flags = ("-cp /etc/zookeeper/conf:/usr/share/java/zookeeper.jar:%s "
                     "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC "
                     "-Dzookeeper.client.secure=true "
                     "-Dzookeeper.clientCnxnSocket=org.apache.zookeeper.ClientCnxnSocketNetty "
                     "-Dzookeeper.ssl.trustStore.location=%s "
                     "-Dzookeeper.ssl.trustStore.password=changeit "
                     "-Dzookeeper.ssl.trustStore.type=PKCS12" % (":".join(NETTY_EXTRA), trust))
            env = dict(os.environ, CLIENT_JVMFLAGS=flags)
            p = subprocess.run([ZKCLI, "-server", server.hosts()], input=(
                "create /zkcli-tls hello\nget /zkcli-tls\nquit\n"), stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True, timeout=120, env=env)
            self.assertIn("Created /zkcli-tls", p.stdout)
            self.assertIn("\nhello\n", p.stdout)
        finally:
            server.cleanup()
            pki.cleanup()


if __name__ == "__main__":
    ctest_main.main()
