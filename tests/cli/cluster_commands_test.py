"""coordctl's cluster commands (members, status, add-server, remove-server,
transfer-leader) on coordd's HTTP admin API.

Most of this file is a test of the shell's rendering and error paths
against a canned admin API: a tiny HTTP server in this process that answers
with fixed JSON documents of the API contract and records the requests it
got. Against a real single-node coordd it checks the endpoints coordd serves:
status and members, and membership changes refused with the server's
reason."""

import http.server
import json
import threading
import unittest

import ctest_main
from cli_support import coordctl_split
from coordd_harness import ADMIN_PASSWORD, ADMIN_USER, Coordd, basic_auth

MEMBERS = [
    {"id": 1, "client_address": "127.0.0.1:2181", "peer_address": "127.0.0.1:2888",
     "voter": True, "role": "leader", "match_index": 120, "lag": 0},
    {"id": 2, "client_address": "127.0.0.1:2182", "peer_address": "127.0.0.1:2889",
     "voter": True, "role": "follower", "match_index": 117, "lag": 3},
    {"id": 3, "client_address": "127.0.0.1:2183", "peer_address": "",
     "voter": False, "role": "learner", "match_index": 90, "lag": 30},
]
STATUS = {"node_id": 1, "leader_id": 1, "term": 3, "commit_index": 120, "applied_index": 120,
          "members": MEMBERS}


class CannedAdminApi(http.server.BaseHTTPRequestHandler):
    """Answers the contract's endpoints with canned documents; mutations of
    member 9 fail the way a single-node coordd answers them."""
    requests = []
    # (method, path, Authorization header or None) of every request.
    credentials = []

    def log_message(self, *args):
        pass

    def reply(self, code, doc):
        body = json.dumps(doc).encode() if doc is not None else b"not json"
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def body(self):
        CannedAdminApi.credentials.append(
            (self.command, self.path, self.headers.get("Authorization")))
        n = int(self.headers.get("Content-Length", "0"))
        return json.loads(self.rfile.read(n)) if n else None

    def do_GET(self):
        self.body()
        CannedAdminApi.requests.append(("GET", self.path, None))
        if self.path == "/v1/cluster/status":
            self.reply(200, STATUS)
        elif self.path == "/v1/cluster/members":
            self.reply(200, {"members": MEMBERS})
        else:
            self.reply(404, None)

    def do_POST(self):
        body = self.body()
        CannedAdminApi.requests.append(("POST", self.path, body))
        if body and body.get("id") == 9:
            self.reply(400, {"error": "ReconfigDisabled", "code": -123,
                             "message": "a single-node coordd has no cluster to change"})
        elif self.path in ("/v1/cluster/members", "/v1/cluster/transfer-leader"):
            self.reply(200, {"members": MEMBERS})
        else:
            self.reply(404, None)

    def do_DELETE(self):
        self.body()
        CannedAdminApi.requests.append(("DELETE", self.path, None))
        if self.path == "/v1/cluster/members/9":
            self.reply(400, {"error": "BadArguments", "code": -8, "message": "no member 9"})
        elif self.path.startswith("/v1/cluster/members/"):
            self.reply(200, {"members": MEMBERS})
        else:
            self.reply(404, None)


class CannedAdminApiRenderingTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), CannedAdminApi)
        cls.thread = threading.Thread(target=cls.server.serve_forever, daemon=True)
        cls.thread.start()
        cls.http = "127.0.0.1:%d" % cls.server.server_address[1]

    @classmethod
    def tearDownClass(cls):
        cls.server.shutdown()
        cls.server.server_close()

    def run_cmd(self, *args, json_mode=False):
        extra = ["--http", self.http] + (["--json"] if json_mode else [])
        # The ZooKeeper servers are never contacted by cluster commands.
        return coordctl_split("127.0.0.1:1", list(args), extra=extra, timeout=30)

    def test_status_renders_leader_term_and_lag_per_member(self):
        rc, out, err = self.run_cmd("status")
        self.assertEqual((rc, err), (0, ""))
        self.assertEqual(
            out,
            "node 1: leader 1, term 3, commit index 120, applied index 120\n"
            "ID    ROLE       VOTER  CLIENT                  PEER                    MATCH       LAG\n"
            "1     leader     yes    127.0.0.1:2181          127.0.0.1:2888          120         0\n"
            "2     follower   yes    127.0.0.1:2182          127.0.0.1:2889          117         3\n"
            "3     learner    no     127.0.0.1:2183          -                       90          30\n")

    def test_members_and_json_pass_through(self):
        rc, out, _ = self.run_cmd("members")
        self.assertEqual(rc, 0)
        self.assertEqual(len(out.splitlines()), 4)
        rc, out, _ = self.run_cmd("status", json_mode=True)
        self.assertEqual(json.loads(out), STATUS)

    def test_mutations_send_the_contracts_requests(self):
        CannedAdminApi.requests.clear()
        self.assertEqual(self.run_cmd("add-server", "4", "10.0.0.4:2888", "10.0.0.4:2181"),
                         (0, "Added server 4 (10.0.0.4:2888) as a participant\n", ""))
        self.assertEqual(self.run_cmd("add-server", "-l", "5", "10.0.0.5:2888", "2181")[0], 0)
        self.assertEqual(self.run_cmd("remove-server", "2"), (0, "Removed server 2\n", ""))
        self.assertEqual(self.run_cmd("transfer-leader", "3"),
                         (0, "Leadership transferred to server 3\n", ""))
        self.assertEqual(CannedAdminApi.requests, [
            ("POST", "/v1/cluster/members", {"id": 4, "peer_address": "10.0.0.4:2888",
                                             "client_address": "10.0.0.4:2181",
                                             "role": "participant"}),
            ("POST", "/v1/cluster/members", {"id": 5, "peer_address": "10.0.0.5:2888",
                                             "client_address": "0.0.0.0:2181",
                                             "role": "observer"}),
            ("DELETE", "/v1/cluster/members/2", None),
            ("POST", "/v1/cluster/transfer-leader", {"id": 3}),
        ])

    def test_user_is_sent_as_basic_credentials_with_changes_only(self):
        CannedAdminApi.credentials.clear()
        extra = ["--user", "ops:s3cr:et"]
        self.assertEqual(self.run_cmd(*extra, "transfer-leader", "3")[0], 0)
        self.assertEqual(self.run_cmd(*extra, "remove-server", "2")[0], 0)
        self.assertEqual(self.run_cmd(*extra, "members")[0], 0)
        self.assertEqual(self.run_cmd("transfer-leader", "3")[0], 0)
        sent = basic_auth(("ops", "s3cr:et"))
        self.assertEqual(CannedAdminApi.credentials, [
            ("POST", "/v1/cluster/transfer-leader", sent),
            ("DELETE", "/v1/cluster/members/2", sent),
            ("GET", "/v1/cluster/members", None),
            ("POST", "/v1/cluster/transfer-leader", None),
        ])

    def test_api_errors_print_the_message_and_exit_non_zero(self):
        self.assertEqual(self.run_cmd("add-server", "9", "10.0.0.9:2888", "10.0.0.9:2181"),
                         (8, "", "ReconfigDisabled: a single-node coordd has no cluster to "
                          "change\n"))
        self.assertEqual(self.run_cmd("remove-server", "9"),
                         (8, "", "BadArguments: no member 9\n"))
        rc, out, _ = self.run_cmd("transfer-leader", "9", json_mode=True)
        self.assertEqual(rc, 8)
        self.assertEqual(json.loads(out)["error"], "ReconfigDisabled")

    def test_unreachable_admin_api_is_exit_seven(self):
        rc, out, err = coordctl_split("127.0.0.1:1", ["members"], extra=["--http", "127.0.0.1:1"],
                                      timeout=30)
        self.assertEqual((rc, out), (7, ""))
        self.assertIn("admin API at 127.0.0.1:1: connect", err)


class RealCoorddTest(unittest.TestCase):
    """The cluster commands against a real single-node coordd."""

    @classmethod
    def setUpClass(cls):
        cls.coordd = Coordd().start()
        cls.http = "127.0.0.1:%d" % cls.coordd.http_port

    @classmethod
    def tearDownClass(cls):
        cls.coordd.cleanup()

    def run_cmd(self, *args, json_mode=False, user=ADMIN_USER + ":" + ADMIN_PASSWORD):
        extra = ["--http", self.http] + (["--json"] if json_mode else [])
        if user:
            extra += ["--user", user]
        return coordctl_split(self.coordd.hosts(), list(args), extra=extra, timeout=30)

    def test_changes_need_the_super_user(self):
        rc, out, err = self.run_cmd("transfer-leader", "1", user=None)
        self.assertEqual((rc, out), (6, ""))
        self.assertIn("--user", err)
        rc, out, err = self.run_cmd("transfer-leader", "1", user="someone:else")
        self.assertEqual((rc, out), (6, ""))
        self.assertRegex(err, r"^NoAuth: these credentials")

    def test_status_and_members_show_the_single_leader(self):
        rc, out, err = self.run_cmd("status")
        self.assertEqual((rc, err), (0, ""))
        lines = out.splitlines()
        self.assertRegex(lines[0], r"^node 1: leader 1, term \d+, commit index \d+, "
                                   r"applied index \d+$")
        self.assertEqual(len(lines), 3, out)
        self.assertRegex(lines[2], r"^1 +leader +yes +127\.0\.0\.1:%d +- +\d+ +0$"
                         % self.coordd.port)
        rc, out, _ = self.run_cmd("members", json_mode=True)
        self.assertEqual(rc, 0)
        (me,) = json.loads(out)["members"]
        self.assertEqual((me["id"], me["role"], me["voter"]), (1, "leader", True))

    def test_membership_changes_are_refused_with_the_servers_reason(self):
        rc, out, err = self.run_cmd("add-server", "2", "127.0.0.1:2888", "127.0.0.1:2182")
        self.assertEqual((rc, out), (8, ""))
        self.assertRegex(err, r"^ReconfigDisabled: membership does not change at run time")
        rc, _, err = self.run_cmd("remove-server", "7")
        self.assertEqual(rc, 8)
        self.assertIn("no member 7", err)
        self.assertEqual(self.run_cmd("transfer-leader", "1")[0], 0)
        rc, _, err = self.run_cmd("transfer-leader", "2")
        self.assertEqual(rc, 8)
        self.assertIn("no voter 2", err)


if __name__ == "__main__":
    ctest_main.main()
