"""Certificates made at test time with the openssl command, and coordd
started with TLS on its client and HTTP ports.

Nothing here is committed key material: every key is generated into a
temporary directory and removed with it.
"""

import os
import re
import shutil
import ssl
import socket
import subprocess
import tempfile
import time

import coordd_harness as h

OPENSSL = shutil.which("openssl")
TLS_LINE = re.compile(r"TLS: ZooKeeper clients on [0-9.]+:(\d+)")
HTTP_LINE = re.compile(r", HTTP on [0-9.]+:(\d+)")


def _run(*args, cwd):
    subprocess.run(list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE, timeout=60)


class Pki:
    """A CA, certificates it signs and one it does not, all in `dir`."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="coord-tls-")
        self._serial = 1
        self.ca = self.make_ca("ca", "/CN=coord test CA")

    def path(self, name):
        return os.path.join(self.dir, name)

    def _key(self, name):
        _run(OPENSSL, "genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-out", name + ".key", cwd=self.dir)
        os.chmod(self.path(name + ".key"), 0o600)

    def make_ca(self, name, subject):
        self._key(name)
        _run(OPENSSL, "req", "-x509", "-new", "-key", name + ".key", "-subj", subject,
             "-days", "30", "-out", name + ".pem", cwd=self.dir)
        return name

    def make_cert(self, name, subject, ca=None, server=False, start=None, end=None, san=True):
        """A certificate for `subject` signed by `ca` (default: the CA), with
        IP 127.0.0.1 and localhost as its names when `server`. `start` and
        `end` (YYYYMMDDHHMMSSZ) set its validity instead of 30 days from now."""
        ca = ca or self.ca
        self._key(name)
        _run(OPENSSL, "req", "-new", "-key", name + ".key", "-subj", subject,
             "-out", name + ".csr", cwd=self.dir)
        ext = self.path(name + ".ext")
        with open(ext, "w") as f:
            f.write("basicConstraints=CA:FALSE\n")
            if server:
                if san:
                    f.write("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
                f.write("extendedKeyUsage=serverAuth,clientAuth\n")
            else:
                f.write("extendedKeyUsage=clientAuth\n")
        self._serial += 1
        if start is None:
            _run(OPENSSL, "x509", "-req", "-in", name + ".csr", "-CA", ca + ".pem",
                 "-CAkey", ca + ".key", "-set_serial", str(self._serial), "-days", "30",
                 "-extfile", ext, "-out", name + ".pem", cwd=self.dir)
        else:
            # openssl x509 cannot back-date; `openssl ca` can.
            db = self.path("ca-db-%s" % name)
            os.makedirs(db)
            open(os.path.join(db, "index.txt"), "w").close()
            with open(os.path.join(db, "serial"), "w") as f:
                f.write("%04X\n" % self._serial)
            cnf = os.path.join(db, "ca.cnf")
            with open(cnf, "w") as f:
                f.write("[ca]\ndefault_ca=d\n[d]\ndatabase=%s/index.txt\nnew_certs_dir=%s\n"
                        "serial=%s/serial\ndefault_md=sha256\npolicy=p\n[p]\ncommonName=supplied\n"
                        % (db, db, db))
            _run(OPENSSL, "ca", "-batch", "-config", cnf, "-cert", ca + ".pem", "-keyfile",
                 ca + ".key", "-in", name + ".csr", "-out", name + ".pem", "-extfile", ext,
                 "-startdate", start, "-enddate", end, "-notext", cwd=self.dir)
        return name

    def cert(self, name):
        return self.path(name + ".pem")

    def key(self, name):
        return self.path(name + ".key")

    def cleanup(self):
        shutil.rmtree(self.dir, ignore_errors=True)


def tls_args(pki, server="server", client_auth="none", secure_port=0):
    """coordd's flags for a secure client port with `server`'s certificate."""
    return ["--secure-client-port", str(secure_port),
            "--tls-cert-file", pki.cert(server), "--tls-key-file", pki.key(server),
            "--tls-ca-file", pki.cert(pki.ca), "--tls-client-auth", client_auth]


class TlsCoordd(h.Coordd):
    """coordd with a secure client port (and optionally no plain one), ready
    once a TLS connection answers ruok."""

    def __init__(self, pki, extra_args=(), plain=False, check_hostname=True, **kw):
        self.pki = pki
        self.check_hostname = check_hostname
        self.plain = plain
        # --client-port 0 with a secure port: no plain port at all.
        super().__init__(extra_args=list(extra_args), client_port=0, **kw)
        self.secure_port = None
        if plain:
            self.client_port_arg = h.free_port()

    def start(self):
        # The plain port is chosen before coordd binds it (port 0 would mean
        # none), so another process may take it meanwhile: once more with
        # a new port. Any other failure is the test's.
        for attempt in range(2):
            try:
                return super().start()
            except RuntimeError as e:
                if not self.plain or attempt == 1 or not h.port_was_taken(e):
                    raise
                self.client_port_arg = h.free_port()
        return self

    def client_context(self, cert=None, ca=None):
        ctx = ssl.create_default_context(cafile=self.pki.cert(ca or self.pki.ca))
        ctx.check_hostname = self.check_hostname
        if cert:
            ctx.load_cert_chain(self.pki.cert(cert), self.pki.key(cert))
        return ctx

    def tls_connect(self, cert=None, ca=None, timeout_s=5.0):
        raw = socket.create_connection(("127.0.0.1", self.secure_port), timeout=timeout_s)
        try:
            return self.client_context(cert, ca).wrap_socket(raw, server_hostname="127.0.0.1")
        except Exception:
            raw.close()
            raise

    def four_letter_tls(self, word, cert=None, timeout_s=5.0):
        with self.tls_connect(cert=cert, timeout_s=timeout_s) as s:
            s.sendall(word.encode())
            chunks = []
            while True:
                try:
                    data = s.recv(65536)
                except ssl.SSLError:
                    break
                if not data:
                    break
                chunks.append(data)
            return b"".join(chunks).decode()

    def wait_ready(self, timeout_s=h.START_TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("coordd exited with %s:\n%s" % (self.proc.returncode, self.log()))
            text = self.log()[self.log_start:]
            if self.secure_port is None:
                m = TLS_LINE.search(text)
                hm = HTTP_LINE.search(text)
                if m and hm:
                    self.secure_port = int(m.group(1))
                    self.http_port = int(hm.group(1))
                    pm = h.SERVING.search(text)
                    self.port = int(pm.group(1)) if pm else None
            if self.secure_port is not None:
                try:
                    if self.four_letter_tls("ruok", timeout_s=1.0) == "imok":
                        return self
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("coordd did not answer ruok over TLS in time:\n" + self.log())

    def hosts(self):
        return "127.0.0.1:%d" % self.secure_port


def metric(http_port, name, tls_context=None, timeout_s=5.0):
    """The value of counter `name` on /metrics."""
    import urllib.request
    url = "%s://127.0.0.1:%d/metrics" % ("https" if tls_context else "http", http_port)
    with urllib.request.urlopen(url, timeout=timeout_s, context=tls_context) as r:
        for line in r.read().decode().splitlines():
            if line.startswith(name + " "):
                return float(line.split()[1])
    raise AssertionError("no metric " + name)
