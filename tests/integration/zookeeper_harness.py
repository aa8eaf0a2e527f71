"""Starts and stops a real Apache ZooKeeper 3.8 standalone server (Debian's
`zookeeper` package) on a free 127.0.0.1 port, as the reference the
differential test compares coordd against.

The process is killed by its pid and its data directory removed; every wait
is bounded. `available()` says whether Java and the jars are installed.
"""

import os
import shutil
import signal
import subprocess
import tempfile
import time

from coordd_harness import four_letter, free_port

PORT_ATTEMPTS = 3

JARS = ["/usr/share/java/zookeeper.jar", "/usr/share/java/zookeeper-jute.jar",
        "/usr/share/java/slf4j-api.jar"]
JAVA = os.environ.get("COORD_JAVA", "/usr/bin/java")
START_TIMEOUT_S = float(os.environ.get("COORD_ZOOKEEPER_START_TIMEOUT_S", "90"))


def _die_with_parent():
    """Runs in the child before exec: the JVM gets SIGKILL if the test process
    dies first (a ctest timeout), so no server outlives its test."""
    import ctypes
    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGKILL))


def available():
    return os.access(JAVA, os.X_OK) and all(os.path.exists(j) for j in JARS)


class ZooKeeper:
    def __init__(self, jvm_args=(), max_client_cnxns=1000):
        self.jvm_args = list(jvm_args)
        # Connections per client address (ZooKeeper's own default is 60).
        self.max_client_cnxns = max_client_cnxns
        self.data_dir = tempfile.mkdtemp(prefix="zk38-it-")
        self.log_path = os.path.join(self.data_dir, "zookeeper.log")
        self.proc = None
        self.port = None

    def launch(self):
        """Starts the JVM without waiting for it; see wait_ready()."""
        self.port = free_port()
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [JAVA, "-Xmx256m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1",
             "-cp", ":".join(JARS),
             "-Dzookeeper.4lw.commands.whitelist=*",
             "-Dzookeeper.extendedTypesEnabled=true",
             "-Dzookeeper.admin.enableServer=false"] + self.jvm_args + [
             "org.apache.zookeeper.server.ZooKeeperServerMain",
             str(self.port), os.path.join(self.data_dir, "data"), "2000",
             str(self.max_client_cnxns)],
            stdout=log, stderr=log, preexec_fn=_die_with_parent)
        log.close()
        return self

    def wait_ready(self):
        for attempt in range(PORT_ATTEMPTS):
            deadline = time.monotonic() + START_TIMEOUT_S
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    break  # e.g. the port was taken meanwhile: try another
                try:
                    if four_letter(self.port, "ruok", 1.0) == "imok" and self.is_ours() and \
                            self.session_works():
                        return self
                except OSError:
                    pass
                time.sleep(0.1)
            if self.proc.poll() is None and time.monotonic() >= deadline:
                break
            self.kill()
            self.launch()
        self.kill()
        raise RuntimeError("zookeeper did not start:\n" + self.log())

    def is_ours(self):
        """The port was free when chosen, but another process may have taken
        it before this JVM bound it: the server answering must use our data
        directory."""
        return self.data_dir in four_letter(self.port, "conf", 2.0)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=10)

    def session_works(self):
        """ruok answers before the server takes sessions: try one."""
        import zkwire
        c = zkwire.Conn(self.port, timeout_s=2.0)
        try:
            if c.handshake()["sessionId"] == 0:
                return False
            c.call(zkwire.CLOSE_SESSION)
            return True
        except (zkwire.Closed, zkwire.DecodeError, OSError):
            return False
        finally:
            c.close()

    def start(self):
        return self.launch().wait_ready()

    def log(self):
        try:
            with open(self.log_path, "rb") as f:
                return f.read().decode(errors="replace")[-4000:]
        except OSError:
            return ""

    def cleanup(self):
        self.kill()
        shutil.rmtree(self.data_dir, ignore_errors=True)
