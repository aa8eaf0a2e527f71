"""The main of every Python test file run by ctest.

A test that cannot run here because an optional tool is missing (Java and
the ZooKeeper 3.8 jars, zkCli.sh, the C client, kazoo) skips itself with the
reason. unittest alone would still exit 0 and ctest would report "Passed"
for a test that never ran, so: failures exit 1; otherwise, when anything was
skipped, every reason is printed and the exit code is SKIP_EXIT_CODE, which
each ctest entry declares as its SKIP_RETURN_CODE, so ctest reports
"Skipped". The ctest entries are split so that what needs a tool runs apart
from what does not (tests/integration/CMakeLists.txt).
"""

import sys
import unittest

SKIP_EXIT_CODE = 77


def main():
    result = unittest.main(verbosity=2, exit=False).result
    if not result.wasSuccessful():
        sys.exit(1)
    if result.skipped:
        for test, reason in result.skipped:
            print("SKIPPED %s: %s" % (test.id(), reason))
        sys.exit(SKIP_EXIT_CODE)
    sys.exit(0)
