"""The clients of a faults run and the histories they record.

Every workload records each operation it made in the history format of
docs/formats/fault-history.md: what it asked, what came back, and when it
asked and heard (CLOCK_MONOTONIC ns, the clock every process on the
machine shares). coord-faults-check reads the files afterwards.

- KazooRegisters: kazoo sessions doing compare-and-set on the same
  registers as the libcoord workload (reads are sync + getData, the
  linearizable read).
- Watchers: one writer bumps a node; watchers follow it with one-shot
  data watches re-armed on every event and after every reconnect. Each
  read a watcher makes is recorded; at the end each must reach the last
  version without polling.
- Ephemerals: owners each reach the servers through client proxies of
  their own, which the workload cuts now and then for longer than the
  owners' session timeout, so sessions expire under load. An expiry is
  recorded as a delete of the owner's ephemeral somewhere between the
  owner's last acknowledged operation and the moment it heard of the
  expiry; observers read the ephemerals meanwhile. The linearizability
  check then says whether an ephemeral vanished while its session lived,
  or outlived it.
- LeaderPoller: every server's view of (term, leader), sampled; at most
  one leader per term.
- libcoord(): the coord-faults-workload processes (libcoord registers and
  sequential creates).
"""

import json
import os
import random
import subprocess
import threading
import time

import cluster_test
from coordd_harness import free_ports, http_json
from peer_proxy import ClientProxies

try:
    from kazoo.client import KazooState
    from kazoo.exceptions import (BadVersionError, ConnectionLoss, NodeExistsError,
                                  NoNodeError, OperationTimeoutError, SessionExpiredError)
    from kazoo.handlers.threading import KazooTimeoutError
    KAZOO_MISSING = ""
except ImportError as e:
    KAZOO_MISSING = "kazoo is missing (Debian python3-kazoo): %s" % e

ROOT = "/faults"
OP_TIMEOUT_S = 4.0  # one kazoo call: past it the outcome is unknown
PAUSE_S = (0.0, 0.01)  # between two operations of one client
START_S = 20.0  # for a new session once the old one expired
WATCH_REACH_S = 15.0  # after the run, for every watcher to see the last write
POLL_S = 0.1  # the leader poller's interval
EPH_CUT_EVERY_S = (2.0, 5.0)  # an owner is cut off this often ...
EPH_SESSION_TIMEOUT_MS = 1200  # ... for longer than this


def now_ns():
    return time.monotonic_ns()


class History:
    """The records of one client process, written to one file at the end."""

    def __init__(self, path):
        self.path = path
        self.records = []
        self.lock = threading.Lock()

    def add(self, **rec):
        with self.lock:
            self.records.append(rec)
        return rec

    def write(self):
        with self.lock, open(self.path, "w") as f:
            for r in self.records:
                f.write(json.dumps(r, sort_keys=True) + "\n")


def kazoo_client(hosts, session_timeout_s):
    """A started kazoo client that never retries a call for us."""
    return cluster_test.kazoo(hosts, session_timeout_s=session_timeout_s)


close_quietly = cluster_test.close


def outcome_of(e):
    """(outcome, error name) of a kazoo exception."""
    if isinstance(e, (ConnectionLoss, OperationTimeoutError, KazooTimeoutError)):
        return "unknown", type(e).__name__
    if isinstance(e, NoNodeError):
        return "no_node", None
    if isinstance(e, NodeExistsError):
        return "node_exists", None
    if isinstance(e, BadVersionError):
        return "bad_version", None
    # SessionExpired, NotReadOnly, ...: refused, nothing done.
    return "fail", type(e).__name__


def ensure(k, path):
    k.ensure_path_async(path).get(timeout=OP_TIMEOUT_S)


def read(k, key):
    """sync then getData on one session: a linearizable read. Returns
    (outcome, data, version)."""
    k.sync_async(key).get(timeout=OP_TIMEOUT_S)
    data, stat = k.get_async(key).get(timeout=OP_TIMEOUT_S)
    return "ok", data.decode(), stat.version


class Client(threading.Thread):
    """A thread with a kazoo session, recording into a History, until
    stop is set."""

    def __init__(self, run, process, hosts, session_timeout_s):
        super().__init__(daemon=True)
        self.run_ = run
        self.process = process
        self.hosts = hosts
        self.session_timeout_s = session_timeout_s
        self.history = History(os.path.join(run.results, "history-%s.jsonl" % process))
        self.rng = random.Random("%s/%s" % (run.seed, process))
        self.stop = threading.Event()
        self.k = kazoo_client(hosts, session_timeout_s)
        self.n = 0

    def record(self, f, key, call, outcome, error=None, **fields):
        rec = dict(process=self.process, f=f, key=key, call_ns=call, outcome=outcome,
                   ret_ns=None if outcome == "unknown" else now_ns(), **fields)
        if error:
            rec["error"] = error
        return self.history.add(**rec)

    def op(self, f, key, fn, **fields):
        """Runs fn() -> dict of result fields; records it whatever happens."""
        call = now_ns()
        try:
            got = fn()
        except Exception as e:  # noqa: BLE001 - every outcome is recorded
            outcome, error = outcome_of(e)
            self.record(f, key, call, outcome, error, **fields)
            if isinstance(e, SessionExpiredError) or self.k.state == KazooState.LOST:
                self.renew()
            elif outcome == "unknown":
                time.sleep(0.02)
            return None
        fields.update(got)
        return self.record(f, key, call, "ok", **fields)

    def renew(self):
        close_quietly(self.k)
        deadline = time.monotonic() + START_S
        while not self.stop.is_set() and time.monotonic() < deadline:
            try:
                self.k = kazoo_client(self.hosts, self.session_timeout_s)
                return
            except Exception:  # noqa: BLE001 - no server reachable yet
                time.sleep(0.1)

    def finish(self, timeout_s=OP_TIMEOUT_S * 3):
        self.stop.set()
        if self.ident is not None:
            self.join(timeout_s)
        close_quietly(self.k)
        self.history.write()


class KazooRegisters(Client):
    """Compare-and-set on PREFIX/r/0..keys-1, the registers the libcoord
    workload uses too."""

    def __init__(self, run, process, hosts, keys):
        super().__init__(run, process, hosts, run.session_timeout_s)
        self.keys = ["%s/r/%d" % (ROOT, i) for i in range(keys)]
        self.seen = {}  # key -> last version read or written

    def run(self):
        while not self.stop.is_set():
            key = self.rng.choice(self.keys)
            self.n += 1
            value = "%s-%d" % (self.process, self.n)
            x = self.rng.random()
            if x < 0.5:
                r = self.op("read", key, lambda: dict(zip(("data", "version"),
                                                          read(self.k, key)[1:])))
                if r:
                    self.seen[key] = r["version"]
            elif x < 0.85:
                ev = self.seen.get(key, 0) if self.rng.random() < 0.8 else -1

                def set_():
                    stat = self.k.set_async(key, value.encode(), version=ev).get(
                        timeout=OP_TIMEOUT_S)
                    self.seen[key] = stat.version
                    return {"version": stat.version}
                self.op("set", key, set_, data=value, expected_version=ev)
            elif x < 0.95:
                self.op("create", key, lambda: self.k.create_async(key, value.encode()).get(
                    timeout=OP_TIMEOUT_S) and {}, data=value)
            else:
                ev = self.seen.get(key, 0)
                self.op("delete", key, lambda: self.k.delete_async(key, version=ev).get(
                    timeout=OP_TIMEOUT_S) and {}, expected_version=ev)
            time.sleep(self.rng.uniform(*PAUSE_S))


class WatchWriter(Client):
    """Bumps the watched node every few ms: setData with the version it
    last saw, and after a write of unknown outcome a read first. Both keep
    the node's history cheap to check: a write whose fate is unknown can
    only have taken effect at one version, and the read tells which."""

    def __init__(self, run, process, hosts, key):
        super().__init__(run, process, hosts, run.session_timeout_s)
        self.key = key
        self.version = None

    def run(self):
        while not self.stop.is_set():
            if self.version is None:
                r = self.op("read", self.key, lambda: dict(zip(("data", "version"),
                                                               read(self.k, self.key)[1:])))
                self.version = r["version"] if r else None
                time.sleep(self.rng.uniform(0.005, 0.03))
                continue
            self.n += 1
            value = "%s-%d" % (self.process, self.n)
            ev = self.version

            def set_():
                stat = self.k.set_async(self.key, value.encode(), version=ev).get(
                    timeout=OP_TIMEOUT_S)
                return {"version": stat.version}
            r = self.op("set", self.key, set_, data=value, expected_version=ev)
            self.version = r["version"] if r else None
            time.sleep(self.rng.uniform(0.005, 0.03))


class Watcher(Client):
    """Follows one node with one-shot data watches: every event, and every
    reconnect, leads to a getData that sets the next watch. Never polls."""

    def __init__(self, run, process, hosts, key):
        super().__init__(run, process, hosts, run.session_timeout_s)
        self.key = key
        self.last = -1
        self.changed = threading.Event()
        self.k.add_listener(self.on_state)

    def on_state(self, state):
        if state == KazooState.CONNECTED:
            # A get lost with the connection left no watch behind: set one
            # again (events the watch missed meanwhile are what SetWatches
            # on the reconnect is for; this covers the get itself).
            self.changed.set()

    def on_event(self, event):
        self.changed.set()

    def run(self):
        self.changed.set()
        while not self.stop.is_set():
            if not self.changed.wait(0.1):
                continue
            self.changed.clear()
            call = now_ns()
            try:
                data, stat = self.k.get_async(self.key, watch=self.on_event).get(
                    timeout=OP_TIMEOUT_S)
            except Exception as e:  # noqa: BLE001 - retried on the next state change
                if isinstance(e, SessionExpiredError) or self.k.state == KazooState.LOST:
                    self.renew()
                    self.k.add_listener(self.on_state)
                    self.changed.set()
                continue
            self.last = max(self.last, stat.version)
            self.history.add(process=self.process, f="watch_seen", key=self.key,
                             version=stat.version, data=data.decode(), outcome="ok",
                             call_ns=call, ret_ns=now_ns())

    def done(self, final_version):
        t = now_ns()
        self.history.add(process=self.process, f="watch_done", key=self.key,
                         reached=self.last >= final_version, version=self.last,
                         final_version=final_version, outcome="ok", call_ns=t, ret_ns=t)


class EphemeralOwner(Client):
    """Keeps one ephemeral of its own session, reads it back, and is cut
    off from every server now and then until its session expires."""

    def __init__(self, run, process, hosts, proxies, published):
        self.proxies = proxies
        super().__init__(run, process, hosts, EPH_SESSION_TIMEOUT_MS / 1000.0)
        self.published = published  # every ephemeral path, for the observers
        self.generation = 0
        self.key = None
        self.created = None  # "ok" or "unknown" for the current key
        self.last_ok_call = None  # the call time of the session's last ok op
        self.next_cut = time.monotonic() + self.rng.uniform(*EPH_CUT_EVERY_S)

    def new_ephemeral(self):
        self.generation += 1
        self.key = "%s/e/%s-%d" % (ROOT, self.process, self.generation)
        self.published.append(self.key)
        value = "%s-%d" % (self.process, self.generation)
        r = self.op("create", self.key, lambda: self.k.create_async(
            self.key, value.encode(), ephemeral=True).get(timeout=OP_TIMEOUT_S) and {},
            data=value, note="ephemeral")
        self.created = "ok" if r else "unknown"
        if r:
            self.last_ok_call = r["call_ns"]

    def expired(self, how, call_ns=None):
        """The session is gone: its ephemeral went with it, after the last
        ok op's call and before now."""
        if self.key is None or self.created is None:
            return
        start = call_ns if call_ns is not None else self.last_ok_call
        if self.created == "ok" and start is not None:
            self.history.add(process=self.process, f="delete", key=self.key, expected_version=-1,
                             outcome="ok", call_ns=start, ret_ns=now_ns(), note=how)
        else:
            self.history.add(process=self.process, f="delete", key=self.key, expected_version=-1,
                             outcome="unknown", call_ns=start or now_ns(), ret_ns=None, note=how)
        self.key = None
        self.created = None

    def renew(self):
        self.expired("session expiry")
        super().renew()

    def run(self):
        while not self.stop.is_set():
            if self.key is None:
                self.new_ephemeral()
                continue
            if time.monotonic() >= self.next_cut:
                self.run_.event("ephemeral-owner-cut", owner=self.process)
                self.proxies.set_cut(list(self.proxies_ids))
                self.stop.wait(EPH_SESSION_TIMEOUT_MS / 1000.0 + self.rng.uniform(0.3, 1.0))
                self.proxies.set_cut([])
                self.next_cut = time.monotonic() + self.rng.uniform(*EPH_CUT_EVERY_S)
            key = self.key
            r = self.op("read", key, lambda: dict(zip(("data", "version"), read(self.k, key)[1:])))
            if r:
                self.last_ok_call = r["call_ns"]
            time.sleep(self.rng.uniform(0.05, 0.2))

    def finish(self, timeout_s=OP_TIMEOUT_S * 3):
        self.stop.set()
        if self.ident is not None:
            self.join(timeout_s)
        self.proxies.set_cut([])
        try:
            self.k.stop()
            self.k.close()
            # The session may have ended earlier without this client
            # hearing of it: its last acknowledged operation bounds it.
            self.expired("session closed")
        except Exception:  # noqa: BLE001 - the session's end is unknown
            pass
        self.history.write()
        self.proxies.close()


def ephemeral_owner(run, process, published):
    """An owner behind client proxies of its own (one per server)."""
    proxies = ClientProxies()
    ports = free_ports(len(run.cluster.ids))
    for port, sid in zip(ports, run.cluster.ids):
        proxies.add(sid, port, run.cluster.client_ports[sid])
    hosts = ",".join("127.0.0.1:%d" % p for p in ports)
    try:
        owner = EphemeralOwner(run, process, hosts, proxies, published)
    except Exception:
        proxies.close()
        raise
    owner.proxies_ids = list(run.cluster.ids)
    return owner


class EphemeralObserver(Client):
    """Reads the owners' ephemerals (sync + getData) from its own session."""

    def __init__(self, run, process, hosts, published):
        super().__init__(run, process, hosts, run.session_timeout_s)
        self.published = published

    def run(self):
        while not self.stop.is_set():
            if self.published:
                key = self.rng.choice(self.published[-8:])
                self.op("read", key, lambda: dict(zip(("data", "version"),
                                                      read(self.k, key)[1:])))
            time.sleep(self.rng.uniform(0.01, 0.05))

    def read_all(self, keys):
        for key in keys:
            self.op("read", key, lambda: dict(zip(("data", "version"), read(self.k, key)[1:])),
                    note="final")


class LeaderPoller(threading.Thread):
    """Samples every server's (term, leader) from its status endpoint."""

    def __init__(self, cluster):
        super().__init__(daemon=True)
        self.cluster = cluster
        self.samples = []  # (ns, server, term, leader)
        self.stop = threading.Event()

    def run(self):
        while not self.stop.wait(POLL_S):
            for sid in list(self.cluster.live()):
                try:
                    s = http_json(self.cluster.http_ports[sid], "/v1/cluster/status", 0.5)
                except (OSError, ValueError):
                    continue
                self.samples.append((now_ns(), sid, s.get("term"), s.get("leader_id")))

    def finish(self):
        self.stop.set()
        self.join(5)

    def check(self):
        """Anomalies: terms in which the servers named two leaders."""
        leaders = {}
        for _, sid, term, leader in self.samples:
            if term is None or not leader:
                continue
            leaders.setdefault(term, {}).setdefault(leader, set()).add(sid)
        return [{"check": "one-leader-per-term", "key": "term %d" % t,
                 "detail": "leaders %s (reported by %s)" % (
                     sorted(ls), {l: sorted(s) for l, s in ls.items()})}
                for t, ls in sorted(leaders.items()) if len(ls) > 1]


def libcoord(run, mode, process, hosts, duration_ms, threads=1, extra=()):
    """Starts one coord-faults-workload process; returns its Popen."""
    binary = os.environ["COORD_FAULTS_WORKLOAD"]
    out = os.path.join(run.results, "history-%s.jsonl" % process)
    log = open(os.path.join(run.results, "%s.log" % process), "ab")
    try:
        return subprocess.Popen(
            [binary, "--servers", hosts, "--process", process, "--out", out, "--mode", mode,
             "--duration-ms", str(duration_ms), "--seed", str(run.seed), "--prefix", ROOT,
             "--threads", str(threads), "--keys", str(run.keys),
             "--session-timeout-ms", str(int(run.session_timeout_s * 1000)),
             "--request-timeout-ms", str(int(OP_TIMEOUT_S * 1000))] + list(extra),
            stdout=log, stderr=subprocess.STDOUT)
    finally:
        log.close()


# The command coord-elect runs while its candidate leads: it writes when it
# started and when it was told to stop (CLOCK_MONOTONIC ns).
LEADER_COMMAND = r"""
import os, signal, sys, time
f = open(sys.argv[1], "a", buffering=1)
def stop(*_):
    f.write("stop %d\n" % time.monotonic_ns())
    f.flush()
    os._exit(0)
signal.signal(signal.SIGTERM, stop)
f.write("start %d\n" % time.monotonic_ns())
f.flush()
while True:
    time.sleep(1)
"""
ELECTION_SESSION_TIMEOUT_MS = 2000


class Candidate:
    """One coord-elect process whose command records its leadership."""

    def __init__(self, run, name, hosts, path):
        self.name = name
        self.terms_file = os.path.join(run.results, "lead-%s.txt" % name)
        self.log_file = os.path.join(run.results, "%s.log" % name)
        self.lines = []  # (ns, line) of coord-elect's stdout
        self.proc = subprocess.Popen(
            [os.environ["COORD_ELECT_BINARY"], "-s", hosts, "--path", path, "--id", name,
             "--session-timeout-ms", str(ELECTION_SESSION_TIMEOUT_MS), "--suspension", "revoke",
             "--", "/usr/bin/python3", "-c", LEADER_COMMAND, self.terms_file],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        with open(self.log_file, "a") as log:
            for line in self.proc.stdout:
                self.lines.append((now_ns(), line.rstrip()))
                log.write("%d %s" % (self.lines[-1][0], line))

    def finish(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(5)

    def leaderships(self):
        """[(start_ns, stop_ns or None, token or None)]"""
        out = []
        try:
            with open(self.terms_file) as f:
                for line in f:
                    what, t = line.split()
                    if what == "start":
                        out.append([int(t), None, None])
                    elif out and out[-1][1] is None:
                        out[-1][1] = int(t)
        except OSError:
            pass
        elected = [(t, int(line.split("token=")[1].split()[0])) for t, line in self.lines
                   if "elected token=" in line]
        for term in out:
            # The token of the last election announced before the command
            # started (the line is read slightly after it is written).
            before = [tok for t, tok in elected if t <= term[0] + 50_000_000]
            term[2] = before[-1] if before else None
        return [tuple(t) for t in out]


def check_elections(candidates):
    """Never two leaders at once; each leadership's token above the last."""
    terms = sorted((start, stop, tok, c.name) for c in candidates
                   for start, stop, tok in c.leaderships())
    anomalies = []
    for a, b in zip(terms, terms[1:]):
        if a[1] is None or a[1] > b[0]:
            anomalies.append({"check": "election", "key": "two leaders",
                              "detail": "%s led from %d to %s and %s from %d" % (
                                  a[3], a[0], a[1], b[3], b[0])})
        if a[2] is not None and b[2] is not None and b[2] <= a[2]:
            anomalies.append({"check": "election", "key": "fencing token",
                              "detail": "%s led with token %d after %s with %d" % (
                                  b[3], b[2], a[3], a[2])})
    return anomalies, len(terms)
