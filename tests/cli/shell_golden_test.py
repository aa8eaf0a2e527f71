"""Golden tests of coordctl driven without a terminal: the same stdin script
against coordd and against Apache ZooKeeper 3.8 must print the same text
(zxids, times and session ids normalised), and that text must be what
ZooKeeper's own zkCli.sh prints for the script; one-shot mode is checked
byte for byte, with its exit codes, --json and data from stdin or a file.

The ZooKeeper parts (AgainstZooKeeper, a ctest entry of its own) report
"Skipped", with the reason, when Java or the jars are missing.
"""

import json
import os
import subprocess
import tempfile
import unittest

import ctest_main
import zookeeper_harness
from cli_support import coordctl, coordctl_split, normalize
from coordd_harness import Coordd

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"

# Commands whose output coordctl prints exactly as zkCli.sh does. Paths are
# unique to this script (the servers are shared with the other tests).
SCRIPT = """\
create /g hello
create /g again
create /g/b
create -e /g/e1 eph
create -s /g/s seq
create -s /g/s seq
create -c /gcont
create -t 5000 /gttl tt
ls /g
ls -s /g
get /g
get -s /g
get /g/b
get /nope
set /g world
set -s /g w2
set -v 99 /g w3
stat /g
stat /nope
delete /g
delete -v 9 /g/b
delete /g/b
create /g/e1/child
ls /g
getEphemerals
getEphemerals /g
getAllChildrenNumber /g
getAcl /g
getAcl -s /g
getAcl /nope
sync /g
create /w
get -w /w
set /w changed
ls -w /w
create /w/c1
stat -w /w/c1
delete /w/c1
addWatch -m persistent_recursive /w
create /w/x
set /w/x 1
delete /w/x
removewatches /w
create /q
addWatch -m persistent /q
removewatches /q
removewatches /q
set /nope x
deleteall /nope
deleteall /w
ls /w
addauth digest alice:secret
create /p x auth::cdrwa
getAcl /p
setAcl /p world:anyone:r
getAcl /p
set /p zz
setAcl -s /p world:anyone:rwcda
ls -R /w
ls /g
whoami
create /r
create /r/a
create /r/a/b
ls -R /r
create /pw
get -w /pw
set /pw x
set /pw y
history
redo 8
"""


def zkcli_text(raw):
    """zkCli.sh's output without its start-up banner and first connection event."""
    lines = raw.splitlines()
    skip = ("SLF4J:", "Connecting to ", "Welcome to ZooKeeper!", "JLine support is")
    lines = [l for l in lines if not l.startswith(skip)]
    # The connection event comes from zkCli's event thread: usually first,
    # but on a busy machine after the first command's output. (split_events
    # drops the WATCHER:: and blank lines around each event.)
    connected = "WatchedEvent state:SyncConnected type:None path:null"
    if connected in lines:
        lines.remove(connected)
    return "\n".join(lines) + "\n"


def split_events(text):
    """Splits out watch events: zkCli prints them from another thread, in
    several println calls, so their place among command output (and the
    blank lines around them) is not fixed there. Returns the sorted event
    lines and the other non-blank lines."""
    events, rest = [], []
    for line in text.splitlines():
        if line.startswith("WatchedEvent "):
            events.append(line)
        elif line and line != "WATCHER::":
            rest.append(line)
    return sorted(events), "\n".join(rest) + "\n"


@unittest.skipUnless(zookeeper_harness.available(), "java or the ZooKeeper 3.8 jars are missing")
class AgainstZooKeeper(unittest.TestCase):
    """The same script through coordctl against coordd and ZooKeeper 3.8, and
    through zkCli.sh."""

    @classmethod
    def setUpClass(cls):
        cls.zk = zookeeper_harness.ZooKeeper().launch()
        try:
            cls.coordd = Coordd().start()
        except Exception:
            cls.zk.cleanup()
            raise
        cls.zk.wait_ready()

    @classmethod
    def tearDownClass(cls):
        cls.coordd.cleanup()
        cls.zk.cleanup()

    def zk_hosts(self):
        return "127.0.0.1:%d" % self.zk.port

    def test_script_prints_the_same_on_coordd_and_zookeeper(self):
        rc_c, out_c = coordctl(self.coordd.hosts(), stdin=SCRIPT)
        rc_z, out_z = coordctl(self.zk_hosts(), stdin=SCRIPT)
        got_c, got_z = normalize(out_c), normalize(out_z)
        self.assertEqual(got_z, got_c, "coordctl prints differently against coordd (second) "
                         "than against ZooKeeper (first)")
        self.assertEqual(rc_c, rc_z)
        # A script's exit code is that of its last failing command
        # (ls -R of the deleted /w).
        self.assertEqual(rc_c, 2)
        self.assertIn("Insufficient permission : /p\n", got_c)

    def test_script_prints_what_zkcli_prints(self):
        hosts = self.zk_hosts()
        if not os.access(ZKCLI, os.X_OK):
            self.skipTest("zkCli.sh is missing (Debian zookeeper)")
        # Fresh paths: the same script under a prefix on the same server.
        prefixed_c = SCRIPT.replace(" /", " /c_")
        prefixed_z = SCRIPT.replace(" /", " /z_")
        _, ours = coordctl(hosts, stdin=prefixed_c)
        p = subprocess.run([ZKCLI, "-server", hosts], input=prefixed_z.encode(),
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=120)
        theirs = zkcli_text(p.stdout.decode(errors="replace"))
        ours = ours.replace("/c_", "/z_")
        ev_ours, rest_ours = split_events(normalize(ours))
        ev_theirs, rest_theirs = split_events(normalize(theirs))
        self.assertIn("Created /z_g\n", rest_theirs)
        self.assertEqual(len(ev_theirs), 9, theirs)
        self.assertEqual(rest_theirs, rest_ours)
        self.assertEqual(ev_theirs, ev_ours)


class ShellGoldenTest(unittest.TestCase):
    """coordctl against coordd alone."""

    @classmethod
    def setUpClass(cls):
        cls.coordd = Coordd().start()

    @classmethod
    def tearDownClass(cls):
        cls.coordd.cleanup()

    # -- one-shot mode, byte for byte -----------------------------------------

    def run1(self, *args, stdin="", extra=()):
        return coordctl_split(self.coordd.hosts(), args, stdin=stdin, extra=extra)

    def test_one_shot_outputs_and_exit_codes(self):
        self.assertEqual(self.run1("create", "/one", "hello"), (0, "Created /one\n", ""))
        self.assertEqual(self.run1("get", "/one"), (0, "hello\n", ""))
        self.assertEqual(self.run1("create", "/one/kid"), (0, "Created /one/kid\n", ""))
        self.assertEqual(self.run1("ls", "/one"), (0, "[kid]\n", ""))
        self.assertEqual(self.run1("get", "/one/kid"), (0, "null\n", ""))
        self.assertEqual(self.run1("get", "/none"), (2, "", "Node does not exist: /none\n"))
        self.assertEqual(self.run1("create", "/one", "x"), (3, "", "Node already exists: /one\n"))
        self.assertEqual(self.run1("set", "-v", "7", "/one", "x"),
                         (4, "", "version No is not valid : /one\n"))
        self.assertEqual(self.run1("delete", "/one"), (5, "", "Node not empty: /one\n"))
        self.assertEqual(self.run1("create", "/locked", "x", "world:anyone:r"),
                         (0, "Created /locked\n", ""))
        self.assertEqual(self.run1("set", "/locked", "y"),
                         (6, "", "Insufficient permission : /locked\n"))
        self.assertEqual(self.run1("getAcl", "/locked"), (0, "'world,'anyone\n: r\n", ""))
        self.assertEqual(self.run1("sync", "/one"), (0, "Sync is OK\n", ""))
        self.assertEqual(self.run1("getAllChildrenNumber", "/one"), (0, "1\n", ""))
        self.assertEqual(self.run1("deleteall", "/one"), (0, "", ""))
        self.assertEqual(self.run1("stat", "/one"), (2, "", "Node does not exist: /one\n"))
        rc, out, err = self.run1("stat", "/locked")
        self.assertEqual(rc, 0)
        self.assertEqual(normalize(out), "cZxid = <zxid>\nctime = <time>\nmZxid = <zxid>\n"
                         "mtime = <time>\npZxid = <zxid>\ncversion = 0\ndataVersion = 0\n"
                         "aclVersion = 0\nephemeralOwner = 0x0\ndataLength = 1\nnumChildren = 0\n")

    def test_one_shot_usage_errors_exit_one(self):
        rc, out, err = self.run1("bogus")
        self.assertEqual((rc, out), (1, ""))
        self.assertEqual(err, "Command not found: bogus (type help for the list)\n")
        self.assertEqual(self.run1("get"),
                         (1, "", "missing arguments\nusage: get [-s] [-w] [-b|-x] path\n"))
        self.assertEqual(self.run1("get", "-z", "/a"),
                         (1, "", "Unrecognized option: -z\nusage: get [-s] [-w] [-b|-x] path\n"))
        self.assertEqual(self.run1("create", "noslash"),
                         (1, "", "Path must start with / character\nusage: create [-s] [-e] "
                          "[-c] [-t ttl] [-f file] path [data] [acl]\n"))
        rc, out, err = self.run1("ls", "/", extra=["--bogus-option"])
        self.assertEqual(rc, 1)
        self.assertIn("unknown option --bogus-option", err)

    def test_help_documents_the_exit_codes(self):
        rc, out, err = coordctl_split("127.0.0.1:1", ["--help"])
        self.assertEqual((rc, err), (0, ""))
        for line in ("0  ok", "1  usage error", "2  the node does not exist",
                     "3  the node exists", "4  bad version", "5  the node has children",
                     "6  no permission", "7  connection loss", "8  any other server error"):
            self.assertIn(line, out)

    def test_printwatches_off_silences_events(self):
        # (Not in the zkCli comparison: zkCli checks the switch on its event
        # thread, racing with the next command.)
        script = ("create /pwatch\nget -w /pwatch\nprintwatches off\nset /pwatch x\n"
                  "printwatches on\nget -w /pwatch\nset /pwatch y\n")
        rc, out = coordctl(self.coordd.hosts(), stdin=script)
        self.assertEqual((rc, out), (0, "Created /pwatch\nnull\nx\n\nWATCHER::\n\n"
                                        "WatchedEvent state:SyncConnected type:NodeDataChanged "
                                        "path:/pwatch\n"))

    def test_close_and_connect(self):
        hosts = self.coordd.hosts()
        script = "create /cc\nclose\nls /cc\nconnect %s\nls /cc\n" % hosts
        rc, out = coordctl(hosts, stdin=script)
        self.assertEqual(out, "Created /cc\nNot connected\n[]\n")
        self.assertEqual(rc, 7)
        # A malformed server list is a usage error; the shell is then without
        # a session.
        rc, out = coordctl(hosts, stdin="connect nohost:notaport\nls /cc\n")
        self.assertEqual(out, "bad port in server 'nohost:notaport'\nNot connected\n")
        self.assertEqual(rc, 7)
        rc, out = coordctl(hosts, ["connect", "nohost:notaport"])
        self.assertEqual(rc, 1)

    def test_json_watch_events(self):
        script = "create /jw\nget -w /jw\nset /jw x\n"
        rc, out = coordctl(self.coordd.hosts(), stdin=script, extra=["--json"])
        docs = [json.loads(l) for l in out.splitlines()]
        self.assertEqual(docs[2], {"event": {"type": "NodeDataChanged", "state": "SyncConnected",
                                             "path": "/jw"}})
        self.assertEqual(docs[3]["path"], "/jw")
        self.assertEqual(len(docs), 4)

    def test_script_goes_on_after_bad_lines(self):
        script = "bogus\nget -q /x\nset /a 'open\n# a comment\n\ncreate /after-bad ok\nquit\nls /\n"
        rc, out = coordctl(self.coordd.hosts(), stdin=script)
        self.assertEqual(out, "Command not found: bogus (type help for the list)\n"
                         "Unrecognized option: -q\nusage: get [-s] [-w] [-b|-x] path\n"
                         "unterminated ' quote\n"
                         "Created /after-bad\n")
        self.assertEqual(rc, 1)

    def test_overlong_script_line_is_skipped(self):
        script = "get /" + "x" * 70000 + "\ncreate /after-long\n"
        rc, out = coordctl(self.coordd.hosts(), stdin=script)
        self.assertEqual(out, "line longer than 65536 bytes skipped\nCreated /after-long\n")
        self.assertEqual(rc, 1)

    def test_unreachable_server_is_exit_seven_quickly(self):
        rc, out, err = coordctl_split("127.0.0.1:1", ["get", "/a"],
                                      extra=["--connect-timeout", "1000"], timeout=20)
        self.assertEqual(rc, 7)
        self.assertEqual(err, "Could not connect to 127.0.0.1:1: no server answered within "
                         "1000 ms\n")

    def test_data_from_stdin_and_from_a_file(self):
        self.assertEqual(self.run1("create", "/fromstdin", "-", stdin="piped data\n")[0], 0)
        self.assertEqual(self.run1("get", "/fromstdin"), (0, "piped data\n\n", ""))
        self.assertEqual(self.run1("set", "/fromstdin", "-", stdin="again")[0], 0)
        self.assertEqual(self.run1("get", "/fromstdin"), (0, "again\n", ""))
        with tempfile.NamedTemporaryFile(delete=False) as f:
            f.write(b"\xff\x00bin")
            name = f.name
        try:
            self.assertEqual(self.run1("create", "-f", name, "/binary"),
                             (0, "Created /binary\n", ""))
            self.assertEqual(self.run1("get", "-x", "/binary"), (0, "ff 00 62 69 6e\n", ""))
            self.assertEqual(self.run1("create", "-f", name, "/binary-ro", "world:anyone:r"),
                             (0, "Created /binary-ro\n", ""))
            self.assertEqual(self.run1("getAcl", "/binary-ro"), (0, "'world,'anyone\n: r\n", ""))
            self.assertEqual(self.run1("get", "-x", "/binary-ro"), (0, "ff 00 62 69 6e\n", ""))
            self.assertEqual(self.run1("get", "-b", "/binary"), (0, "/wBiaW4=\n", ""))
            rc, out, _ = self.run1("get", "/binary", extra=["--json"])
            doc = json.loads(out)
            self.assertEqual((doc["data"], doc["data_base64"]), ("/wBiaW4=", True))
            self.assertEqual(self.run1("set", "-f", name, "/binary", "inline")[0], 1)
        finally:
            os.unlink(name)
        # In a script, stdin is the script itself.
        rc, out = coordctl(self.coordd.hosts(), stdin="set /fromstdin -\n")
        self.assertEqual(rc, 1)
        self.assertIn("only one-shot mode", out)

    def test_json_is_one_document_per_command(self):
        rc, out, _ = self.run1("create", "/js", "v", extra=["--json"])
        self.assertEqual(rc, 0)
        self.assertEqual(json.loads(out)["path"], "/js")
        rc, out, _ = self.run1("get", "-s", "/js", extra=["--json"])
        doc = json.loads(out)
        self.assertEqual(doc["data"], "v")
        self.assertEqual(sorted(doc["stat"].keys()),
                         sorted(["cZxid", "ctime", "mZxid", "mtime", "pZxid", "cversion",
                                 "dataVersion", "aclVersion", "ephemeralOwner", "dataLength",
                                 "numChildren"]))
        self.assertEqual(doc["stat"]["dataLength"], 1)
        rc, out, _ = self.run1("get", "/js-none", extra=["--json"])
        self.assertEqual(rc, 2)
        self.assertEqual(json.loads(out), {"error": "NoNode", "code": -101, "path": "/js-none",
                                           "message": "Node does not exist: /js-none",
                                           "exit_code": 2})
        rc, out = coordctl(self.coordd.hosts(), stdin="ls /js\nget /js\nstat /nope\n",
                           extra=["--json"])
        docs = [json.loads(l) for l in out.splitlines()]
        self.assertEqual(len(docs), 3)
        self.assertEqual(docs[0], {"path": "/js", "children": []})


if __name__ == "__main__":
    ctest_main.main()
