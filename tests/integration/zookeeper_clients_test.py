"""coordd driven by Apache ZooKeeper's own clients: zkCli.sh (Java) and the C
client (libzookeeper_mt, through zk_c_client_check). Skipped where the
Debian packages are not installed."""

import os
import re
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ctest_main  # noqa: E402
import zkwire as zw  # noqa: E402
from coordd_harness import Coordd  # noqa: E402

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
C_CHECK = os.environ.get("ZK_C_CLIENT_CHECK", "")
RUN_TIMEOUT_S = 120

CLI_SCRIPT = """\
create /zc hello
create /zc again
get /zc
set /zc world
stat /zc
get -w /zc
set /zc changed
ls -w /zc
create /zc/child c
create -e /zc/eph e
create -s /zc/seq- s
create -e -s /zc/es- s
create -c /zc/cont
create -t 60000 /zc/ttl t
ls /zc
getAllChildrenNumber /zc
getEphemerals /zc
addauth digest alice:secret
whoami
create /zc/acl a auth:alice:secret:cdrwa
getAcl /zc/acl
setAcl /zc/child world:anyone:r
getAcl /zc/child
set /zc/child nope
addWatch -m PERSISTENT_RECURSIVE /zc/rec
create /zc/rec r
create /zc/rec/deep d
removewatches /zc/rec
sync /zc
delete /zc/eph
delete /zc
deleteall /zc/rec
get /zc/missing
quit
"""

# What ZooKeeper 3.8 prints for CLI_SCRIPT, in order (other lines may come
# between them); a tuple lists equally good lines.
CLI_EXPECTED = [
    "WatchedEvent state:SyncConnected type:None path:null",
    "Created /zc",
    "Node already exists: /zc",
    "hello",
    "dataVersion = 1",
    "numChildren = 0",
    "world",
    "WatchedEvent state:SyncConnected type:NodeDataChanged path:/zc",
    "[]",
    "WatchedEvent state:SyncConnected type:NodeChildrenChanged path:/zc",
    "Created /zc/child",
    "Created /zc/eph",
    "Created /zc/seq-0000000002",
    "Created /zc/es-0000000003",
    "Created /zc/cont",
    "Created /zc/ttl",
    "[child, cont, eph, es-0000000003, seq-0000000002, ttl]",
    "6",
    ("[/zc/es-0000000003, /zc/eph]", "[/zc/eph, /zc/es-0000000003]"),  # unordered
    "Auth scheme: User",
    "Created /zc/acl",
    "'digest,'alice:aYXlLOpEooaV1cRAvUL1fp9Qt7E=",
    ": cdrwa",
    "'world,'anyone",
    ": r",
    "Insufficient permission : /zc/child",
    "WatchedEvent state:SyncConnected type:NodeCreated path:/zc/rec",
    "Created /zc/rec",
    "WatchedEvent state:SyncConnected type:NodeCreated path:/zc/rec/deep",
    "Created /zc/rec/deep",
    "WatchedEvent state:SyncConnected type:PersistentWatchRemoved path:/zc/rec",
    "Sync is OK",
    "Node not empty: /zc",
    "Node does not exist: /zc/missing",
    "WatchedEvent state:Closed type:None path:null",
]


def zkcli(server, args=(), stdin=None):
    env = dict(os.environ, CLIENT_JVMFLAGS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    p = subprocess.run([ZKCLI, "-server", server.hosts()] + list(args), input=stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       timeout=RUN_TIMEOUT_S, env=env)
    return p.returncode, [l for l in p.stdout.splitlines() if not l.startswith("SLF4J")]


ZKCLI_MISSING = ("" if os.access(ZKCLI, os.X_OK) and shutil.which("java") else
                 "zkCli.sh or java is missing (Debian zookeeper)")
C_CHECK_MISSING = ("" if C_CHECK and os.access(C_CHECK, os.X_OK) else
                   "zk_c_client_check was not built (Debian libzookeeper-mt-dev)")


class WithCoordd(unittest.TestCase):
    """One coordd for the whole class."""

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

    def exists(self, path):
        c = zw.Conn(self.server.port)
        try:
            c.handshake()
            _, f = c.call(zw.EXISTS, zw.path_watch_body(path))
            c.call(zw.CLOSE_SESSION)
            return f.err == 0
        finally:
            c.close()


@unittest.skipIf(ZKCLI_MISSING, ZKCLI_MISSING)
class ZkCli(WithCoordd):
    def test_zkcli_script(self):
        _, lines = zkcli(self.server, stdin=CLI_SCRIPT)  # exit code: the last command's
        # Replies and watch events are printed by two client threads: check
        # each kind in order, not their interleaving.
        def is_event(line):
            return isinstance(line, str) and line.startswith("WatchedEvent")

        self.assertEqual([l for l in lines if is_event(l)], [w for w in CLI_EXPECTED if is_event(w)])
        lines = [l for l in lines if not is_event(l)]
        pos = 0
        for want in [w for w in CLI_EXPECTED if not is_event(w)]:
            found = [lines.index(w, pos) for w in (want if isinstance(want, tuple) else (want,))
                     if w in lines[pos:]]
            if not found:
                self.fail("zkCli output lacks %r after line %d:\n%s" % (want, pos, "\n".join(lines)))
            pos = min(found) + 1
        # whoami lists the identities in no particular order.
        who = lines.index("Auth scheme: User")
        self.assertEqual(sorted(lines[who + 1:who + 3]), ["digest: alice", "ip: 127.0.0.1"])
        self.assertFalse([l for l in lines if "Exception" in l or "ConnectionLoss" in l],
                         "\n".join(lines))
        # quit closed the session: its ephemeral went with it.
        self.assertFalse(self.exists("/zc/es-0000000003"))
        self.assertTrue(self.exists("/zc/child"))

    def test_zkcli_one_shot_commands(self):
        rc, lines = zkcli(self.server, ["create", "/zc-one", "x"])
        self.assertEqual(rc, 0)
        self.assertIn("Created /zc-one", lines)
        rc, lines = zkcli(self.server, ["stat", "/zc-one"])
        self.assertEqual(rc, 0)
        self.assertTrue(any(re.fullmatch(r"cZxid = 0x[0-9a-f]+", l) for l in lines), lines)
        self.assertIn("dataLength = 1", lines)


@unittest.skipIf(C_CHECK_MISSING, C_CHECK_MISSING)
class CClient(WithCoordd):
    def test_c_client(self):
        p = subprocess.run([C_CHECK, self.server.hosts()], capture_output=True, text=True,
                           timeout=RUN_TIMEOUT_S)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)
        self.assertIn("resume after cut ok", p.stdout)


if __name__ == "__main__":
    ctest_main.main()
