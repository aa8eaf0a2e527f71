"""coord-sidecar as operators run it: real coordd, real sidecar processes, a
real HTTP service whose health the test flips.

    HealthFlips  the instance appears in and disappears from discovery as
                 its checks (http, tcp, command) pass and fail, within
                 interval x threshold (plus a slack for a loaded machine)
    Templates    the rendered file follows the service; a burst of changes
                 means one reload; a failing reload is reported and
                 retried while the sidecar stays up
    Outage       with coordd stopped, discovery answers the last list
                 marked stale; it catches up when coordd returns; a
                 registration lost with an expired session comes back
    Shutdown     SIGTERM removes the instance before the process exits
    DeployExample  deploy/examples/sidecar as shipped: the config, the
                 HAProxy template rendered for web.py, the systemd unit

Run by ctest (one entry per class) with COORDD_BINARY and
COORD_SIDECAR_BINARY set.
"""

import os
import sys
import time
import unittest

from kazoo.client import KazooClient
from kazoo.exceptions import NoNodeError

import ctest_main
from coordd_harness import Coordd
from sidecar_harness import Processes, curator_json, wait_for

def text(path):
    with open(path) as f:
        return f.read()


# Checks every 100 ms; a change needs 2 results in a row.
INTERVAL_MS = 100
RISE = 2
FALL = 2
# What a sanitizer build on a loaded machine may add to interval x
# threshold: the discovery round trip, scheduling, a slow check.
SLACK_S = 2.0


class SidecarCase(unittest.TestCase):
    def setUp(self):
        self.coordd = Coordd().start()
        self.procs = Processes()
        self.zk = KazooClient(hosts=self.coordd.hosts(), timeout=10)
        self.zk.start(timeout=15)

    def tearDown(self):
        result = getattr(self._outcome, "result", None)
        if result is not None and any(t is self for t, _ in result.errors + result.failures):
            self.procs.dump_logs()
        try:
            self.zk.stop()
            self.zk.close()
        except Exception:
            pass
        self.procs.cleanup()
        self.coordd.cleanup()

    def children(self, path):
        """The sorted children of path; [] when it is gone (a service's
        node is a container: the servers remove it once it is empty)."""
        try:
            return sorted(self.zk.get_children(path))
        except NoNodeError:
            return []

    def register_args(self, service, instance_id, address, check_args):
        return ["-s", self.coordd.hosts(), "--service", service, "--id", instance_id,
                "--address", address, "--interval-ms", str(INTERVAL_MS), "--timeout-ms", "500",
                "--rise", str(RISE), "--fall", str(FALL), "--session-timeout-ms", "4000"
                ] + check_args

    def watcher(self, name, services, extra=()):
        return self.procs.sidecar(name, ["-s", self.coordd.hosts(), "--watch"] + list(services)
                                  + ["--session-timeout-ms", "4000"] + list(extra))


class HealthFlips(SidecarCase):
    def test_checks_add_and_remove_the_instance(self):
        svc = self.procs.health_service(healthy=True)
        addr = "127.0.0.1:%d" % svc.port
        http = self.procs.sidecar("http", self.register_args(
            "web", "http-1", addr, ["--check", "http://%s/health" % addr, "--watch", "web"]))
        self.procs.sidecar("cmd", self.register_args(
            "web", "cmd-1", addr, ["--check-cmd", "test -e '%s'" % svc.flag]))
        self.procs.sidecar("tcp", self.register_args(
            "web", "tcp-1", addr, ["--check", "tcp://%s" % addr]))
        watch = self.watcher("watch", ["web"])
        everyone = ["cmd-1", "http-1", "tcp-1"]
        wait_for("all three registered", lambda: watch.ids("web") == everyone, 15.0)
        self.assertEqual(http.ids("web"), everyone)
        self.assertFalse(watch.service("web")["stale"])
        inst = {i["id"]: i for i in watch.service("web")["instances"]}["http-1"]
        self.assertEqual((inst["address"], inst["port"]), ("127.0.0.1", svc.port))
        # The node is Curator's JSON, where any ZooKeeper client finds it.
        self.assertEqual(self.children("/services/web"), everyone)

        bound_down = INTERVAL_MS * FALL / 1000.0 + SLACK_S
        bound_up = INTERVAL_MS * RISE / 1000.0 + SLACK_S
        for flip in range(2):
            t0 = time.monotonic()
            svc.set_healthy(False)
            wait_for("http and cmd removed (flip %d)" % flip,
                     lambda: watch.ids("web") == ["tcp-1"], bound_down)
            down_s = time.monotonic() - t0
            t0 = time.monotonic()
            svc.set_healthy(True)
            wait_for("http and cmd back (flip %d)" % flip,
                     lambda: watch.ids("web") == everyone, bound_up)
            up_s = time.monotonic() - t0
            print("flip %d: removed after %.3f s (bound %.1f), back after %.3f s (bound %.1f)"
                  % (flip, down_s, bound_down, up_s, bound_up))

        # A service that stops listening fails the http and tcp checks (the
        # command only tests the flag file).
        svc.kill()
        wait_for("http and tcp removed", lambda: watch.ids("web") == ["cmd-1"], bound_down)
        svc.set_healthy(False)
        wait_for("every instance removed", lambda: watch.ids("web") == [], bound_down)
        self.assertEqual(self.children("/services/web"), [])

        self.assertGreaterEqual(http.metric("coord_sidecar_checks_total"), 10)
        self.assertGreaterEqual(http.metric("coord_sidecar_check_failures_total"), 2 * FALL)
        self.assertGreaterEqual(http.metric("coord_sidecar_registrations_total"), 3)
        self.assertGreaterEqual(http.metric("coord_sidecar_deregistrations_total"), 3)
        self.assertEqual(http.metric("coord_sidecar_registered"), 0)
        self.assertGreaterEqual(
            watch.metric("coord_sidecar_discovery_changes_total", '{service="web"}'), 5)
        self.assertEqual(watch.metric("coord_sidecar_stale", '{service="web"}'), 0)
        status, health = http.get("/healthz")
        self.assertEqual(status, 200)
        self.assertEqual((health["healthy"], health["registered"]), (False, False))
        # One line per decision.
        log = http.log()
        self.assertIn("down, removing http-1", log)
        self.assertIn("up, registering http-1", log)
        self.assertIn("removed /services/web/http-1", log)

    def test_http_answers(self):
        watch = self.watcher("watch", ["web", "db"])
        # Each service's first load is its own: both, not just one.
        wait_for("loaded", lambda: not any(watch.service(n)["stale"] for n in ("db", "web")), 15.0)
        status, body = watch.get("/v1/services")
        self.assertEqual(status, 200)
        self.assertEqual([s["name"] for s in body["services"]], ["db", "web"])
        self.assertFalse(body["stale"])
        status, body = watch.get("/v1/services/nope")
        self.assertEqual(status, 404)
        self.assertIn("nope", body["error"])
        self.assertEqual(watch.get("/nowhere")[0], 404)
        status, text = watch.get("/metrics")
        self.assertEqual(status, 200)
        self.assertIn("# TYPE coord_sidecar_instances gauge", text)
        self.assertIn('coord_sidecar_instances{service="db"} 0', text)


HAPROXY_TEMPLATE = """backend web
{{#service.web.instances}}
  server {{id}} {{address}}:{{port}} check
{{/service.web.instances}}
"""


class Templates(SidecarCase):
    def add(self, instance_id, port):
        self.zk.create("/services/web/" + instance_id,
                       curator_json("web", instance_id, "10.0.0.1", port),
                       ephemeral=True, makepath=True)

    def test_a_burst_renders_and_reloads_once(self):
        tmpl = self.procs.path("haproxy.mustache")
        out = self.procs.path("haproxy.cfg")
        reloads = self.procs.path("reloads")
        with open(tmpl, "w") as f:
            f.write(HAPROXY_TEMPLATE)
        self.add("w0", 8000)
        s = self.watcher("render", ["web"], [
            "--template", "%s:%s" % (tmpl, out), "--debounce-ms", "300",
            "--debounce-max-ms", "3000", "--reload-cmd", "echo reload >> '%s'" % reloads])
        wait_for("first render", lambda: os.path.exists(out) and "w0" in text(out), 15.0)
        wait_for("first reload", lambda: os.path.exists(reloads), 10.0)
        # Five instances within ~100 ms: one render, one reload.
        for k in range(1, 6):
            self.add("w%d" % k, 8000 + k)
        want = "backend web\n" + "".join(
            "  server w%d 10.0.0.1:%d check\n" % (k, 8000 + k) for k in range(6))
        wait_for("the burst rendered", lambda: text(out) == want, 10.0)
        wait_for("its reload", lambda: len(text(reloads).splitlines()) >= 2, 10.0)
        # Nothing more comes of the burst (the debounce is 300 ms).
        time.sleep(1.0)
        self.assertEqual(text(reloads).splitlines(), ["reload", "reload"])
        self.assertEqual(s.metric("coord_sidecar_reloads_total"), 2)
        self.assertEqual(s.metric("coord_sidecar_reload_failures_total"), 0)
        # No temporary file left beside the output.
        self.assertEqual(sorted(f for f in os.listdir(self.procs.root) if f.startswith(".")), [])
        # A removal changes the file again.
        self.zk.delete("/services/web/w3")
        wait_for("w3 gone from the file", lambda: "w3" not in text(out), 10.0)
        wait_for("third reload", lambda: len(text(reloads).splitlines()) == 3, 10.0)

    def test_a_failing_reload_is_retried_and_the_sidecar_stays_up(self):
        tmpl = self.procs.path("t.mustache")
        out = self.procs.path("out.cfg")
        attempts = self.procs.path("attempts")
        ok_flag = self.procs.path("reload-works")
        with open(tmpl, "w") as f:
            f.write(HAPROXY_TEMPLATE)
        s = self.watcher("render", ["web"], [
            "--template", "%s:%s" % (tmpl, out), "--debounce-ms", "50",
            "--reload-retry-max-ms", "1000",
            "--reload-cmd", "echo try >> '%s'; echo broken config >&2; test -e '%s'"
            % (attempts, ok_flag)])

        def tries():
            try:
                return len(text(attempts).splitlines())
            except OSError:
                return 0
        wait_for("three failed reloads", lambda: tries() >= 3, 15.0)
        self.assertTrue(s.alive())
        self.assertGreaterEqual(s.metric("coord_sidecar_reload_failures_total"), 3)
        self.assertIn("reload failed", s.log())
        self.assertIn("broken config", s.log())
        # Discovery keeps working meanwhile.
        self.add("w1", 9001)
        wait_for("w1 served", lambda: s.ids("web") == ["w1"], 10.0)
        wait_for("w1 rendered", lambda: "w1" in text(out), 10.0)
        # Once the command works, one success ends the retries.
        open(ok_flag, "w").close()
        wait_for("a reload succeeded", lambda: "reload done" in s.log(), 10.0)
        n = tries()
        time.sleep(1.5)
        self.assertEqual(tries(), n)
        self.assertTrue(s.alive())


class Outage(SidecarCase):
    def test_stale_while_coordd_is_down_then_catches_up(self):
        svc = self.procs.health_service(healthy=True)
        addr = "127.0.0.1:%d" % svc.port
        self.procs.sidecar("reg", self.register_args(
            "web", "web-1", addr, ["--check", "http://%s/health" % addr]))
        watch = self.watcher("watch", ["web"])
        wait_for("registered", lambda: watch.ids("web") == ["web-1"], 15.0)
        self.zk.stop()

        # coordd goes away; it comes back later on the same port.
        self.coordd.client_port_arg = self.coordd.port
        self.coordd.http_port_arg = self.coordd.http_port
        self.coordd.kill9()
        body = wait_for("marked stale", lambda: (lambda b: b if b["stale"] else None)(
            watch.service("web")), 15.0)
        self.assertEqual([i["id"] for i in body["instances"]], ["web-1"])
        status, listing = watch.get("/v1/services")
        self.assertTrue(listing["stale"])
        self.assertEqual(watch.metric("coord_sidecar_stale", '{service="web"}'), 1)
        # Past the session timeout (4 s) the sessions are gone on restart.
        time.sleep(5.0)
        self.assertTrue(watch.service("web")["stale"])
        self.assertEqual(watch.ids("web"), ["web-1"])

        self.coordd.start()
        self.zk = KazooClient(hosts=self.coordd.hosts(), timeout=10)
        self.zk.start(timeout=15)
        self.zk.create("/services/web/k-1", curator_json("web", "k-1", "10.0.0.2", 80),
                       ephemeral=True, makepath=True)
        # The registration is there (its session resumed, or written again
        # with a new one) and the instance added meanwhile is seen: the
        # watcher is current again.
        wait_for("caught up", lambda: (not watch.service("web")["stale"]
                                       and watch.ids("web") == ["k-1", "web-1"]), 30.0)
        self.assertEqual(self.children("/services/web"), ["k-1", "web-1"])

    def test_registration_comes_back_after_a_session_expiry(self):
        import signal
        reg = self.procs.sidecar("reg", self.register_args("web", "web-1", "127.0.0.1:1", []))
        watch = self.watcher("watch", ["web"])
        wait_for("registered", lambda: watch.ids("web") == ["web-1"], 15.0)
        # Paused past its session timeout (4 s): the servers expire the
        # session and its node goes.
        os.kill(reg.proc.pid, signal.SIGSTOP)
        try:
            wait_for("expired", lambda: watch.ids("web") == [], 15.0, 0.1)
        finally:
            os.kill(reg.proc.pid, signal.SIGCONT)
        wait_for("registered again", lambda: watch.ids("web") == ["web-1"], 15.0)
        wait_for("counted", lambda: reg.metric("coord_sidecar_reregistrations_total") == 1, 5.0)
        wait_for("logged", lambda: "registered web-1 again with a new session" in reg.log(), 5.0)


class Shutdown(SidecarCase):
    def test_sigterm_deregisters_then_exits(self):
        reg = self.procs.sidecar("reg", self.register_args("web", "web-1", "127.0.0.1:1", []))
        watch = self.watcher("watch", ["web"])
        wait_for("registered", lambda: watch.ids("web") == ["web-1"], 15.0)
        self.assertEqual(self.children("/services/web"), ["web-1"])
        self.assertEqual(reg.terminate(), 0)
        # Gone by the time the process has exited.
        self.assertEqual(self.children("/services/web"), [])
        log = reg.log()
        self.assertIn("removed /services/web/web-1", log)
        self.assertLess(log.index("removed /services/web/web-1"), log.index("sidecar: stopped"))
        wait_for("the watcher saw it go", lambda: watch.ids("web") == [], 10.0)
        self.assertEqual(watch.terminate(), 0)

    def test_bad_flags_exit_2(self):
        import subprocess
        from sidecar_harness import SIDECAR
        r = subprocess.run([SIDECAR, "-s", self.coordd.hosts(), "--service", "web"],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"--address", r.stderr)
        tmpl = self.procs.path("bad.mustache")
        with open(tmpl, "w") as f:
            f.write("{{#services}} never closed")
        r = subprocess.run([SIDECAR, "-s", self.coordd.hosts(), "--watch", "web", "--listen",
                            "127.0.0.1:0", "--template", "%s:%s" % (tmpl, tmpl + ".out")],
                           capture_output=True, timeout=30)
        self.assertEqual(r.returncode, 2)
        self.assertIn(b"bad.mustache", r.stderr)


EXAMPLE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "deploy",
                       "examples", "sidecar")


class DeployExample(SidecarCase):
    """deploy/examples/sidecar as shipped: web.py, sidecar.json (its
    addresses overridden on the command line), the HAProxy template and
    the systemd unit."""

    def test_example_config_and_template(self):
        import subprocess
        from coordd_harness import free_port
        from sidecar_harness import PYTHON
        port = free_port()
        down = "/tmp/web-%d.down" % port
        self.addCleanup(lambda: os.path.exists(down) and os.unlink(down))
        web = subprocess.Popen([PYTHON, os.path.join(EXAMPLE, "web.py"), str(port), "127.0.0.1"])
        self.addCleanup(lambda: (web.kill(), web.wait(timeout=10)))
        out = self.procs.path("haproxy.cfg")
        addr = "127.0.0.1:%d" % port
        s = self.procs.sidecar("example", [
            "--config", os.path.join(EXAMPLE, "sidecar.json"), "-s", self.coordd.hosts(),
            "--address", addr, "--check", "http://%s/health" % addr, "--interval-ms", "100",
            "--template", "%s:%s" % (os.path.join(EXAMPLE, "haproxy.cfg.mustache"), out),
            "--reload-cmd", "true", "--debounce-ms", "50"])
        server = "    server 127.0.0.1-%d 127.0.0.1:%d check\n" % (port, port)
        wait_for("the instance in haproxy.cfg",
                 lambda: os.path.exists(out) and server in text(out), 15.0)
        self.assertNotIn("no healthy instance", text(out))
        inst = s.service("web")["instances"][0]
        self.assertEqual(inst["payload"], {"zone": "eu-1"})
        open(down, "w").close()
        wait_for("the instance gone from haproxy.cfg",
                 lambda: "no healthy instance" in text(out), 15.0)
        self.assertNotIn(server, text(out))
        self.assertIn("backend web\n    balance roundrobin\n", text(out))

    def test_systemd_unit_verifies(self):
        import shutil
        import subprocess
        import tempfile
        from sidecar_harness import SIDECAR
        analyze = shutil.which("systemd-analyze")
        if analyze is None:
            self.skipTest("systemd-analyze is not installed")
        d = tempfile.mkdtemp(prefix="coord-sidecar-systemd-")
        self.addCleanup(shutil.rmtree, d, True)
        unit = text(os.path.join(EXAMPLE, "coord-sidecar.service"))
        self.assertIn("ExecStart=/usr/local/bin/coord-sidecar --config "
                      "/etc/coord-sidecar/sidecar.json\n", unit)
        path = os.path.join(d, "coord-sidecar.service")
        with open(path, "w") as f:
            f.write(unit.replace("/usr/local/bin/coord-sidecar", os.path.abspath(SIDECAR)))
        p = subprocess.run([analyze, "verify", path], capture_output=True, text=True, timeout=60)
        ours = [line for line in (p.stdout + p.stderr).splitlines() if "coord-sidecar" in line]
        self.assertEqual(ours, [], p.stdout + p.stderr)
        self.assertEqual(p.returncode, 0, p.stdout + p.stderr)


if __name__ == "__main__":
    sys.stdout.reconfigure(line_buffering=True)
    ctest_main.main()
