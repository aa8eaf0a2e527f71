"""zkCli.sh's quota commands against coordd and a real ZooKeeper 3.8, side by
side: the same script goes to both and what zkCli prints must be the same,
line for line (server addresses aside). One pair runs with default settings
(soft limits: usage counted, setquota warns below the usage), the other with
hard limits enforced (coordd --enforce-quota, ZooKeeper's
-Dzookeeper.enforceQuota=true). coordd's usage must also survive a restart.

Skipped, with the reason, without Java, the ZooKeeper 3.8 jars or zkCli.sh.
"""

import os
import shutil
import subprocess
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ctest_main  # noqa: E402
from coordd_harness import Coordd  # noqa: E402
from zookeeper_harness import ZooKeeper, available  # noqa: E402

ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
RUN_TIMEOUT_S = 120
HAVE_TOOLS = available() and os.access(ZKCLI, os.X_OK) and shutil.which("java") is not None

# Soft limits: counting on create, setData and delete (nested paths, the
# quota's root itself, data lengths), setquota over an existing quota and
# below the usage (zkCli's warnings), nested quotas refused by zkCli, delete
# of the quota's root, delquota of one limit and of the whole quota.
SOFT_SCRIPT = """\
create /q1 abcde
create /q1/a 123
create /q1/b
setquota -n 2 /q1
listquota /q1
get /zookeeper/quota/q1/zookeeper_stats
get /zookeeper/quota/q1/zookeeper_limits
create /q1/c xy
create /q1/b/d 1234567
set /q1/a 12345678
listquota /q1
setquota -b 10 /q1
listquota /q1
setquota -n 1 /q1
create /q1/b/d/e
setquota -n 5 /q1/b
create /q2 x
create /q2/y y
setquota -n 1 /q2/y
setquota -n 1 /q2
delete /q1/b/d/e
delete /q1/b/d
listquota /q1
deleteall /q1
listquota /q1
get /zookeeper/quota/q1/zookeeper_stats
create /q1 zz
listquota /q1
delquota -n /q1
listquota /q1
delquota /q1
listquota /q1
ls /zookeeper/quota
setquota -n 3 /nonexistent
quit
"""

# Hard limits, enforced: creates and growing setData past a limit are
# refused ("Quota has exceeded"), same-size or smaller data is not, deletes
# never are.
HARD_SCRIPT = """\
create /h abc
setquota -N 3 /h
create /h/a 1
create /h/b 2
create /h/c 3
listquota /h
setquota -B 10 /h
listquota /h
set /h/a 1234567
set /h/a 1
set /h/a 123456
set /h/a 1234567
setquota -N 1 /h
listquota /h
create /h/zz
delete /h/b
create /h/zz
listquota /h
quit
"""


def zkcli(hosts, script):
    env = dict(os.environ, CLIENT_JVMFLAGS="-XX:TieredStopAtLevel=1 -XX:+UseSerialGC")
    p = subprocess.run([ZKCLI, "-server", hosts], input=script, stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, text=True, timeout=RUN_TIMEOUT_S, env=env)
    # The banner names the server; SLF4J talks about its own setup.
    return [l for l in p.stdout.splitlines()
            if not l.startswith("SLF4J") and not l.startswith("Connecting to ")]


def split_events(lines):
    """zkCli prints replies and watch events from two threads: their
    interleaving is timing, not behaviour. Returns (replies, events), each
    in order, without the blank and WATCHER:: lines around events. The
    client's own Closed event at `quit` is left out: whether its event
    thread prints it before the JVM exits is timing too."""
    events = [l for l in lines
              if l.startswith("WatchedEvent ") and not l.startswith("WatchedEvent state:Closed ")]
    replies = [l for l in lines if l and l != "WATCHER::" and not l.startswith("WatchedEvent ")]
    return replies, events


def stats_line(lines, root):
    return [l for l in lines if l.startswith("Output stat for " + root + " ")]


@unittest.skipUnless(HAVE_TOOLS, "Java, the ZooKeeper 3.8 jars or zkCli.sh are missing")
class QuotaAgainstZooKeeper(unittest.TestCase):
    def run_pair(self, script, coordd_args, jvm_args):
        zk = ZooKeeper(jvm_args=jvm_args)
        coordd = Coordd(extra_args=coordd_args)
        try:
            zk.launch()
            coordd.start()
            zk.wait_ready()
            theirs = zkcli("127.0.0.1:%d" % zk.port, script)
            ours = zkcli(coordd.hosts(), script)
            return theirs, ours, coordd
        except BaseException:
            coordd.cleanup()
            raise
        finally:
            zk.cleanup()

    def assert_same(self, theirs, ours):
        self.assertEqual(split_events(theirs)[1], split_events(ours)[1])
        theirs, ours = split_events(theirs)[0], split_events(ours)[0]
        if theirs != ours:
            import difflib
            self.fail("zkCli prints differently (- ZooKeeper 3.8, + coordd):\n" +
                      "\n".join(difflib.unified_diff(theirs, ours, lineterm="", n=2)))

    def test_soft_limits(self):
        theirs, ours, coordd = self.run_pair(SOFT_SCRIPT, [], [])
        try:
            self.assert_same(theirs, ours)
            # Not a transcript of zeros: the usage really was counted.
            self.assertIn("Output stat for /q1 count=5,bytes=22", ours)
            self.assertIn("[Warning]: the count quota you create is less than the existing count:5",
                          ours)
            # The usage is replicated state: it survives a restart.
            before = zkcli(coordd.hosts(),
                           "setquota -n 2 /q1\ncreate /q1/more 1234\nlistquota /q1\nquit\n")
            self.assertIn("Output stat for /q1 count=2,bytes=6", before)
            self.assertTrue(stats_line(before, "/q1"), before)
            self.assertEqual(coordd.terminate(), 0)
            coordd.start()
            after = zkcli(coordd.hosts(), "listquota /q1\nquit\n")
            self.assertEqual(stats_line(after, "/q1"), stats_line(before, "/q1"))
        finally:
            coordd.cleanup()

    def test_hard_limits_enforced(self):
        theirs, ours, coordd = self.run_pair(HARD_SCRIPT, ["--enforce-quota"],
                                             ["-Dzookeeper.enforceQuota=true"])
        try:
            self.assert_same(theirs, ours)
            self.assertIn("Quota has exceeded : /h/c", ours)
            # The refusals are in coordd's log.
            self.assertIn("quota of /h: refused", coordd.log())
        finally:
            coordd.cleanup()


if __name__ == "__main__":
    ctest_main.main()
