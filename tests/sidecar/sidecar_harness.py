"""Runs coord-sidecar processes and the small service they check, for the
integration tests and bench/sidecar_removal.py.

Every process is started on 127.0.0.1 with ports chosen free at run time
(port 0, read back from the process), killed by its pid at cleanup, and
every wait is bounded in time.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

SIDECAR = os.environ.get("COORD_SIDECAR_BINARY", "coord-sidecar")
PYTHON = "/usr/bin/python3"
HERE = os.path.dirname(os.path.abspath(__file__))
LISTENING = re.compile(r"sidecar: listening on [0-9.]+:(\d+)")
START_TIMEOUT_S = 20.0


def wait_for(what, predicate, timeout_s=10.0, interval_s=0.02):
    """Polls predicate() until it returns something true and returns it;
    AssertionError naming `what` after the timeout."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise AssertionError("%s: not within %.1f s" % (what, timeout_s))
        time.sleep(interval_s)


class HealthService:
    """health_service.py in a process of its own: /health answers 200 while
    its flag file exists."""

    def __init__(self, root):
        self.root = root
        self.flag = os.path.join(root, "healthy-%d" % id(self))
        self.port_file = os.path.join(root, "port-%d" % id(self))
        self.proc = None
        self.port = None

    def start(self, healthy=True):
        self.set_healthy(healthy)
        self.proc = subprocess.Popen([PYTHON, os.path.join(HERE, "health_service.py"),
                                      self.port_file, self.flag])
        self.port = int(wait_for("health service port", self._read_port, START_TIMEOUT_S))
        return self

    def _read_port(self):
        if self.proc.poll() is not None:
            raise RuntimeError("health_service.py exited with %s" % self.proc.returncode)
        try:
            with open(self.port_file) as f:
                return f.read().strip()
        except OSError:
            return None

    def set_healthy(self, healthy):
        if healthy:
            with open(self.flag, "w"):
                pass
        elif os.path.exists(self.flag):
            os.unlink(self.flag)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Sidecar:
    """One coord-sidecar process; its log (stderr) goes to a file."""

    def __init__(self, root, name, args):
        self.root = root
        self.name = name
        self.args = list(args)
        self.log_path = os.path.join(root, name + ".log")
        self.proc = None
        self.port = None

    def start(self):
        log = open(self.log_path, "ab")
        self.log_start = log.tell()
        self.proc = subprocess.Popen([SIDECAR, "--listen", "127.0.0.1:0"] + self.args,
                                     stdout=log, stderr=log)
        log.close()
        self.port = int(wait_for("%s listening" % self.name, self._listening, START_TIMEOUT_S))
        return self

    def _listening(self):
        if self.proc.poll() is not None:
            raise RuntimeError("%s exited with %s:\n%s" % (self.name, self.proc.returncode,
                                                          self.log()))
        m = LISTENING.search(self.log()[self.log_start:])
        return m.group(1) if m else None

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")
        except OSError:
            return ""

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def get(self, path, timeout_s=2.0):
        """(status, body) of a GET; the body is parsed when it is JSON."""
        try:
            with urllib.request.urlopen("http://127.0.0.1:%d%s" % (self.port, path),
                                        timeout=timeout_s) as r:
                status, text = r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read().decode()
        try:
            return status, json.loads(text)
        except ValueError:
            return status, text

    def service(self, name):
        status, body = self.get("/v1/services/" + name)
        if status != 200:
            raise AssertionError("%s: /v1/services/%s answered %s: %s" % (self.name, name,
                                                                          status, body))
        return body

    def ids(self, name):
        return sorted(i["id"] for i in self.service(name)["instances"])

    def metric(self, name, labels=""):
        """The value of one sample of /metrics, or None."""
        status, text = self.get("/metrics")
        pattern = re.compile(r"^%s%s (\S+)$" % (re.escape(name), re.escape(labels)), re.M)
        m = pattern.search(text)
        return float(m.group(1)) if m else None

    def terminate(self, timeout_s=15.0):
        """SIGTERM; waits for the exit and returns the exit code."""
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            return self.proc.wait(timeout=timeout_s)
        return self.proc.returncode if self.proc else None

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


class Processes:
    """Everything a test started, cleaned up by pid at the end."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="coord-sidecar-it-")
        self.sidecars = []
        self.services = []

    def sidecar(self, name, args):
        s = Sidecar(self.root, name, args)
        self.sidecars.append(s)
        return s.start()

    def health_service(self, healthy=True):
        s = HealthService(self.root)
        self.services.append(s)
        return s.start(healthy)

    def path(self, name):
        return os.path.join(self.root, name)

    def dump_logs(self):
        for s in self.sidecars:
            sys.stderr.write("---- %s:\n%s\n" % (s.name, s.log()[-4000:]))

    def cleanup(self):
        for s in self.sidecars:
            s.kill()
        for s in self.services:
            s.kill()
        shutil.rmtree(self.root, ignore_errors=True)


def curator_json(name, instance_id, address, port):
    """An instance as Curator x-discovery writes it."""
    return json.dumps({"name": name, "id": instance_id, "address": address, "port": port,
                       "sslPort": None, "payload": None, "registrationTimeUTC": 0,
                       "serviceType": "DYNAMIC", "uriSpec": None}).encode()
