"""coordctl's interactive mode in a pseudo-terminal: history recalled across
runs, tab completion of a command and of a znode path, and a watch event
arriving while a line is half typed (the event is printed above the line,
and the partial line is redrawn and still runs intact)."""

import os
import re
import select
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

import ctest_main
from cli_support import COORDCTL, coordctl
from coordd_harness import Coordd

WAIT_S = 20.0
ANSI = re.compile(rb"\x1b\[[0-9;]*[A-Za-z]")


class Pty:
    """coordctl on a pseudo-terminal, with bounded waits for its output."""

    def __init__(self, hosts, history_file):
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen(
            [COORDCTL, "-s", hosts, "--history-file", history_file],
            stdin=slave, stdout=slave, stderr=slave, start_new_session=True, close_fds=True)
        os.close(slave)
        self.raw = b""

    def send(self, data):
        os.write(self.master, data.encode() if isinstance(data, str) else data)

    def text(self):
        """The output as a reader sees it: escape sequences and carriage
        returns dropped (each redraw then follows the previous one)."""
        return ANSI.sub(b"", self.raw).replace(b"\r", b"")

    def read_until(self, pattern, timeout_s=WAIT_S):
        """Waits until `pattern` (bytes regex) matches the output so far."""
        deadline = time.monotonic() + timeout_s
        while True:
            m = re.search(pattern, self.text(), re.S)
            if m:
                return m
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no %r in terminal output:\n%r" % (pattern, self.raw))
            r, _, _ = select.select([self.master], [], [], left)
            if r:
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError("coordctl closed the terminal; output:\n%r" % self.raw)
                self.raw += chunk

    def mark(self):
        return len(self.text())

    def close(self):
        if self.proc.poll() is None:
            try:
                self.send("\x15quit\r")  # ctrl-u first: drop a partial line
                self.proc.wait(timeout=10)
            except (OSError, subprocess.TimeoutExpired):
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        os.close(self.master)


PROMPT = rb"\[coordctl: [^\]]*\(CONNECTED\) \d+\] $"


class InteractiveTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.coordd = Coordd().start()
        cls.dir = tempfile.mkdtemp(prefix="coordctl-pty-")

    @classmethod
    def tearDownClass(cls):
        cls.coordd.cleanup()
        shutil.rmtree(cls.dir, ignore_errors=True)

    def shell(self, history_name="history"):
        t = Pty(self.coordd.hosts(), os.path.join(self.dir, history_name))
        self.addCleanup(t.close)
        t.read_until(PROMPT)
        return t

    def test_history_is_recalled_across_runs(self):
        first = self.shell("h1")
        first.send("create /hist first\r")
        first.read_until(rb"Created /hist\n" + PROMPT)
        first.send("quit\r")
        first.proc.wait(timeout=10)
        with open(os.path.join(self.dir, "h1")) as f:
            self.assertEqual(f.read(), "create /hist first\nquit\n")

        second = self.shell("h1")
        # Up twice: past `quit` to the create of the first run; run it again.
        second.send("\x1b[A\x1b[A")
        second.read_until(rb"create /hist first")
        at = second.mark()
        second.send("\r")
        m = second.read_until(rb"Node already exists: /hist\n" + PROMPT)
        self.assertGreater(m.start(), at)
        # Edited recall: up, ctrl-w drops the data word, ctrl-u/ctrl-a are
        # exercised by replacing the verb.
        second.send("\x1b[A\x17\x01\x1b[3~\x1b[3~\x1b[3~\x1b[3~\x1b[3~\x1b[3~get\r")
        second.read_until(rb"\nfirst\n" + PROMPT)

    def test_tab_completes_a_command_and_a_znode_path(self):
        self.assertEqual(coordctl(self.coordd.hosts(), ["create", "/tabdir"])[0], 0)
        self.assertEqual(coordctl(self.coordd.hosts(), ["create", "/tabdir/onlykid"])[0], 0)
        t = self.shell("h2")
        t.send("getAllCh\t")
        t.read_until(rb"getAllChildrenNumber $")
        t.send("/tabd\t")
        t.read_until(rb"getAllChildrenNumber /tabdir$")
        t.send("/\t")
        t.read_until(rb"getAllChildrenNumber /tabdir/onlykid$")
        t.send("\r")
        t.read_until(rb"\n0\n" + PROMPT)
        # Several candidates: the common part is inserted, then a second tab
        # lists them.
        at = t.mark()
        t.send("get\t")
        t.read_until(rb"get(Acl|AllChildrenNumber|Ephemerals)?.*get  getAcl  getAllChildrenNumber  "
                     rb"getEphemerals")
        self.assertGreater(len(t.raw), at)
        t.send("\x03")  # ctrl-c drops the line
        t.read_until(rb"\^C\n" + PROMPT)

    def test_watch_event_while_typing_keeps_the_partial_line(self):
        self.assertEqual(coordctl(self.coordd.hosts(), ["create", "/watched", "v1"])[0], 0)
        t = self.shell("h3")
        t.send("get -w /watched\r")
        t.read_until(rb"v1\n" + PROMPT)
        t.send("ls /partial")
        t.read_until(rb"ls /partial$")
        at = t.mark()
        self.assertEqual(coordctl(self.coordd.hosts(), ["set", "/watched", "v2"])[0], 0)
        m = t.read_until(rb"WatchedEvent state:SyncConnected type:NodeDataChanged path:/watched"
                         rb"\n(.*)$")
        self.assertGreater(m.start(), at)
        # The event starts on a cleared line (the partial line was erased
        # first, not printed into) ...
        self.assertRegex(t.raw, rb"ls /partial\x1b\[K\r\x1b\[K\r*\nWATCHER::")
        # ... and after it come the prompt and the partial line, intact, last.
        self.assertRegex(m.group(1), PROMPT[:-1] + rb"ls /partial$")
        # Finishing the line runs exactly what was typed.
        t.send("_dir\r")
        t.read_until(rb"Node does not exist: /partial_dir\n" + PROMPT)

    def test_losing_the_server_shows_in_the_prompt(self):
        own = Coordd().start()
        self.addCleanup(own.cleanup)
        t = Pty(own.hosts(), os.path.join(self.dir, "h4"))
        self.addCleanup(t.close)
        t.read_until(PROMPT)
        t.send("ls /zoo")
        own.kill9()
        # The prompt is redrawn after the event, perhaps in a later read:
        # waiting for the event alone could look at the output between the
        # two.
        t.read_until(rb"WatchedEvent state:Disconnected type:None path:null\n"
                     rb".*\(DISCONNECTED\) 0\] ls /zoo$")


if __name__ == "__main__":
    ctest_main.main()
