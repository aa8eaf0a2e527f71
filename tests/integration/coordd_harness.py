"""Starts and stops real coordd processes on 127.0.0.1 for integration tests.

Ports are chosen free at run time, every process is killed by its pid when
the test ends, and every wait is bounded in time.
"""

import base64
import hashlib
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

COORDD = os.environ.get("COORDD_BINARY", "coordd")
SERVING = re.compile(r"serving ZooKeeper clients on [0-9.]+:(\d+), HTTP on [0-9.]+:(\d+)")
START_TIMEOUT_S = 20.0

# The super user every server started here knows (--super-digest) unless a
# test gives its own: the admin API needs it (or ADMIN on
# /zookeeper/config), sent as HTTP Basic credentials.
ADMIN_USER = "super"
ADMIN_PASSWORD = "coord-admin"
ADMIN_AUTH = (ADMIN_USER, ADMIN_PASSWORD)


def digest_id(user, password):
    """user:base64(sha1(user:password)), ZooKeeper's digest identity."""
    return user + ":" + base64.b64encode(
        hashlib.sha1(("%s:%s" % (user, password)).encode()).digest()).decode()


ADMIN_DIGEST = digest_id(ADMIN_USER, ADMIN_PASSWORD)


def with_admin(args):
    """`args` with the harness's super user unless they name one."""
    args = list(args)
    if "--super-digest" not in args:
        args += ["--super-digest", ADMIN_DIGEST]
    return args


def basic_auth(auth):
    """The Authorization header's value for (user, password)."""
    return "Basic " + base64.b64encode(("%s:%s" % auth).encode()).decode()


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_was_taken(error):
    """Whether a server failed to start because a port chosen free was
    taken before it bound it: worth one more try with new ports."""
    return "Address already in use" in str(error)


def free_ports(count):
    """`count` distinct free ports, held open together while chosen so that
    no two picks collide."""
    socks = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def four_letter(port, word, timeout_s=5.0):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout_s) as s:
        s.sendall(word.encode())
        chunks = []
        while True:
            data = s.recv(65536)
            if not data:
                break
            chunks.append(data)
        return b"".join(chunks).decode()


class Coordd:
    """One coordd process with its own data directory."""

    def __init__(self, data_dir=None, extra_args=(), client_port=0, http_port=0):
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="coordd-it-")
        self.extra_args = with_admin(extra_args)
        # Runs in the child before exec (resource limits, for instance).
        self.preexec_fn = None
        # The environment to start it with; None: this process's.
        self.env = None
        self.proc = None
        self.port = None
        self.http_port = None
        # 0: any free port, read back at each start. A server of a cluster
        # keeps its ports across restarts, so that the clients' connection
        # string stays true.
        self.client_port_arg = client_port
        self.http_port_arg = http_port
        self.log_path = os.path.join(self.data_dir, "coordd.log")

    def start(self):
        self.spawn()
        return self.wait_ready()

    def spawn(self):
        """Starts the process without waiting for it (servers of a cluster
        come up together); wait_ready() waits."""
        # Port 0: the kernel picks free ports as coordd binds them, so no
        # other process can take them between a choice and the bind; the
        # ports are read back from coordd's first log line.
        os.makedirs(self.data_dir, exist_ok=True)
        log = open(self.log_path, "ab")
        self.log_start = log.tell()
        self.proc = subprocess.Popen(
            [COORDD, "--client-port", str(self.client_port_arg),
             "--http-port", str(self.http_port_arg),
             "--data-dir", os.path.join(self.data_dir, "data")] + self.extra_args,
            stdout=log, stderr=log, preexec_fn=self.preexec_fn, env=self.env)
        log.close()
        self.port = None

    def wait_ready(self, timeout_s=START_TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("coordd exited with %s:\n%s" % (self.proc.returncode, self.log()))
            if self.port is None:
                m = SERVING.search(self.log()[self.log_start:])
                if m:
                    self.port, self.http_port = int(m.group(1)), int(m.group(2))
            if self.port is not None:
                try:
                    if four_letter(self.port, "ruok", 1.0) == "imok":
                        return self
                except OSError:
                    pass
            time.sleep(0.05)
        raise RuntimeError("coordd did not answer ruok in time:\n" + self.log())

    def hosts(self):
        return "127.0.0.1:%d" % self.port

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def kill9(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def terminate(self, timeout_s=10.0):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.kill9()
                raise
        return self.proc.returncode if self.proc else None

    def cleanup(self):
        self.kill9()
        if self.own_dir:
            shutil.rmtree(self.data_dir, ignore_errors=True)


def http_json(port, path, timeout_s=2.0):
    import json
    import urllib.request
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout_s) as r:
        return json.loads(r.read().decode())


def http_call(port, method, path, body=None, timeout_s=20.0, auth=None):
    """(status, JSON reply) of one HTTP request, with Basic credentials
    when `auth` is (user, password) (ADMIN_AUTH for the admin API); an
    error status is returned, not raised."""
    import json
    import urllib.error
    import urllib.request
    headers = {"Content-Type": "application/json"}
    if auth is not None:
        headers["Authorization"] = basic_auth(auth)
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=None if body is None else body.encode(),
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as r:
            return r.status, json.loads(r.read().decode())
    except urllib.error.HTTPError as e:
        text = e.read().decode()
        try:
            return e.code, json.loads(text)
        except ValueError:
            return e.code, {"error": text}


def mode_of(port, timeout_s=1.0):
    """The Mode line of srvr (leader, follower, read-only, ...), or None
    when the server does not answer in time."""
    try:
        m = re.search(r"^Mode: (\S+)$", four_letter(port, "srvr", timeout_s), re.M)
    except OSError:
        return None
    return m.group(1) if m else None


class CoorddCluster:
    """N coordd servers of one cluster on 127.0.0.1, each with its own data
    directory and log, and with client, HTTP and peer ports fixed for the
    cluster's life, so that a restarted server is found where it was.

    Every server must know every other's peer port before any starts, so
    peer ports are chosen free beforehand; if another process takes one
    meanwhile, a server fails to listen and the whole start is retried
    once with new ports. A secret file (mode 600) authenticates the peers
    unless secret=None. Everything is killed by pid in cleanup().
    """

    def __init__(self, size=3, secret="coord-integration-test-secret", extra_args=(),
                 election_timeout_ms=150, tick_ms=25, client_addresses=False):
        self.size = size
        # --peers entries name each server's client address too
        # (N=host:peerport;host:clientport), so /zookeeper/config shows it.
        self.client_addresses = client_addresses
        self.joined = set()  # ids started with --join
        self.root = tempfile.mkdtemp(prefix="coordd-cluster-")
        self.ids = list(range(1, size + 1))
        self.extra_args = list(extra_args)
        self.election_timeout_ms = election_timeout_ms
        self.tick_ms = tick_ms
        self.secret_file = None
        if secret is not None:
            self.secret_file = self.write_secret("secret", secret)
        self.servers = {}
        self.stopped = set()  # SIGSTOPped ids
        self.down = set()  # ids the test killed or stopped: not a crash
        self.peer_ports = {}
        self.client_ports = {}
        self.http_ports = {}
        # Per-server overrides: a different secret file, more flags.
        self.secret_file_of = {}
        self.args_of = {}

    def write_secret(self, name, secret):
        path = os.path.join(self.root, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secret + "\n")
        return path

    def _choose_ports(self, extra=0):
        """Chooses each server's ports and returns `extra` more, all picked
        in one go: ports picked in two goes can repeat, because the first
        are free again when the second are picked."""
        ports = free_ports(3 * self.size + extra)
        for i, sid in enumerate(self.ids):
            self.peer_ports[sid] = ports[3 * i]
            self.client_ports[sid] = ports[3 * i + 1]
            self.http_ports[sid] = ports[3 * i + 2]
        return ports[3 * self.size:]

    def peer_entry(self, sid):
        entry = "%d=127.0.0.1:%d" % (sid, self.peer_ports[sid])
        if self.client_addresses:
            entry += ";127.0.0.1:%d" % self.client_ports[sid]
        return entry

    def peers_arg(self):
        return ",".join(self.peer_entry(sid) for sid in self.ids)

    def _make(self, sid):
        args = ["--id", str(sid), "--peers", self.peers_arg(),
                "--election-timeout-ms", str(self.election_timeout_ms),
                "--tick-ms", str(self.tick_ms), "--4lw-whitelist", "*"]
        secret = self.secret_file_of.get(sid, self.secret_file)
        if secret:
            args += ["--cluster-secret-file", secret]
        if sid in self.joined:
            args.append("--join")
        args += self.extra_args + list(self.args_of.get(sid, ()))
        return Coordd(data_dir=os.path.join(self.root, "server-%d" % sid), extra_args=args,
                      client_port=self.client_ports[sid], http_port=self.http_ports[sid])

    def start(self):
        """Starts every server (each answers ruok; no leader is awaited)."""
        for attempt in range(2):
            self._choose_ports()
            try:
                for sid in self.ids:
                    self.servers[sid] = self._make(sid)
                self.start_all()
                return self
            except RuntimeError as e:
                # A port taken between its choice and the bind: try again
                # with new ports; any other failure is the test's.
                self.kill_all()
                for sid in self.ids:
                    shutil.rmtree(self.servers[sid].data_dir, ignore_errors=True)
                if attempt == 1 or not port_was_taken(e):
                    raise
        return self

    def start_all(self):
        """Starts every server that is not running, all at once."""
        todo = [sid for sid in self.ids if not self.running(sid)]
        for sid in todo:
            self.down.discard(sid)
            self.servers[sid].spawn()
        for sid in todo:
            self.servers[sid].wait_ready()

    def spawn_joiner(self):
        """Starts one more server with --join and the next free id (its
        --peers: the servers of the cluster and itself); returns its id.
        It serves nothing until a member adds it."""
        sid = max(self.ids + list(self.servers)) + 1
        self.joined.add(sid)
        for attempt in range(2):
            ports = free_ports(3)
            self.peer_ports[sid], self.client_ports[sid], self.http_ports[sid] = ports
            if sid not in self.ids:
                self.ids.append(sid)
            self.servers[sid] = self._make(sid)
            try:
                self.servers[sid].start()
                return sid
            except RuntimeError as e:
                # A port taken between its choice and the bind: once more
                # with new ports.
                self.servers[sid].kill9()
                shutil.rmtree(self.servers[sid].data_dir, ignore_errors=True)
                if attempt == 1 or not port_was_taken(e):
                    raise
        return sid

    def member_line(self, sid, role="participant"):
        """server.N=... for a reconfig joining server sid."""
        return "server.%d=127.0.0.1:%d:0:%s;127.0.0.1:%d" % (
            sid, self.peer_ports[sid], role, self.client_ports[sid])

    def member_body(self, sid, role="participant"):
        """The admin API's JSON for adding server sid."""
        import json
        return json.dumps({"id": sid, "peer_address": "127.0.0.1:%d" % self.peer_ports[sid],
                           "client_address": "127.0.0.1:%d" % self.client_ports[sid],
                           "role": role})

    def retire(self, sid):
        """Kills server sid (removed from the cluster) and forgets it."""
        self.kill(sid)
        self.ids.remove(sid)

    def restart(self, sid):
        """Starts server sid again (after kill or stop) on the same ports
        and data directory."""
        if self.running(sid):
            self.stop(sid)
        self.down.discard(sid)
        self.servers[sid].spawn()
        self.servers[sid].wait_ready()

    def wipe(self, sid):
        """Kills server sid and removes its data directory (its log file
        stays); restart(sid) brings it back empty with the same id."""
        self.kill(sid)
        shutil.rmtree(os.path.join(self.servers[sid].data_dir, "data"), ignore_errors=True)

    def running(self, sid):
        s = self.servers.get(sid)
        return s is not None and s.proc is not None and s.proc.poll() is None

    def live(self):
        """Ids of servers running and not stopped."""
        return [sid for sid in self.ids if self.running(sid) and sid not in self.stopped]

    def kill(self, sid):
        self.down.add(sid)
        self.sigcont(sid)
        self.servers[sid].kill9()

    def stop(self, sid, timeout_s=15.0):
        """SIGTERM and wait for the exit; returns the exit code."""
        self.down.add(sid)
        self.sigcont(sid)
        return self.servers[sid].terminate(timeout_s)

    def sigterm(self, sid):
        """SIGTERM without waiting for the exit."""
        self.down.add(sid)
        self.sigcont(sid)
        self.servers[sid].proc.send_signal(signal.SIGTERM)

    def sigstop(self, sid):
        if self.running(sid):
            os.kill(self.servers[sid].proc.pid, signal.SIGSTOP)
            self.stopped.add(sid)

    def sigcont(self, sid):
        if sid in self.stopped:
            self.stopped.discard(sid)
            if self.running(sid):
                os.kill(self.servers[sid].proc.pid, signal.SIGCONT)

    def kill_all(self):
        for sid in list(self.servers):
            self.kill(sid)

    def cleanup(self):
        self.kill_all()
        shutil.rmtree(self.root, ignore_errors=True)

    # -- what the servers say ---------------------------------------------
    def port(self, sid):
        return self.client_ports[sid]

    def hosts(self, ids=None):
        """The connection string: every server's client address."""
        return ",".join("127.0.0.1:%d" % self.client_ports[sid] for sid in (ids or self.ids))

    def log(self, sid):
        return self.servers[sid].log()

    def mode(self, sid, timeout_s=1.0):
        if not self.running(sid) or sid in self.stopped:
            return None
        return mode_of(self.client_ports[sid], timeout_s)

    def leader(self):
        """The id of the one live server whose srvr says Mode: leader, or
        None (no leader, or two that both still think so)."""
        leaders = [sid for sid in self.live() if self.mode(sid) == "leader"]
        return leaders[0] if len(leaders) == 1 else None

    def wait_leader(self, timeout_s=15.0, other_than=None, among=None):
        """The leader's id, once every live server (of `among`, when
        given) follows it: none is still read-only from before it knew
        the leader."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            sid = self.leader()
            if sid is not None and sid != other_than and self._all_follow(sid, among):
                return sid
            time.sleep(0.05)
        raise AssertionError("no leader%s within %.1f s: modes %s" % (
            "" if other_than is None else " other than %d" % other_than, timeout_s,
            {sid: self.mode(sid) for sid in self.ids}))

    def _all_follow(self, leader, among):
        for sid in self.live():
            if among is not None and sid not in among:
                continue
            try:
                if self.status(sid)["leader_id"] != leader:
                    return False
            except OSError:
                return False
            if sid != leader and self.mode(sid) != "follower":
                return False
        return True

    def status(self, sid, timeout_s=2.0):
        """/v1/cluster/status of server sid (node_id, leader_id, term, ...)."""
        return http_json(self.http_ports[sid], "/v1/cluster/status", timeout_s)

    def term(self):
        """The highest Raft term the live servers report: each election
        raises it."""
        terms = []
        for sid in self.live():
            try:
                terms.append(self.status(sid)["term"])
            except OSError:
                pass
        return max(terms) if terms else None

    def zxid(self, sid):
        m = re.search(r"^Zxid: (0x[0-9a-f]+)$", four_letter(self.client_ports[sid], "srvr", 2.0),
                      re.M)
        return int(m.group(1), 16) if m else None

    def zxid_at_least(self, sid, target):
        """Whether server sid serves with `target` applied. A server that
        does not serve (between a restart and the first leader it hears,
        or read-only) answers srvr without a zxid: not there yet."""
        z = self.zxid(sid)
        return z is not None and z >= target

    def zxids_agree(self, ids):
        """Whether every server of `ids` serves, all at one zxid."""
        zs = {self.zxid(sid) for sid in ids}
        return len(zs) == 1 and None not in zs

    def crashed(self):
        """Ids of servers that exited without the test asking."""
        return [sid for sid in self.ids
                if sid in self.servers and sid not in self.down and self.servers[sid].proc
                and self.servers[sid].proc.poll() is not None]

    def check_alive(self):
        gone = self.crashed()
        if gone:
            raise AssertionError("server(s) %s exited on their own:\n%s" % (gone, "\n".join(
                "---- server %d:\n%s" % (sid, self.log(sid)[-3000:]) for sid in gone)))

    def wait(self, what, predicate, timeout_s=15.0, interval_s=0.05):
        """Polls predicate() until it is true; fails with `what` after the
        timeout, or at once when a server crashed."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            self.check_alive()
            if predicate():
                return
            time.sleep(interval_s)
        raise AssertionError("%s: not within %.1f s" % (what, timeout_s))
