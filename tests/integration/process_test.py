"""How coordd runs as a process: it starts itself anew, once, with glibc's
per-thread allocator cache set (base/malloc_tuning.h), keeping its pid,
its arguments and its binary; and it leaves an allocator setting given in
its environment alone.
"""

import os
import shutil
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import ctest_main  # noqa: E402
from coordd_harness import COORDD, SERVING, Coordd, four_letter  # noqa: E402

TUNED = "glibc.malloc.tcache_count=256"


def environ_of(pid):
    with open("/proc/%d/environ" % pid, "rb") as f:
        return dict(e.split("=", 1) for e in f.read().decode(errors="replace").split("\0")
                    if "=" in e)


class AllocatorCache(unittest.TestCase):
    def start(self, env):
        c = Coordd()
        c.env = env
        self.addCleanup(c.cleanup)
        c.start()
        return c

    def test_coordd_restarts_itself_with_the_cache_set(self):
        env = dict(os.environ)
        env.pop("GLIBC_TUNABLES", None)
        c = self.start(env)
        # The process Popen started is the server: same pid, same binary,
        # same arguments, and the setting in its environment.
        self.assertEqual(environ_of(c.proc.pid).get("GLIBC_TUNABLES"), TUNED)
        self.assertEqual(os.path.realpath("/proc/%d/exe" % c.proc.pid),
                         os.path.realpath(shutil.which(COORDD) or COORDD))
        with open("/proc/%d/cmdline" % c.proc.pid, "rb") as f:
            args = f.read().split(b"\0")[1:-1]
        self.assertEqual([a.decode() for a in args], c.proc.args[1:])
        self.assertEqual(four_letter(c.port, "ruok"), "imok")
        # Started once: one line says it serves.
        self.assertEqual(len(SERVING.findall(c.log())), 1)

    def test_a_setting_in_the_environment_is_kept(self):
        env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.mxfast=0")
        c = self.start(env)
        self.assertEqual(environ_of(c.proc.pid).get("GLIBC_TUNABLES"), "glibc.malloc.mxfast=0")
        self.assertEqual(four_letter(c.port, "ruok"), "imok")


if __name__ == "__main__":
    ctest_main.main()
