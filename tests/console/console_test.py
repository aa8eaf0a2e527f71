"""coordd's web console (/ui/) end to end: a real coordd, headless Chromium
driven through chromedriver by Debian's python3-selenium, and kazoo making
changes from outside.

- Served: the console's files with their content types and security
  headers, 404 and 405, `/` redirecting to /ui/ (no browser needed).
- Single server: log in, browse to a node, edit it, have the version check
  refuse an edit after kazoo changed the node, an ACL refuse an edit for an
  identity without WRITE, page through a node with hundreds of children and
  search them by prefix, create and delete, kazoo's changes arriving in the
  event pane, kazoo's session and its ephemeral in the sessions view.
- Cluster: three servers; the console of a follower shows the leader, the
  leader is killed (SIGKILL by pid), and it shows the new one.

Each view is saved as a screenshot in COORD_CONSOLE_SCREENSHOTS (the build
tree). Without chromium, chromedriver or selenium every browser test reports
SKIPPED with the reason. Every wait is bounded.
"""

import http.client
import json
import os
import shutil
import sys
import tempfile
import time
import unittest

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))

import ctest_main  # noqa: E402
from coordd_harness import Coordd, CoorddCluster  # noqa: E402

try:
    from kazoo.client import KazooClient
    from kazoo.security import make_acl, make_digest_acl
except ImportError:  # reported per test
    KazooClient = None

try:
    from selenium import webdriver
    from selenium.common.exceptions import (StaleElementReferenceException, TimeoutException,
                                            WebDriverException)
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait
except ImportError:
    webdriver = None

CHROMIUM = next((p for p in ("/usr/lib/chromium/chromium", shutil.which("chromium") or "",
                             shutil.which("chromium-browser") or "") if p and os.path.exists(p)),
                None)
CHROMEDRIVER = shutil.which("chromedriver") or (
    "/usr/lib/chromium/chromedriver" if os.path.exists("/usr/lib/chromium/chromedriver") else None)

WAIT_S = 10.0
SHOTS = os.environ.get("COORD_CONSOLE_SCREENSHOTS") or os.path.join(
    tempfile.gettempdir(), "coord-console-screenshots")

ALICE = ("alice", "alice-pw")
BOB = ("bob", "bob-pw")


def browser_missing():
    if webdriver is None:
        return "python3-selenium is not installed"
    if CHROMIUM is None:
        return "chromium is not installed"
    if CHROMEDRIVER is None:
        return "chromedriver (Debian chromium-driver) is not installed"
    if KazooClient is None:
        return "kazoo (Debian python3-kazoo) is not installed"
    return None


def fetch(port, method, path, body=None, headers=None):
    """(status, headers, body bytes) of one plain HTTP request."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        c.request(method, path, body=body, headers=headers or {})
        r = c.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        c.close()


def has_endpoint(port, method, path, body=None, headers=None):
    """Whether the server routes method+path (anything but 404 "no such
    endpoint" or 405 for that method)."""
    status, _, data = fetch(port, method, path, body,
                            headers or {"Content-Type": "application/json"})
    if status == 405:
        return False
    if status == 404:
        return b"no such endpoint" not in data
    return True


class Browser:
    """Headless Chromium with a profile of its own, removed at the end."""

    def __init__(self):
        self.profile = tempfile.mkdtemp(prefix="coord-console-chromium-")
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                    "--no-first-run", "--disable-extensions", "--window-size=1360,900",
                    "--user-data-dir=" + self.profile):
            options.add_argument(arg)
        try:
            self.driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        except Exception:
            shutil.rmtree(self.profile, ignore_errors=True)
            raise
        self.driver.set_page_load_timeout(20)
        self.driver.set_script_timeout(10)

    def quit(self):
        try:
            self.driver.quit()
        finally:
            shutil.rmtree(self.profile, ignore_errors=True)

    # -- driving the page ---------------------------------------------------
    def open(self, port, path="/"):
        self.driver.get("http://127.0.0.1:%d%s" % (port, path))

    def wait(self, what, predicate, timeout_s=WAIT_S):
        try:
            # The page rebuilds what it shows: an element found a moment
            # ago may be gone, which is asked again.
            return WebDriverWait(self.driver, timeout_s, poll_frequency=0.05,
                                 ignored_exceptions=[StaleElementReferenceException]).until(
                lambda d: predicate())
        except TimeoutException:
            raise AssertionError("%s: not within %.0f s (page says: %s)" % (
                what, timeout_s, self.text("body")[:1500]))

    def find(self, css):
        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css):
        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def visible(self, css):
        found = self.all(css)
        return found[0] if found and found[0].is_displayed() else None

    def text(self, css):
        found = self.all(css)
        return found[0].text if found else ""

    def click(self, css):
        el = self.wait("%s shown" % css, lambda: self.visible(css))
        self.wait("%s enabled" % css, lambda: el.is_enabled())
        el.click()

    def type(self, css, text):
        el = self.wait("%s shown" % css, lambda: self.visible(css))
        el.clear()
        el.send_keys(text)

    def login(self, port, auth=None):
        self.open(port, "/")
        self.wait("the login prompt", lambda: self.visible("#login-form"))
        if auth is None:
            self.click("#login-anonymous")
        else:
            self.type("#login-user", auth[0])
            self.type("#login-password", auth[1])
            self.click("#login-submit")
        self.wait("the tree after login", lambda: self.visible("#tree li[data-path='/']"))

    def tab(self, view):
        self.click("#tabs .tab[data-view='%s']" % view)
        self.wait("the %s view" % view, lambda: self.visible("#view-" + view))

    def row(self, path):
        return "#tree li[data-path='%s'] > .tree-row" % path

    def open_node(self, path):
        """Expands the tree down to `path` and selects it."""
        self.tab("tree")
        at = ""
        for part in path.strip("/").split("/"):
            at += "/" + part
            self.wait("%s listed" % at, lambda: self.visible(self.row(at)))
            if at != path:
                li = self.find("#tree li[data-path='%s']" % at)
                if li.find_element(By.CSS_SELECTOR, ":scope > ul").get_attribute("hidden") is not None:
                    self.find(self.row(at) + " .toggle").click()
        self.find(self.row(path) + " .node-name").click()
        self.wait("%s shown" % path, lambda: self.node_path() == path)

    def node_path(self):
        crumbs = self.all("#node-path .crumb")
        if not crumbs:
            return None
        parts = [c.text for c in crumbs]
        return "/" + "/".join(parts[1:]) if len(parts) > 1 else "/"

    def shot(self, name):
        os.makedirs(SHOTS, exist_ok=True)
        self.driver.save_screenshot(os.path.join(SHOTS, name + ".png"))

    def console_errors(self):
        try:
            return [e for e in self.driver.get_log("browser") if e.get("level") == "SEVERE"]
        except WebDriverException:
            return []


class Served(unittest.TestCase):
    """The files and headers, over plain HTTP."""

    @classmethod
    def setUpClass(cls):
        cls.server = Coordd().start()
        cls.port = cls.server.http_port

    @classmethod
    def tearDownClass(cls):
        cls.server.cleanup()

    def assert_security_headers(self, headers):
        self.assertEqual(headers.get("content-security-policy"),
                         "default-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'")
        self.assertEqual(headers.get("x-content-type-options"), "nosniff")
        self.assertEqual(headers.get("cache-control"), "no-cache")

    def test_files_with_their_types_and_headers(self):
        for path, ctype, marker in (("/ui/", "text/html; charset=utf-8", b"<!DOCTYPE html>"),
                                    ("/ui/index.html", "text/html; charset=utf-8", b"app.js"),
                                    ("/ui/app.js", "text/javascript; charset=utf-8", b"use strict"),
                                    ("/ui/style.css", "text/css; charset=utf-8", b":root")):
            status, headers, body = fetch(self.port, "GET", path)
            self.assertEqual(status, 200, path)
            self.assertEqual(headers["content-type"], ctype, path)
            self.assertIn(marker, body, path)
            self.assert_security_headers(headers)

    def test_root_redirects_to_the_console(self):
        for path in ("/", "/ui"):
            status, headers, _ = fetch(self.port, "GET", path)
            self.assertIn(status, (302, 308), path)
            self.assertEqual(headers["location"], "/ui/")

    def test_unknown_file_is_404_and_other_methods_405(self):
        for path in ("/ui/nothing.js", "/ui/../v1/znodes/", "/ui/%2e%2e/index.html", "/ui/ui/app.js"):
            status, headers, body = fetch(self.port, "GET", path)
            self.assertEqual(status, 404, path)
            self.assertEqual(json.loads(body)["error"], "BadArguments")
            self.assert_security_headers(headers)
        status, headers, _ = fetch(self.port, "POST", "/ui/", b"{}",
                                   {"Content-Type": "application/json"})
        self.assertEqual(status, 405)
        status, _, _ = fetch(self.port, "DELETE", "/ui/app.js", None, {"X-Coord-Request": "1"})
        self.assertEqual(status, 405)

    def test_the_rest_api_is_unchanged(self):
        status, headers, _ = fetch(self.port, "GET", "/v1/znodes/")
        self.assertEqual(status, 200)
        self.assertNotIn("content-security-policy", headers)


def needs_browser(cls):
    reason = browser_missing()
    return unittest.skip(reason)(cls) if reason else cls


@needs_browser
class SingleServer(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = Coordd().start()
        cls.port = cls.server.http_port
        cls.zk = KazooClient(hosts=cls.server.hosts(), timeout=10,
                             auth_data=[("digest", "%s:%s" % BOB)])
        cls.zk.start(timeout=15)
        cls.browser = None
        try:
            cls.browser = Browser()
        except Exception:
            cls.tearDownClass()
            raise

    @classmethod
    def tearDownClass(cls):
        if cls.browser:
            cls.browser.quit()
        cls.zk.stop()
        cls.zk.close()
        cls.server.cleanup()

    def setUp(self):
        self.b = self.browser
        self.b.driver.delete_all_cookies()
        self.b.open(self.port, "/ui/")
        self.b.driver.execute_script("sessionStorage.clear()")

    def test_login_browse_edit_and_version_check(self):
        b = self.b
        self.zk.ensure_path("/shop/app")
        self.zk.create("/shop/app/config", b'{"color":"blue","sizes":[1,2]}')
        b.login(self.port, ALICE)
        self.assertIn("alice", b.text("#identity"))
        b.open_node("/shop/app/config")
        self.assertIn('"color":"blue"', b.text("#node-data"))
        b.click("#format-json")
        b.wait("pretty JSON", lambda: '"color": "blue",' in b.text("#node-data"))
        self.assertEqual(b.find("#node-stat tr[data-field='version'] td").text, "0")
        b.shot("tree")
        b.click("#format-hex")
        b.wait("a hex dump", lambda: b.text("#node-data").startswith("00000000  7b 22 63"))

        # An edit, checked against the version shown.
        b.type("#node-edit", '{"color":"green"}')
        b.click("#node-save")
        b.wait("saved", lambda: "Saved: version 1" in b.text("#node-message"))
        self.assertEqual(self.zk.get("/shop/app/config")[0], b'{"color":"green"}')

        # Kazoo changes the node behind the page's back: the next save is
        # refused with BadVersion, and kazoo's data stays.
        b.type("#node-edit", '{"color":"red"}')
        self.zk.set("/shop/app/config", b'{"color":"kazoo"}')
        b.click("#node-save")
        b.wait("BadVersion shown", lambda: "BadVersion" in b.text("#node-message"))
        self.assertIn("Nothing was overwritten", b.text("#node-message"))
        self.assertEqual(self.zk.get("/shop/app/config")[0], b'{"color":"kazoo"}')
        b.shot("conflict")
        # Reload shows kazoo's version; saving then works.
        b.find("#node-message button").click()
        b.wait("reloaded", lambda: b.find("#node-stat tr[data-field='version'] td").text == "2")
        b.click("#format-text")
        self.assertEqual(b.text("#node-data"), '{"color":"kazoo"}')

    def test_acl_refuses_an_edit_without_write(self):
        b = self.b
        # bob may do everything; anyone may read.
        acl = [make_digest_acl(BOB[0], BOB[1], all=True), make_acl("world", "anyone", read=True)]
        self.zk.create("/locked", b"bob's", acl=acl)
        b.login(self.port, ALICE)
        b.open_node("/locked")
        self.assertEqual(b.text("#node-data"), "bob's")
        editor = b.find("#node-edit")
        # The page knows alice's identities: read-only from the start.
        self.assertIsNotNone(editor.get_attribute("readonly"))
        b.wait("read-only with the reason", lambda: "read-only" in b.text("#node-readonly"))
        self.assertFalse(b.find("#node-save").is_enabled())
        self.assertEqual(self.zk.get("/locked")[0], b"bob's")
        b.shot("acl-refused")
        # Another alice (another password) may write: her digest is masked
        # to "alice:x" for this alice, who cannot tell, so the server's 403
        # decides and the page turns read-only with its reason.
        self.zk.create("/locked-alice", b"other alice's",
                       acl=[make_digest_acl("alice", "other-pw", read=True, write=True),
                            make_acl("world", "anyone", read=True)])
        b.type("#search-input", "/locked-")
        b.click("#search-form button[type='submit']")
        b.wait("found", lambda: b.visible("#search-list li[data-path='/locked-alice']"))
        b.find("#search-list li[data-path='/locked-alice'] .node-name").click()
        b.wait("shown", lambda: b.node_path() == "/locked-alice")
        b.click("#search-clear")
        self.assertIsNone(b.find("#node-edit").get_attribute("readonly"))
        b.type("#node-edit", "alice's")
        b.click("#node-save")
        b.wait("the refusal", lambda: "NoAuth (403)" in b.text("#node-message"))
        b.wait("read-only with the reason", lambda: "read-only" in b.text("#node-readonly"))
        self.assertFalse(b.find("#node-save").is_enabled())
        self.assertEqual(self.zk.get("/locked-alice")[0], b"other alice's")

    def test_paging_and_search_by_prefix(self):
        b = self.b
        self.zk.ensure_path("/many")
        tx = self.zk.transaction()
        for i in range(250):
            tx.create("/many/n%03d" % i, b"")
        self.assertTrue(all(r == "/many/n%03d" % i for i, r in enumerate(tx.commit())))
        b.login(self.port)
        b.wait("/many listed", lambda: b.visible(b.row("/many")))
        b.find(b.row("/many") + " .toggle").click()
        items = "#tree li[data-path='/many'] > ul > li.tree-item"
        b.wait("the first page", lambda: len(b.all(items)) == 100)
        self.assertIn("100 of 250", b.text("#tree li[data-path='/many'] > ul > li.more"))
        b.click("#tree li[data-path='/many'] > ul > li.more button")
        b.wait("the second page", lambda: len(b.all(items)) == 200)
        self.assertEqual(b.all(items)[199].get_attribute("data-path"), "/many/n199")
        b.type("#search-input", "/many/n12")
        b.click("#search-form button[type='submit']")
        b.wait("search results", lambda: b.visible("#search-summary"))
        self.assertIn("10 children of /many", b.text("#search-summary"))
        found = [li.get_attribute("data-path") for li in b.all("#search-list li")]
        self.assertEqual(found, ["/many/n%03d" % i for i in range(120, 130)])
        b.shot("search")
        b.find("#search-list li[data-path='/many/n125'] .node-name").click()
        b.wait("the found node", lambda: b.node_path() == "/many/n125")
        b.click("#search-clear")

    def test_create_and_delete_a_subtree(self):
        if not has_endpoint(self.port, "POST", "/v1/znodes/probe-create", b"{bad"):
            self.skipTest("this coordd has no POST /v1/znodes (create with a mode) yet")
        b = self.b
        self.zk.ensure_path("/made")
        b.login(self.port, ALICE)
        b.open_node("/made")
        b.click("#node-create")
        b.type("#create-name", "box")
        b.type("#create-data", "hello")
        b.click("#dialog-ok")
        b.wait("created", lambda: b.node_path() == "/made/box")
        self.assertEqual(self.zk.get("/made/box")[0], b"hello")
        b.click("#node-create")
        b.type("#create-name", "temp")
        from selenium.webdriver.support.ui import Select
        Select(b.find("#create-mode")).select_by_value("ttl")
        b.type("#create-ttl", "600000")
        b.click("#dialog-ok")
        b.wait("created a TTL node", lambda: b.node_path() == "/made/box/temp")
        b.open_node("/made/box")
        b.click("#node-delete")
        b.click("#dialog-ok")
        b.wait("NotEmpty told", lambda: "Delete subtree" in b.text("#dialog-error"))
        b.click("#dialog-cancel")
        b.click("#node-delete-tree")
        b.type("#delete-confirm", "/made/box")
        b.click("#dialog-ok")
        b.wait("deleted", lambda: "Deleted /made/box" in b.text("#node-message"))
        self.assertIsNone(self.zk.exists("/made/box"))

    def test_kazoo_changes_arrive_in_the_event_pane(self):
        if not has_endpoint(self.port, "GET", "/v1/events?path=/"):
            self.skipTest("this coordd has no event stream (/v1/events) yet")
        b = self.b
        self.zk.ensure_path("/live")
        b.login(self.port, ALICE)
        b.open_node("/live")
        b.tab("live")
        b.type("#live-path", "/live")
        b.click("#live-start")
        b.wait("live", lambda: "live on /live" in b.text("#live-status"))
        self.zk.create("/live/item", b"one")
        self.zk.set("/live/item", b"two")
        self.zk.create("/live/gone", b"")
        self.zk.delete("/live/gone")
        rows = "#live-events tr.event"
        b.wait("created, changed, deleted", lambda: {"created", "changed", "deleted"} <= {
            r.get_attribute("data-type") for r in b.all(rows)})
        changed = [r for r in b.all(rows) if r.get_attribute("data-type") == "changed"][0]
        self.assertEqual(changed.get_attribute("data-path"), "/live/item")
        self.assertEqual(changed.find_elements(By.TAG_NAME, "td")[4].text, "1")
        b.shot("live")
        # The tree learnt that /live has a child; opened, it lists it, and
        # highlights it when kazoo changes it.
        b.tab("tree")
        b.wait("/live has children", lambda: "leaf" not in b.find(
            b.row("/live") + " .toggle").get_attribute("class"))
        b.find(b.row("/live") + " .toggle").click()
        b.wait("/live/item listed", lambda: b.visible(b.row("/live/item")))
        self.zk.set("/live/item", b"three")
        b.wait("highlighted", lambda: "flash" in b.find(b.row("/live/item")).get_attribute("class"))
        # The node shown, changed meanwhile, says so.
        b.find(b.row("/live/item") + " .node-name").click()
        b.wait("/live/item shown", lambda: b.node_path() == "/live/item")
        self.zk.set("/live/item", b"four")
        b.wait("told of the change", lambda: b.visible("#node-changed"))
        # The stream drops; what happens meanwhile is replayed on the
        # reconnection (from_zxid), once.
        b.tab("live")
        b.driver.execute_script("live.retryMs = 3000; live.ws.close();")
        b.wait("reconnecting", lambda: "reconnecting" in b.text("#live-status"))
        self.zk.create("/live/while-away", b"")
        away = "#live-events tr.event[data-path='/live/while-away']"
        b.wait("the missed event", lambda: b.visible(away), timeout_s=15)
        b.wait("live again", lambda: "live on /live" in b.text("#live-status"))
        self.assertEqual(len(b.all(away)), 1)
        b.click("#live-stop")
        b.wait("stopped", lambda: b.text("#live-status") == "not watching")

    def test_sessions_list_kazoo_and_its_ephemeral(self):
        if not has_endpoint(self.port, "GET", "/v1/sessions"):
            self.skipTest("this coordd has no /v1/sessions yet")
        b = self.b
        self.zk.ensure_path("/workers")
        self.zk.create("/workers/w1", b"", ephemeral=True)
        session = "0x%x" % self.zk.client_id[0]
        b.login(self.port)
        b.tab("sessions")
        row = "#sessions-body tr[data-session='%s']" % session
        b.wait("kazoo's session", lambda: b.visible(row))
        self.assertIn("/workers/w1", b.find(row).text)
        b.shot("sessions")
        b.find(row + " .node-name").click()
        b.wait("the ephemeral", lambda: b.node_path() == "/workers/w1")
        self.assertIn(session, b.text("#node-ephemeral"))

    def test_logout_forgets_the_login(self):
        b = self.b
        b.login(self.port, ALICE)
        token = b.driver.execute_script("return sessionStorage.getItem('coord.token')")
        self.assertRegex(token, "^[0-9a-f]{32}$")
        bearer = {"Authorization": "Bearer " + token}
        self.assertEqual(fetch(self.port, "GET", "/v1/znodes/", None, bearer)[0], 200)
        b.click("#logout")
        b.wait("the login prompt", lambda: b.visible("#login-form"))
        self.assertIsNone(b.driver.execute_script(
            "return sessionStorage.getItem('coord.token')"))
        # The server forgot it too.
        status, _, body = fetch(self.port, "GET", "/v1/znodes/", None, bearer)
        self.assertEqual(status, 401)
        self.assertEqual(json.loads(body)["error"], "SessionExpired")
        b.shot("login")


@needs_browser
class ClusterView(unittest.TestCase):
    def test_leader_change_after_the_leader_is_killed(self):
        cluster = CoorddCluster(3).start()
        browser = None
        try:
            leader = cluster.wait_leader()
            follower = next(sid for sid in cluster.ids if sid != leader)
            browser = Browser()
            b = browser
            b.login(cluster.http_ports[follower])
            b.tab("cluster")
            leader_row = "#cluster-members tr[data-role='leader']"
            b.wait("the leader", lambda: b.visible(leader_row)
                   and b.find(leader_row).get_attribute("data-id") == str(leader))
            self.assertEqual(len(b.all("#cluster-members tr.member")), 3)
            b.wait("ready", lambda: b.text("#health").startswith("ready"))
            if has_endpoint(cluster.http_ports[follower], "GET", "/v1/metrics/history"):
                b.wait("the plots", lambda: len(b.all("#plots figure.plot-box")) == 5)
            b.shot("cluster")
            cluster.kill(leader)  # SIGKILL by pid
            new_leader = cluster.wait_leader(other_than=leader)
            b.wait("the new leader", lambda: b.visible(leader_row)
                   and b.find(leader_row).get_attribute("data-id") == str(new_leader),
                   timeout_s=15)
            self.assertIn("leader %d" % new_leader if new_leader != follower else "leader",
                          b.text("#server-info"))
            b.shot("cluster-after-leader-kill")
        finally:
            if browser:
                browser.quit()
            cluster.cleanup()


if __name__ == "__main__":
    ctest_main.main()
