"""Starts and stops real coordd processes on 127.0.0.1 for integration tests.

Ports are chosen free at run time, every process is killed by its pid when
the test ends, and every wait is bounded in time.
"""

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


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    def __init__(self, data_dir=None, extra_args=()):
        self.own_dir = data_dir is None
        self.data_dir = data_dir or tempfile.mkdtemp(prefix="coordd-it-")
        self.extra_args = list(extra_args)
        # Runs in the child before exec (resource limits, for instance).
        self.preexec_fn = None
        self.proc = None
        self.port = None
        self.http_port = None
        self.log_path = os.path.join(self.data_dir, "coordd.log")

    def start(self):
        # Port 0: the kernel picks free ports as coordd binds them, so no
        # other process can take them between a choice and the bind; the
        # ports are read back from coordd's first log line.
        log = open(self.log_path, "ab")
        log_start = log.tell()
        self.proc = subprocess.Popen(
            [COORDD, "--client-port", "0", "--http-port", "0",
             "--data-dir", os.path.join(self.data_dir, "data")] + self.extra_args,
            stdout=log, stderr=log, preexec_fn=self.preexec_fn)
        log.close()
        self.port = None
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("coordd exited with %s:\n%s" % (self.proc.returncode, self.log()))
            if self.port is None:
                m = SERVING.search(self.log()[log_start:])
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
