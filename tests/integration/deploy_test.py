"""What deploy/ ships, used as an operator would.

LocalCluster drives deploy/local-cluster.sh: three servers, a write with
kazoo through the connection string it prints, the leader killed and a new
one elected, the old leader restarted on its data, stop; a fourth server
added and the leader removed. ExampleConfigs
starts coordd from every file of deploy/examples/ (addresses moved to
127.0.0.1) and checks the server took the file's settings. SystemdUnit runs
`systemd-analyze verify` on deploy/systemd/coordd@.service (skipped when
systemd-analyze is missing).

Every process is found by the pid the script wrote and killed by it; every
wait is bounded.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import unittest
import urllib.request

import ctest_main
from coordd_harness import COORDD, four_letter, free_port

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCRIPT = os.path.join(REPO, "deploy", "local-cluster.sh")
EXAMPLES = os.path.join(REPO, "deploy", "examples")
UNIT = os.path.join(REPO, "deploy", "systemd", "coordd@.service")
# A sanitizer build on a busy machine takes seconds to start.
START_TIMEOUT_S = 90
STEP_TIMEOUT_S = 30.0

SERVER_LINE = re.compile(
    r"^server (\d+)  client 127\.0\.0\.1:(\d+)  http 127\.0\.0\.1:(\d+)  peer 127\.0\.0\.1:(\d+)")
STATUS_LINE = re.compile(r"^server (\d+)  (\S+)")


def read(path):
    with open(path, errors="replace") as f:
        return f.read()


def http_json(port, path, timeout_s=2.0):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout_s) as r:
        return json.loads(r.read().decode())


class LocalCluster(unittest.TestCase):
    def setUp(self):
        self.state = tempfile.mkdtemp(prefix="coord-local-cluster-")
        self.env = dict(os.environ, COORD_CLUSTER_DIR=self.state, COORDD=COORDD,
                        COORD_CLUSTER_START_TIMEOUT_S=str(START_TIMEOUT_S),
                        COORD_CLUSTER_STOP_TIMEOUT_S="20")

    def tearDown(self):
        # Whatever the test left running, by the pids the script recorded.
        for name in sorted(os.listdir(self.state)):
            pid_file = os.path.join(self.state, name, "coordd.pid")
            try:
                with open(pid_file) as f:
                    pid = int(f.read().strip())
                # Empty while a server executes itself again at start.
                cmdline = read("/proc/%d/cmdline" % pid)
                if not cmdline or COORDD in cmdline:
                    os.kill(pid, signal.SIGKILL)
            except (OSError, ValueError):
                pass
        shutil.rmtree(self.state, ignore_errors=True)

    def run_script(self, *args, timeout_s=STEP_TIMEOUT_S, check=True):
        p = subprocess.run(["bash", SCRIPT] + list(args), env=self.env, capture_output=True,
                           text=True, timeout=timeout_s)
        if check and p.returncode != 0:
            self.fail("local-cluster.sh %s exited %d\nstdout:\n%s\nstderr:\n%s" %
                      (" ".join(args), p.returncode, p.stdout, p.stderr))
        return p

    def status(self):
        roles = {}
        for line in self.run_script("status").stdout.splitlines():
            m = STATUS_LINE.match(line)
            if m:
                roles[int(m.group(1))] = m.group(2)
        return roles

    def wait_status(self, want, what):
        """Polls status until want(roles) holds; returns the roles."""
        deadline = time.monotonic() + STEP_TIMEOUT_S
        roles = {}
        while time.monotonic() < deadline:
            roles = self.status()
            if want(roles):
                return roles
            time.sleep(0.1)
        self.fail("%s: status stayed %r" % (what, roles))

    def leaders(self, roles):
        return [i for i, r in roles.items() if r == "leader"]

    def test_start_write_kill_leader_restart_stop(self):
        from kazoo.client import KazooClient

        out = self.run_script("start", "3", timeout_s=START_TIMEOUT_S * 2).stdout
        servers = {int(m.group(1)): (int(m.group(2)), int(m.group(3)), int(m.group(4)))
                   for m in map(SERVER_LINE.match, out.splitlines()) if m}
        self.assertEqual(sorted(servers), [1, 2, 3], out)
        ports = [p for s in servers.values() for p in s]
        self.assertEqual(len(set(ports)), 9, "every address distinct: %r" % servers)
        connect = re.search(r"^connection string: (\S+)$", out, re.M).group(1)
        self.assertEqual(connect, ",".join("127.0.0.1:%d" % servers[i][0] for i in (1, 2, 3)))
        self.assertEqual(self.run_script("hosts").stdout.strip(), connect)

        secret = os.path.join(self.state, "secret")
        self.assertEqual(os.stat(secret).st_mode & 0o777, 0o600)
        self.assertGreaterEqual(len(read(secret).strip()), 32)
        for i in (1, 2, 3):
            st = http_json(servers[i][1], "/v1/cluster/status")
            self.assertEqual(st["node_id"], i)
            self.assertEqual(sorted(m["id"] for m in st["members"]), [1, 2, 3])

        z = KazooClient(hosts=connect, timeout=10.0)
        z.start(timeout=STEP_TIMEOUT_S)
        try:
            z.create("/deploy-test", b"before the failover")
            self.assertEqual(z.get("/deploy-test")[0], b"before the failover")
        finally:
            z.stop()
            z.close()

        roles = self.wait_status(lambda r: len(r) == 3 and len(self.leaders(r)) == 1,
                                 "one leader of three")
        self.assertEqual(sorted(roles.values()), ["follower", "follower", "leader"])
        old = self.leaders(roles)[0]

        self.run_script("kill", str(old))
        roles = self.wait_status(
            lambda r: r.get(old) == "down" and len(self.leaders(r)) == 1, "a new leader")
        new = self.leaders(roles)[0]
        self.assertNotEqual(new, old)

        self.run_script("restart", str(old), timeout_s=START_TIMEOUT_S * 2)
        self.wait_status(lambda r: sorted(r.values()) == ["follower", "follower", "leader"],
                         "the old leader back as a follower")
        # The restarted server has the write, read through it alone.
        z = KazooClient(hosts="127.0.0.1:%d" % servers[old][0], timeout=10.0)
        z.start(timeout=STEP_TIMEOUT_S)
        try:
            z.sync("/deploy-test")
            self.assertEqual(z.get("/deploy-test")[0], b"before the failover")
        finally:
            z.stop()
            z.close()

        self.run_script("stop")
        self.assertEqual(set(self.status().values()), {"down"})
        for i in (1, 2, 3):
            self.assertFalse(os.path.exists(os.path.join(self.state, "server-%d" % i,
                                                         "coordd.pid")))

    def test_add_and_remove_servers(self):
        """docs/OPERATIONS.md, "Adding a server" and "Removing a server"."""
        from kazoo.client import KazooClient

        self.run_script("start", "3", timeout_s=START_TIMEOUT_S * 2)
        out = self.run_script("add", timeout_s=START_TIMEOUT_S * 2).stdout
        m = re.search(r"^server 4  client 127\.0\.0\.1:(\d+)  http 127\.0\.0\.1:(\d+)", out, re.M)
        self.assertIsNotNone(m, out)
        client4, http4 = int(m.group(1)), int(m.group(2))
        self.assertRegex(out, r"added server 4 \(membership version [0-9a-f]+\)")
        roles = self.wait_status(lambda r: len(r) == 4 and len(self.leaders(r)) == 1 and
                                 r.get(4) == "follower", "four servers, the new one following")
        st = http_json(http4, "/v1/cluster")
        self.assertEqual(sorted(m["id"] for m in st["members"]), [1, 2, 3, 4])
        # Through the new server alone: it serves the tree and takes writes.
        z = KazooClient(hosts="127.0.0.1:%d" % client4, timeout=10.0)
        z.start(timeout=STEP_TIMEOUT_S)
        try:
            z.create("/added", b"through server 4")
            config, _ = z.get("/zookeeper/config")
        finally:
            z.stop()
            z.close()
        self.assertIn("server.4=127.0.0.1:", config.decode())
        self.assertRegex(config.decode(), r"server\.1=127\.0\.0\.1:\d+:0:participant;"
                                          r"127\.0\.0\.1:\d+")

        # The leader goes: the cluster keeps the three others.
        leader = self.leaders(roles)[0]
        out = self.run_script("remove", str(leader), timeout_s=START_TIMEOUT_S).stdout
        self.assertIn("removed server %d" % leader, out)
        roles = self.wait_status(lambda r: len(r) == 3 and len(self.leaders(r)) == 1,
                                 "three servers and a leader")
        self.assertNotIn(leader, roles)
        self.assertFalse(os.path.exists(os.path.join(self.state, "server-%d" % leader,
                                                     "coordd.pid")))
        z = KazooClient(hosts=self.run_script("hosts").stdout.strip(), timeout=10.0)
        z.start(timeout=STEP_TIMEOUT_S)
        try:
            z.create("/after-remove", b"")
            config, _ = z.get("/zookeeper/config")
        finally:
            z.stop()
            z.close()
        self.assertNotIn("server.%d=" % leader, config.decode())
        # Stopped and started again, the cluster is the one it became.
        self.run_script("stop")
        self.run_script("start", timeout_s=START_TIMEOUT_S * 2)
        roles = self.wait_status(lambda r: len(r) == 3 and len(self.leaders(r)) == 1,
                                 "the three back")
        self.assertEqual(sorted(roles), sorted({1, 2, 3, 4} - {leader}))
        p = self.run_script("remove", "9", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no server '9'", p.stderr)

    def znode_count(self, client_port):
        m = re.search(r"^zk_znode_count\t(\d+)$", four_letter(client_port, "mntr"), re.M)
        return int(m.group(1)) if m else None

    def start_small_snapshots(self):
        """Three servers that snapshot every 50 entries, so that a server
        behind gets the snapshot; their ports by id."""
        self.run_script("start", "3", "--", "--snapshot-entries", "50",
                        timeout_s=START_TIMEOUT_S * 2)
        ports = {}
        for i in (1, 2, 3):
            with open(os.path.join(self.state, "server-%d" % i, "ports")) as f:
                kv = dict(line.split("=", 1) for line in f.read().split())
            ports[i] = (int(kv["client"]), int(kv["http"]))
        return ports

    def write_znodes(self, prefix, count):
        from kazoo.client import KazooClient
        z = KazooClient(hosts=self.run_script("hosts").stdout.strip(), timeout=10.0)
        z.start(timeout=STEP_TIMEOUT_S)
        try:
            for i in range(count):
                z.create("/%s-%d" % (prefix, i), b"x")
        finally:
            z.stop()
            z.close()

    def test_a_wiped_server_with_the_same_id_catches_up(self):
        """docs/OPERATIONS.md, "Replacing a dead server"."""
        ports = self.start_small_snapshots()
        self.write_znodes("before", 200)
        roles = self.wait_status(lambda r: len(self.leaders(r)) == 1, "a leader")
        leader = self.leaders(roles)[0]
        wiped = next(i for i in (1, 2, 3) if i != leader)
        self.run_script("kill", str(wiped))
        data = os.path.join(self.state, "server-%d" % wiped, "data")
        shutil.rmtree(data)
        os.makedirs(data)
        self.run_script("restart", str(wiped), timeout_s=START_TIMEOUT_S * 2)
        # The leader finds the empty log when it next replicates a write,
        # then sends its snapshot (in chunks) and the log after it.
        self.write_znodes("after", 5)
        deadline = time.monotonic() + STEP_TIMEOUT_S
        want = self.znode_count(ports[leader][0])
        while time.monotonic() < deadline and self.znode_count(ports[wiped][0]) != want:
            time.sleep(0.1)
        self.assertEqual(self.znode_count(ports[wiped][0]), want)
        self.assertGreater(want, 205)
        self.assertTrue(os.listdir(os.path.join(data, "snapshots")))
        self.wait_status(lambda r: sorted(r.values()) == ["follower", "follower", "leader"],
                         "all three up")
        self.write_znodes("later", 5)

    def test_restore_from_a_snapshot_backup(self):
        """docs/OPERATIONS.md, "Restoring a cluster from a backup"."""
        self.start_small_snapshots()
        self.write_znodes("kept", 120)
        snapshots = os.path.join(self.state, "server-1", "data", "snapshots")
        deadline = time.monotonic() + STEP_TIMEOUT_S
        names = []
        while time.monotonic() < deadline and not names:
            names = sorted(n for n in os.listdir(snapshots) if n.endswith(".snap"))
            time.sleep(0.1)
        self.assertTrue(names)
        backup = os.path.join(self.state, names[-1])
        shutil.copy(os.path.join(snapshots, names[-1]), backup)
        index = int(names[-1][len("snapshot-"):-len(".snap")], 16)
        self.write_znodes("lost", 5)
        self.run_script("stop")
        for i in (1, 2, 3):
            data = os.path.join(self.state, "server-%d" % i, "data")
            shutil.rmtree(data)
            os.makedirs(os.path.join(data, "snapshots"))
            shutil.copy(backup, os.path.join(data, "snapshots", names[-1]))
        for i in (1, 2, 3):
            self.run_script("restart", str(i), "--", "--recover-from-snapshot",
                            timeout_s=START_TIMEOUT_S * 2)
        self.wait_status(lambda r: sorted(r.values()) == ["follower", "follower", "leader"],
                         "the restored cluster")
        from kazoo.client import KazooClient
        z = KazooClient(hosts=self.run_script("hosts").stdout.strip(), timeout=10.0)
        z.start(timeout=STEP_TIMEOUT_S)
        try:
            children = z.get_children("/")
            kept = [c for c in children if c.startswith("kept-")]
            # Everything up to the snapshot's index, nothing after the backup.
            self.assertGreater(len(kept), 0)
            self.assertLessEqual(len(kept), index)
            self.assertEqual([c for c in children if c.startswith("lost-")], [])
            z.create("/after-restore", b"y")
        finally:
            z.stop()
            z.close()
        for i in (1, 2, 3):
            self.assertIn("recovered: the log now starts from",
                          read(os.path.join(self.state, "server-%d" % i, "coordd.log")))

    def test_bad_arguments_start_nothing(self):
        for args in (["start", "4"], ["start", "x"], ["kill", "1"], ["status"], ["frobnicate"]):
            p = self.run_script(*args, check=False)
            self.assertNotEqual(p.returncode, 0, args)
            self.assertTrue(p.stderr.strip(), args)
        self.assertEqual(os.listdir(self.state), [])


class ExampleConfigs(unittest.TestCase):
    """Each example file, with its addresses moved to 127.0.0.1 on the
    command line (which wins over the file), starts a server that took the
    file's id, peers' ids and cluster name."""

    def start_with(self, conf, extra):
        data = tempfile.mkdtemp(prefix="coord-example-conf-")
        self.addCleanup(shutil.rmtree, data, True)
        secret = os.path.join(data, "secret")
        with open(os.open(secret, os.O_WRONLY | os.O_CREAT, 0o600), "w") as f:
            f.write("an example secret of more than sixteen bytes\n")
        log_path = os.path.join(data, "log")
        log = open(log_path, "wb")
        proc = subprocess.Popen(
            [COORDD, "--config", conf, "--bind", "127.0.0.1", "--client-port", "0",
             "--http-port", "0", "--data-dir", os.path.join(data, "data"),
             "--cluster-secret-file", secret] + extra, stdout=log, stderr=log)
        log.close()

        def stop():
            if proc.poll() is None:
                proc.kill()
                proc.wait(timeout=10)
        self.addCleanup(stop)
        return proc, log_path

    def test_every_example_starts_with_its_settings(self):
        confs = []
        for d in sorted(os.listdir(EXAMPLES)):
            if not d.startswith("coordd-"):
                continue  # the examples of other programs (healer/, ...)
            for name in sorted(os.listdir(os.path.join(EXAMPLES, d))):
                confs.append((int(re.match(r"coordd-(\d+)-servers", d).group(1)),
                              int(re.match(r"coordd-(\d+)\.conf", name).group(1)),
                              os.path.join(EXAMPLES, d, name)))
        self.assertEqual(len(confs), 8)
        serving = re.compile(r"serving ZooKeeper clients on [0-9.]+:(\d+), HTTP on [0-9.]+:(\d+)")
        for size, node, conf in confs:
            with self.subTest(conf=os.path.relpath(conf, REPO)):
                text = read(conf)
                self.assertIn("id = %d\n" % node, text)
                self.assertIn("bind = \"10.0.0.%d\"" % node, text)
                # The peers of the file, at ports of this machine nobody
                # listens on: the server runs alone, without a quorum.
                peers = ",".join("%d=127.0.0.1:%d" % (i, free_port()) for i in range(1, size + 1))
                proc, log_path = self.start_with(conf, ["--peers", peers])
                deadline = time.monotonic() + START_TIMEOUT_S
                m = None
                while m is None and time.monotonic() < deadline and proc.poll() is None:
                    m = serving.search(read(log_path))
                    time.sleep(0.05)
                log = read(log_path)
                self.assertIsNotNone(m, "did not start:\n" + log)
                self.assertIn("node %d of cluster 'coord-prod'" % node, log)
                st = http_json(int(m.group(2)), "/v1/cluster/status")
                self.assertEqual(st["node_id"], node)
                self.assertEqual(sorted(x["id"] for x in st["members"]),
                                 list(range(1, size + 1)))
                proc.send_signal(signal.SIGTERM)
                self.assertEqual(proc.wait(timeout=STEP_TIMEOUT_S), 0, log)

    def test_a_misspelt_key_stops_the_server(self):
        data = tempfile.mkdtemp(prefix="coord-example-conf-")
        self.addCleanup(shutil.rmtree, data, True)
        conf = os.path.join(data, "bad.conf")
        with open(conf, "w") as f:
            f.write("client-port = 0\nhttp-port = 0\nmax-sesion-timeout-ms = 60000\n")
        p = subprocess.run([COORDD, "--config", conf, "--data-dir", os.path.join(data, "d")],
                           capture_output=True, text=True, timeout=STEP_TIMEOUT_S)
        self.assertNotEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("max-sesion-timeout-ms", p.stdout + p.stderr)


class SystemdUnit(unittest.TestCase):
    def test_unit_verifies(self):
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze is not installed")
        d = tempfile.mkdtemp(prefix="coord-systemd-")
        self.addCleanup(shutil.rmtree, d, True)
        # verify checks that ExecStart's binary exists: point it at the
        # built coordd; everything else as shipped.
        text = read(UNIT)
        self.assertIn("ExecStart=/usr/local/bin/coordd --config /etc/coordd/coordd-%i.conf", text)
        for key in ("NoNewPrivileges=yes", "ProtectSystem=strict", "ReadWritePaths=/var/lib/coordd",
                    "SystemCallFilter=@system-service", "KillSignal=SIGTERM", "User=coordd"):
            self.assertIn(key + "\n", text)
        with open(os.path.join(d, "coordd@.service"), "w") as f:
            f.write(text.replace("/usr/local/bin/coordd", os.path.abspath(COORDD)))
        os.symlink("coordd@.service", os.path.join(d, "coordd@2.service"))
        p = subprocess.run([analyze, "verify", os.path.join(d, "coordd@2.service")],
                           capture_output=True, text=True, timeout=60)
        # verify also reports on units the host's own configuration pulls in;
        # only what it says about this unit counts.
        ours = [line for line in (p.stdout + p.stderr).splitlines() if "coordd@" in line]
        self.assertEqual(ours, [], p.stdout + p.stderr)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    ctest_main.main()
