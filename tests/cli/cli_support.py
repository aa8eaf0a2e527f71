"""Helpers shared by coordctl's Python tests: run the binary with bounded
time, normalise what differs between servers (zxids, times, session ids)."""

import os
import re
import subprocess

COORDCTL = os.environ.get("COORDCTL_BINARY", "coordctl")
RUN_TIMEOUT_S = 60

_ZXID = re.compile(r"^(cZxid|mZxid|pZxid) = 0x[0-9a-f]+$")
_TIME = re.compile(r"^(ctime|mtime) = .*$")
_OWNER = re.compile(r"^ephemeralOwner = 0x(?!0$)[0-9a-f]+$")


def coordctl(hosts, args=(), stdin="", extra=(), env=None, timeout=RUN_TIMEOUT_S):
    """Runs coordctl; returns (exit code, stdout and stderr merged)."""
    p = subprocess.run([COORDCTL, "-s", hosts] + list(extra) + list(args),
                       input=stdin.encode() if isinstance(stdin, str) else stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, env=env)
    return p.returncode, p.stdout.decode(errors="replace")


def coordctl_split(hosts, args=(), stdin="", extra=(), timeout=RUN_TIMEOUT_S):
    """Runs coordctl; returns (exit code, stdout, stderr)."""
    p = subprocess.run([COORDCTL, "-s", hosts] + list(extra) + list(args),
                       input=stdin.encode() if isinstance(stdin, str) else stdin,
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def normalize(text):
    """Replaces what legitimately differs between two servers or two runs."""
    out = []
    for line in text.splitlines():
        if _ZXID.match(line):
            line = line.split(" = ")[0] + " = <zxid>"
        elif _TIME.match(line):
            line = line.split(" = ")[0] + " = <time>"
        elif _OWNER.match(line):
            line = "ephemeralOwner = <session>"
        out.append(line)
    return "\n".join(out) + "\n"
