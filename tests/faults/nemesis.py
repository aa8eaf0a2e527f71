"""The nemeses of the faults harness: what goes wrong during a run.

A nemesis acts in steps. Each step does one thing (cuts links, kills a
server, jumps a clock, ...) or undoes it, records what it did in the run's
timeline, and says how long to wait before the next step; heal() undoes
whatever is still in force when the run's fault window closes. Every
choice comes from the run's seeded random generator, so a run's schedule
of faults is reproducible from its seed (its timing, as any real
process's, is not).

The faults act on real processes only: partitions, one-way cuts, bridges,
flapping, delay and loss through the proxies of peer_proxy.py; kill -9,
SIGSTOP and wiping through the processes and their data directories;
clock jumps through the wall-clock seam of a test build
(--fault-clock-file); full disks on a small tmpfs; corrupt log records in
a stopped server's data directory; membership changes through the admin
API. A nemesis that this machine or this build cannot run says why in
unavailable(), and the run is skipped rather than passed.
"""

import json
import os
import subprocess
import time

from coordd_harness import ADMIN_AUTH, http_call

# A fault stays in force this long (s, drawn uniformly), then the cluster
# has a healed spell before the next one.
DWELL_S = (1.5, 3.0)
REST_S = (1.0, 2.0)
FLAP_S = (0.2, 0.8)  # both the fault and the rest of a flapping link
# A wall-clock jump: this many ms, forward or back.
CLOCK_JUMP_MS = (60_000, 2 * 3600_000)
ADMIN_TIMEOUT_S = 10.0
ADMIN_TRY_S = 1.0  # an admin call tried while other faults may hold the majority back
TMPFS_BYTES = 48 << 20  # a server's disk under disk-full
MARKER_APPLIED_S = 10.0  # for the follower to hold the record to damage
REFUSAL_S = 20.0  # for a server started on a damaged log to stop
READD_S = 20.0  # for a removed server to be added back


class Nemesis:
    name = ""
    heal_last = False  # healed after the other parts of a combined run

    def unavailable(self, run):
        """Why this nemesis cannot run here, or None."""
        return None

    def prepare(self, cluster):
        """Before the cluster starts: per-server flags, files, mounts."""

    def step(self, run):
        """One action; returns the seconds to wait before the next."""
        raise NotImplementedError

    def heal(self, run):
        """Undoes what is still in force."""

    def cleanup(self, run):
        """After the run, even a failed one."""


class Toggle(Nemesis):
    """A fault that is put in force, left for a dwell time, undone, and
    followed by a healed spell."""

    dwell_s = DWELL_S
    rest_s = REST_S

    def __init__(self):
        self.active = None

    def apply(self, run):
        """Puts the fault in force; returns what to record of it."""
        raise NotImplementedError

    def undo(self, run, what):
        raise NotImplementedError

    def step(self, run):
        if self.active is not None:
            self._lift(run)
            return run.rng.uniform(*self.rest_s)
        what = self.apply(run)
        self.active = what
        run.event(self.name, **what)
        return run.rng.uniform(*self.dwell_s)

    def _lift(self, run):
        what, self.active = self.active, None
        self.undo(run, what)
        run.event("heal", fault=self.name)

    def heal(self, run):
        if self.active is not None:
            self._lift(run)


def leader_or_any(run):
    """The leader's id when there is one, else any live server's."""
    sid = run.cluster.leader()
    return sid if sid is not None else run.rng.choice(run.cluster.live() or run.cluster.ids)


def victim(run):
    """The leader half the time, else a random server."""
    ids = run.cluster.ids
    return leader_or_any(run) if run.rng.random() < 0.5 else run.rng.choice(ids)


# ---- the network ------------------------------------------------------------

class PartitionHalves(Toggle):
    name = "partition-halves"

    def apply(self, run):
        ids = list(run.cluster.ids)
        run.rng.shuffle(ids)
        minority = sorted(ids[:run.rng.randint(1, len(ids) // 2)])
        majority = sorted(ids[len(minority):])
        run.cluster.proxies.partition(minority, majority)
        return {"minority": minority, "majority": majority}

    def undo(self, run, what):
        run.cluster.proxies.heal()


class IsolateLeader(Toggle):
    name = "partition-leader"

    def apply(self, run):
        sid = leader_or_any(run)
        run.cluster.proxies.isolate(sid, run.cluster.ids)
        return {"isolated": sid}

    def undo(self, run, what):
        run.cluster.proxies.heal()


class Bridge(Toggle):
    """Two sides that cannot reach each other, and one server that reaches
    both: with Raft's pre-vote and check-quorum the bridge must not let
    two leaders coexist or a leader flap for ever."""

    name = "partition-bridge"

    def apply(self, run):
        ids = list(run.cluster.ids)
        run.rng.shuffle(ids)
        bridge, rest = ids[0], ids[1:]
        a, b = sorted(rest[:len(rest) // 2]), sorted(rest[len(rest) // 2:])
        run.cluster.proxies.cut_pairs([(x, y) for x in a for y in b])
        return {"bridge": bridge, "sides": [a, b]}

    def undo(self, run, what):
        run.cluster.proxies.heal()


class OneWay(Toggle):
    """One server stops being heard by the others while it still hears
    them, or the other way round."""

    name = "partition-one-way"

    def apply(self, run):
        sid = victim(run)
        others = [o for o in run.cluster.ids if o != sid]
        if run.rng.random() < 0.5:
            run.cluster.proxies.drop_one_way([sid], others)
            return {"mute": sid}
        run.cluster.proxies.drop_one_way(others, [sid])
        return {"deaf": sid}

    def undo(self, run, what):
        run.cluster.proxies.heal()


class Flapping(PartitionHalves):
    name = "partition-flapping"
    dwell_s = FLAP_S
    rest_s = FLAP_S


class SlowLinks(Toggle):
    name = "delay-loss"

    def apply(self, run):
        what = {"base_ms": run.rng.randint(5, 60), "jitter_ms": run.rng.randint(0, 40),
                "loss": round(run.rng.uniform(0.0, 0.15), 3)}
        run.cluster.proxies.delay(what["base_ms"], what["jitter_ms"], what["loss"])
        return what

    def undo(self, run, what):
        run.cluster.proxies.delay(0)


class Delay(Toggle):
    """Every peer link slow (tens of ms each way) but not lossy: followers
    lag the leader by a link's delay without losing it."""

    name = "delay"

    def apply(self, run):
        what = {"base_ms": run.rng.randint(30, 80), "jitter_ms": run.rng.randint(0, 20)}
        run.cluster.proxies.delay(what["base_ms"], what["jitter_ms"])
        return what

    def undo(self, run, what):
        run.cluster.proxies.delay(0)


class ClientCut(Toggle):
    """Clients lose every server but a majority, a minority or one: their
    sessions move to the servers they still reach."""

    name = "partition-clients"

    def apply(self, run):
        ids = list(run.cluster.ids)
        run.rng.shuffle(ids)
        cut = sorted(ids[:run.rng.randint(1, len(ids) - 1)])
        run.cluster.clients.set_cut(cut)
        return {"cut": cut}

    def undo(self, run, what):
        run.cluster.clients.set_cut([])


# ---- the processes ------------------------------------------------------------

class Kill(Toggle):
    name = "kill"

    def apply(self, run):
        sid = victim(run)
        run.cluster.kill(sid)
        return {"killed": sid}

    def undo(self, run, what):
        run.cluster.restart(what["killed"])


class Pause(Toggle):
    """SIGSTOP for longer than the election timeout and the clients'
    session timeout: a paused leader wakes up deposed, its clients'
    sessions moved or expired."""

    name = "pause"

    def apply(self, run):
        sid = victim(run)
        run.cluster.sigstop(sid)
        return {"paused": sid}

    def step(self, run):
        wait = super().step(run)
        if self.active is not None:
            return run.session_timeout_s + run.rng.uniform(0.2, 1.0)
        return wait

    def undo(self, run, what):
        run.cluster.sigcont(what["paused"])


class Wipe(Toggle):
    """A follower loses its data directory and comes back empty with the
    same id: it catches up from the leader's log or snapshot."""

    name = "wipe"

    def apply(self, run):
        leader = leader_or_any(run)
        sid = run.rng.choice([s for s in run.cluster.ids if s != leader])
        run.cluster.wipe(sid)
        run.cluster.restart(sid)
        return {"wiped": sid}

    def undo(self, run, what):
        pass


def has_seam(flag):
    """Whether this coordd build has a fault seam (test builds only)."""
    binary = os.environ.get("COORDD_BINARY", "coordd")
    try:
        out = subprocess.run([binary, "--help"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return flag in out.stdout


class ClockJump(Toggle):
    """Wall-clock jumps of an hour or two, forward and back, on one or more
    servers (the leader half the time). Timeouts run on the monotonic
    clock, so sessions, elections and leases must not notice; znode times
    follow the leader's wall clock, as ZooKeeper's do."""

    name = "clock"

    def unavailable(self, run):
        if not has_seam("--fault-clock-file"):
            return "this coordd has no --fault-clock-file (a release build)"
        return None

    def prepare(self, cluster):
        self.files = {}
        for sid in cluster.ids:
            self.files[sid] = os.path.join(cluster.root, "clock-%d" % sid)
            self._write(sid, 0)
            cluster.fault_args.setdefault(sid, []).extend(["--fault-clock-file", self.files[sid]])

    def _write(self, sid, offset_ms):
        tmp = self.files[sid] + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % offset_ms)
        os.replace(tmp, self.files[sid])

    def apply(self, run):
        ids = [victim(run)] + [s for s in run.cluster.ids if run.rng.random() < 0.3]
        jumps = {}
        for sid in sorted(set(ids)):
            jumps[sid] = run.rng.choice((-1, 1)) * run.rng.randint(*CLOCK_JUMP_MS)
            self._write(sid, jumps[sid])
        return {"offset_ms": {str(k): v for k, v in jumps.items()}}

    def undo(self, run, what):
        for sid in what["offset_ms"]:
            self._write(int(sid), 0)


class Membership(Toggle):
    """A follower is removed through the admin API, wiped, started again
    with --join and added back: the cluster runs with one voter fewer
    meanwhile, and the returning server catches up from nothing. The
    admin calls go to the other servers (one being removed cannot vouch
    for its own removal: it loses its leader as the change applies)."""

    name = "membership"
    dwell_s = (0.5, 1.5)
    heal_last = True  # with other faults healed first, the majority can add it back

    def __init__(self):
        super().__init__()
        self.pending = set()  # removed, not yet added back

    def _admin(self, run, method, path, body=None, avoid=None, timeout_s=ADMIN_TIMEOUT_S):
        for sid in run.cluster.live():
            if sid == avoid:
                continue
            try:
                status, reply = http_call(run.cluster.http_ports[sid], method, path, body,
                                          timeout_s, auth=ADMIN_AUTH)
            except OSError:
                continue
            if status < 500:
                return status, reply
        return None, "no server answered"

    def _member(self, run, sid, avoid, timeout_s=ADMIN_TIMEOUT_S):
        """Whether sid is a member as the leader knows it, or None when that
        cannot be told now. Only the leader is asked: a follower may not have
        applied a removal the leader has already answered for, and trusting
        it would leave the removed server out for good, restarted on its old
        data as if it still belonged."""
        leader = run.cluster.leader()
        if leader is None or leader == avoid:
            return None
        try:
            status, reply = http_call(run.cluster.http_ports[leader], "GET",
                                      "/v1/cluster/members", None, timeout_s)
        except OSError:
            return None
        if status != 200:
            return None
        return any(m.get("id") == sid for m in reply.get("members", []))

    def apply(self, run):
        leader = leader_or_any(run)
        sid = run.rng.choice([s for s in run.cluster.ids if s != leader and s not in self.pending])
        status, reply = self._admin(run, "DELETE", "/v1/cluster/members/%d" % sid, avoid=sid)
        return {"removed": sid, "status": status, "reply": str(reply)[:200]}

    def undo(self, run, what):
        # One try now; while other faults hold the majority back, the rest
        # waits for the heal rather than the other faults' schedule.
        self.pending.add(what["removed"])
        self._settle(run, 0.0, ADMIN_TRY_S)

    def heal(self, run):
        super().heal(run)
        self._settle(run, READD_S)

    def _settle(self, run, wait_s, timeout_s=ADMIN_TIMEOUT_S):
        """Brings every removed server back: wiped, started with --join and
        added, unless it is a member after all (a removal whose answer was
        lost)."""
        c = run.cluster
        deadline = time.monotonic() + wait_s
        for sid in sorted(self.pending):
            while True:
                member = self._member(run, sid, avoid=sid, timeout_s=timeout_s)
                if member:
                    self.pending.discard(sid)
                    break
                if member is False:
                    if sid not in c.joined:
                        c.wipe(sid)
                        c.joined.add(sid)
                        c.servers[sid] = c._make(sid)  # now with --join
                        c.restart(sid)
                    status, reply = self._admin(run, "POST", "/v1/cluster/members",
                                                c.member_body(sid), avoid=sid,
                                                timeout_s=timeout_s)
                    if status == 200:
                        run.event("membership-add", added=sid, reply=str(reply)[:200])
                        self.pending.discard(sid)
                        c.joined.discard(sid)
                        break
                if time.monotonic() >= deadline:
                    break
                time.sleep(0.2)


class DiskFullNemesis(Toggle):
    """A server's disk fills up (its data directory is a small tmpfs of its
    own; mounting needs root) and is freed again: it turns read-only, a
    leader among them stops leading, and it catches up once space is back.
    LMDB itself meets the full disk: no free-space reserve is kept."""

    name = "disk-full"

    def __init__(self):
        super().__init__()
        self.disks = {}

    def unavailable(self, run):
        import tempfile
        from disk import DiskFull, Unavailable
        probe = DiskFull(tempfile.mkdtemp(prefix="coordd-tmpfs-probe-"), 1 << 20)
        try:
            probe.mount()
        except Unavailable as e:
            return str(e)
        finally:
            probe.cleanup()
            if os.path.isdir(probe.path):
                os.rmdir(probe.path)
        return None

    def prepare(self, cluster):
        from disk import DiskFull
        for sid in cluster.ids:
            path = os.path.join(cluster.root, "server-%d" % sid, "data")
            self.disks[sid] = DiskFull(path, TMPFS_BYTES).mount()
            cluster.fault_args.setdefault(sid, []).extend(["--log-disk-reserve-bytes", "0"])

    def apply(self, run):
        sid = victim(run)
        return {"filled": sid, "free_bytes": self.disks[sid].fill()}

    def undo(self, run, what):
        self.disks[what["filled"]].free()

    def cleanup(self, run):
        for disk in self.disks.values():
            disk.cleanup()


class CorruptLog(Toggle):
    """A follower is stopped, one record of its log is damaged (the one
    carrying a marker written for it), and it is started again: it must
    refuse to start, saying so in one line, rather than apply, serve or
    send the record. It is then wiped and catches up from the leader."""

    name = "corrupt-log"
    dwell_s = (0.5, 1.0)

    def __init__(self):
        super().__init__()
        self.count = 0

    def _write_marker(self, run, marker):
        """Creates a znode holding `marker`; returns its zxid."""
        from workloads import OP_TIMEOUT_S, close_quietly, kazoo_client
        c = run.cluster
        k = kazoo_client(",".join("127.0.0.1:%d" % c.client_ports[s] for s in c.live()),
                         run.session_timeout_s)
        try:
            path = "/faults/marker-%d" % self.count
            k.create_async(path, marker.encode()).get(timeout=OP_TIMEOUT_S)
            return k.exists_async(path).get(timeout=OP_TIMEOUT_S).czxid
        finally:
            close_quietly(k)

    def apply(self, run):
        from corrupt import MARKER, corrupt_log_record
        c = run.cluster
        leader = leader_or_any(run)
        sid = run.rng.choice([s for s in c.ids if s != leader])
        self.count += 1
        marker = "%s-%d-%d" % (MARKER.decode(), run.seed, self.count)
        zxid = self._write_marker(run, marker)
        deadline = time.monotonic() + MARKER_APPLIED_S
        while time.monotonic() < deadline and (c.zxid(sid) or 0) < zxid:
            time.sleep(0.05)
        c.stop(sid)
        what = corrupt_log_record(os.path.join(c.servers[sid].data_dir, "data"), run.rng, marker)
        since = len(c.log(sid))
        c.servers[sid].spawn()  # still counted as down: it is expected to exit
        try:
            rc = c.servers[sid].proc.wait(REFUSAL_S)
        except subprocess.TimeoutExpired:
            rc = None
        out = c.log(sid)[since:]  # what this start logged
        lines = [line for line in out.splitlines() if "is damaged" in line]
        if rc is None or rc == 0 or len(lines) != 1:
            run.anomaly("corrupt-log", "server %d" % sid,
                        "started on a damaged log record (exit %s, %d refusal lines):\n%s\n%s" % (
                            rc, len(lines), what, out[-3000:]))
        c.wipe(sid)
        c.restart(sid)
        return {"corrupted": sid, "exit": rc, "damage": what[:300]}

    def undo(self, run, what):
        pass


NEMESES = {
    n.name: n for n in (PartitionHalves, IsolateLeader, Bridge, OneWay, Flapping, SlowLinks,
                        Delay, ClientCut, Kill, Pause, Wipe, ClockJump, Membership, DiskFullNemesis,
                        CorruptLog)
}


def make(name):
    return NEMESES[name]()


def names():
    return sorted(NEMESES)


def as_json(what):
    return json.dumps(what, sort_keys=True)
