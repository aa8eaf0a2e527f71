"""Faults runs: a real coordd cluster, real clients, a nemesis, and checks
of everything the clients saw.

One run (a ctest entry per nemesis runs this with a short duration):

  run.py --nemesis NAME[,NAME...] [--seed N] [--duration-s S] [--servers 3|5]
         [--results DIR] [--plant-bug stale-sync --expect anomalies]

The long mode, by hand (hours; prints the summary table at the end and
keeps it up to date in DIR/summary.md as it goes):

  run.py --long --hours H [--duration-s S] [--results DIR]

A run starts a cluster whose every peer and client link goes through a
proxy (proxied_cluster.py), starts the workloads (workloads.py: libcoord
and kazoo clients recording histories), lets the nemesis act for the
fault window (nemesis.py), heals everything, lets the workloads run on
for a while, reads the final state from every server, and then checks:

- coord-faults-check over every history: linearizability per register
  (ephemerals included, whose session ends are recorded as deletes),
  sequential creates, watches;
- one leader per term, as the servers reported it while the run went;
- coord-elect: never two commands leading at once, and each leadership's
  fencing token above the one before;
- no server crashed or reported a sanitizer error; the cluster made
  progress after the heal.

Everything lands in DIR/NEMESIS-SEED/: the histories, the nemesis
timeline, the servers' logs, check.json and report.md (the verdict, the
anomalies, the timeline and the longest unavailability per fault). A
failing run is re-run with the seed the report names: the same faults in
the same order, on the same servers, with the same workload choices.

Exit status: 0 when the run passed (with --expect anomalies: when the
checks found a linearizability anomaly in one of --attempts runs), 1
otherwise, 77 when the nemesis
cannot run here (the reason is printed).
"""

import argparse
import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "integration"))

import nemesis as nem  # noqa: E402
import workloads as wl  # noqa: E402
from proxied_cluster import ProxiedCluster  # noqa: E402

SKIP_EXIT_CODE = 77
WARMUP_S = 1.0  # workloads run before the first fault
AFTER_HEAL_S = 2.0  # and after the last heal, to show the cluster recovered
RECOVER_S = 30.0  # for a leader and for the servers to agree, after the heal
CHECK_TIMEOUT_S = 300.0  # coord-faults-check on one run's histories
WORKLOAD_GRACE_S = 20.0  # a libcoord workload past its duration is killed after this
SESSION_TIMEOUT_S = 3.0  # the workloads' sessions (the ephemeral owners' are shorter)
MIN_SESSION_TIMEOUT_MS = 500
KEYS = 4  # registers shared by every register workload
LONG_DURATION_S = 30.0
WATCHED = wl.ROOT + "/w/0"  # the node the watch workload bumps and follows
ELECTION_PATH = wl.ROOT + "/election"
SANITIZER_RE = re.compile(r"ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer|"
                          r"ThreadSanitizer|assertion failed|COORD_ASSERT", re.I)


class Run:
    def __init__(self, nemesis_names, seed, duration_s, servers, results, plant_bug=None,
                 keys=KEYS):
        self.names = nemesis_names
        self.seed = seed
        self.rng = random.Random(seed)
        self.duration_s = duration_s
        self.servers = servers
        self.results = results
        self.plant_bug = plant_bug
        self.session_timeout_s = SESSION_TIMEOUT_S
        self.keys = keys
        self.timeline = []
        self.cluster = None
        self.anomalies = []
        self.candidates = []
        self.t0 = time.monotonic_ns()

    def event(self, kind, **fields):
        rec = dict(t_ns=time.monotonic_ns(), kind=kind, **fields)
        self.timeline.append(rec)
        print("%8.3f s  %s %s" % ((rec["t_ns"] - self.t0) / 1e9, kind,
                                  nem.as_json(fields) if fields else ""), flush=True)

    def anomaly(self, check, key, detail):
        self.anomalies.append({"check": check, "key": key, "detail": detail})


class Combined(nem.Nemesis):
    """Several nemeses at once, each on its own schedule."""

    def __init__(self, parts):
        self.parts = parts
        self.name = "+".join(p.name for p in parts)
        self.due = None

    def unavailable(self, run):
        for p in self.parts:
            why = p.unavailable(run)
            if why:
                return why
        return None

    def prepare(self, cluster):
        for p in self.parts:
            p.prepare(cluster)

    def step(self, run):
        now = time.monotonic()
        if self.due is None:
            self.due = [now + run.rng.uniform(0, 1) for _ in self.parts]
        i = min(range(len(self.parts)), key=lambda j: self.due[j])
        if self.due[i] <= now:
            self.due[i] = now + self.parts[i].step(run)
        return max(0.0, min(self.due) - time.monotonic())

    def heal(self, run):
        for p in sorted(self.parts, key=lambda p: p.heal_last):
            p.heal(run)

    def cleanup(self, run):
        for p in self.parts:
            p.cleanup(run)


def make_nemesis(names):
    parts = [nem.make(n) for n in names]
    return parts[0] if len(parts) == 1 else Combined(parts)


def bounded_wait(what, predicate, timeout_s, interval_s=0.1):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if predicate():
                return True
        except (OSError, ValueError):
            pass
        time.sleep(interval_s)
    print("gave up waiting: %s" % what, flush=True)
    return False


def agreed(cluster):
    zxids = set()
    for sid in cluster.ids:
        if not cluster.running(sid):
            continue
        zxids.add(cluster.zxid(sid))
    return len(zxids) == 1 and None not in zxids


def setup_tree(run, hosts):
    """The parents every workload uses, and the watched node, whose create
    enters the history (the register checker starts every key absent)."""
    k = wl.kazoo_client(hosts, SESSION_TIMEOUT_S)
    h = wl.History(os.path.join(run.results, "history-setup.jsonl"))
    try:
        for p in ("r", "seq", "e", "w"):
            wl.ensure(k, "%s/%s" % (wl.ROOT, p))
        call = wl.now_ns()
        k.create_async(WATCHED, b"init").get(timeout=wl.OP_TIMEOUT_S)
        h.add(process="setup", f="create", key=WATCHED, data="init", outcome="ok",
              call_ns=call, ret_ns=wl.now_ns())
    finally:
        wl.close_quietly(k)
        h.write()


def final_version(hosts):
    k = wl.kazoo_client(hosts, SESSION_TIMEOUT_S)
    try:
        return wl.read(k, WATCHED)[2]
    finally:
        wl.close_quietly(k)


def start_workloads(run, hosts, window_s):
    procs = [
        wl.libcoord(run, "registers", "lc-reg", hosts, int(window_s * 1000), threads=3),
        wl.libcoord(run, "sequential", "lc-seq", hosts, int(window_s * 1000), threads=2),
    ]
    published = []
    clients = {
        "registers": [wl.KazooRegisters(run, "kz-reg-%d" % i, hosts, run.keys)
                      for i in range(2)],
        "writer": [wl.WatchWriter(run, "kz-wwriter", hosts, WATCHED)],
        "watchers": [wl.Watcher(run, "kz-watch-%d" % i, hosts, WATCHED) for i in range(2)],
        "owners": [wl.ephemeral_owner(run, "kz-eph-%d" % i, published) for i in range(2)],
        "observers": [wl.EphemeralObserver(run, "kz-ephobs", hosts, published)],
    }
    run.candidates = [wl.Candidate(run, "elect-%d" % i, hosts, ELECTION_PATH) for i in range(3)]
    for group in clients.values():
        for t in group:
            t.start()
    return procs, clients, published


def final_reads(run, published):
    """Every server's own view, after the heal: the registers and the
    sequential parent through libcoord, the ephemerals through kazoo."""
    c = run.cluster
    procs = []
    for sid in c.ids:
        if not c.running(sid) or sid in c.joined and sid not in c.live():
            continue
        host = "127.0.0.1:%d" % c.client_ports[sid]
        procs.append(wl.libcoord(run, "final", "final-lc-%d" % sid, host, 20000))
        try:
            obs = wl.EphemeralObserver(run, "final-kz-%d" % sid, host, [])
            obs.read_all(list(published))
            obs.finish()
        except Exception as e:  # noqa: BLE001 - a server that cannot be read
            run.anomaly("final-read", "server %d" % sid, "kazoo could not read: %r" % e)
    for p in procs:
        try:
            p.wait(WORKLOAD_GRACE_S + 20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def longest_gaps(run, fault_start, fault_end):
    """The longest time without any acknowledged register operation, in
    the whole fault window and per fault the nemesis put in force."""
    done = []
    for name in os.listdir(run.results):
        if not name.startswith("history-") or name.startswith("history-final"):
            continue
        with open(os.path.join(run.results, name)) as f:
            for line in f:
                try:
                    r = json.loads(line)
                except ValueError:
                    continue
                if r.get("f") in ("create", "set", "delete", "read") and \
                        r.get("outcome") in ("ok", "no_node", "node_exists", "bad_version") and \
                        r.get("ret_ns"):
                    done.append(r["ret_ns"])
    done.sort()

    def gap(a, b):
        points = [a] + [t for t in done if a < t < b] + [b]
        return max((y - x for x, y in zip(points, points[1:])), default=0) / 1e6

    per = {}
    opened = None
    for e in run.timeline:
        if e["kind"] in ("heal",) and opened is not None:
            per.setdefault(opened["kind"], []).append(gap(opened["t_ns"], e["t_ns"]))
            opened = None
        elif e["kind"] not in ("start", "faults-end", "healed", "recovered", "heal",
                               "ephemeral-owner-cut", "membership-add"):
            opened = e
    whole = gap(fault_start, fault_end) if fault_end > fault_start else 0
    return whole, {k: max(v) for k, v in per.items()}


def scan_logs(run):
    for sid in run.cluster.servers:
        try:
            text = run.cluster.log(sid)
        except OSError:
            continue
        m = SANITIZER_RE.search(text)
        if m:
            start = max(0, m.start() - 200)
            run.anomaly("server-log", "server %d" % sid, text[start:start + 1500])


def run_checker(run):
    files = sorted(os.path.join(run.results, n) for n in os.listdir(run.results)
                   if n.startswith("history-") and n.endswith(".jsonl"))
    out = os.path.join(run.results, "check.json")
    with open(os.path.join(run.results, "check.txt"), "w") as log:
        try:
            rc = subprocess.run([os.environ["COORD_FAULTS_CHECK"], "--json", out] + files,
                                stdout=log, stderr=subprocess.STDOUT,
                                timeout=CHECK_TIMEOUT_S).returncode
        except subprocess.TimeoutExpired:
            rc = None
    try:
        with open(out) as f:
            verdict = json.load(f)
    except (OSError, ValueError):
        verdict = {"verdict": "unknown", "ops": 0, "anomalies": []}
    if rc is None:
        verdict["verdict"] = "unknown"
        verdict.setdefault("anomalies", []).append(
            {"check": "checker", "key": "", "detail": "timed out after %d s" % CHECK_TIMEOUT_S})
    elif rc == 2:
        verdict["verdict"] = "unknown"
        verdict.setdefault("anomalies", []).append(
            {"check": "checker", "key": "", "detail": "could not read the histories (exit 2)"})
    return verdict


def run_once(names, seed, duration_s, servers, results_root, plant_bug=None, keys=KEYS):
    """One run; returns its summary dict (also in RESULTS/summary.json)."""
    tag = "%s-%d" % ("+".join(names), seed)
    results = os.path.join(results_root, tag)
    shutil.rmtree(results, ignore_errors=True)
    os.makedirs(results)
    run = Run(names, seed, duration_s, servers, results, plant_bug, keys)
    nemesis = make_nemesis(names)
    summary = {"nemesis": "+".join(names), "seed": seed, "servers": servers,
               "duration_s": duration_s, "results": results, "plant_bug": plant_bug,
               "keys": keys}
    why = nemesis.unavailable(run)
    if plant_bug and not nem.has_seam("--fault-plant-bug"):
        why = "this coordd has no --fault-plant-bug (a release build)"
    if why:
        summary.update(verdict="skipped", reason=why)
        return summary
    # Sessions shorter than the servers' default minimum: expiries happen
    # within a run.
    extra = ["--min-session-timeout-ms", str(MIN_SESSION_TIMEOUT_MS)]
    if plant_bug:
        extra += ["--fault-plant-bug", plant_bug]
    run.cluster = c = ProxiedCluster(servers, extra_args=extra)
    clients = {}
    procs = []
    poller = None
    try:
        nemesis.prepare(c)
        c.start()
        c.wait_leader(RECOVER_S)
        hosts = c.proxied_hosts()
        setup_tree(run, hosts)
        poller = wl.LeaderPoller(c)
        poller.start()
        window_s = WARMUP_S + duration_s + AFTER_HEAL_S
        procs, clients, published = start_workloads(run, hosts, window_s)
        time.sleep(WARMUP_S)
        run.event("start", seed=seed, servers=servers, nemesis=nemesis.name)
        fault_start = time.monotonic_ns()
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            wait = nemesis.step(run)
            time.sleep(max(0.0, min(wait, end - time.monotonic())))
        nemesis.heal(run)
        run.event("faults-end")
        # Whatever a nemesis left behind, the cluster is whole again.
        c.proxies.heal()
        c.proxies.delay(0)
        c.clients.set_cut([])
        for sid in list(c.ids):
            c.sigcont(sid)
            if not c.running(sid):
                c.restart(sid)
        heal_ns = time.monotonic_ns()
        recovered = bounded_wait("a leader after the heal", lambda: c.leader() is not None,
                                 RECOVER_S)
        run.event("recovered" if recovered else "not-recovered")
        fault_end = time.monotonic_ns()
        summary["recovery_ms"] = round((fault_end - heal_ns) / 1e6, 1)
        if not recovered:
            run.anomaly("availability", "", "no leader %d s after the heal" % RECOVER_S)
        time.sleep(AFTER_HEAL_S)
        # The workloads end: kazoo clients now, libcoord at its deadline.
        for name in ("registers", "writer", "observers", "owners"):
            for t in clients[name]:
                t.finish()
        for p in procs:
            try:
                p.wait(max(1.0, WARMUP_S + duration_s + AFTER_HEAL_S) + WORKLOAD_GRACE_S)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
                run.anomaly("workload", "", "a libcoord workload overran its duration")
        # Every watcher reaches the last version without polling.
        final = final_version(hosts)
        watchers = clients["watchers"]
        bounded_wait("the watchers reach version %d" % final,
                     lambda: all(w.last >= final for w in watchers), wl.WATCH_REACH_S)
        for w in watchers:
            w.done(final)
            w.finish()
        if not bounded_wait("the servers agree", lambda: agreed(c), RECOVER_S):
            run.anomaly("convergence", "", "the servers' zxids differ %d s after the heal: %s" % (
                RECOVER_S, {sid: c.zxid(sid) for sid in c.ids if c.running(sid)}))
        for cand in run.candidates:
            cand.finish()
        elections, summary["leaderships"] = wl.check_elections(run.candidates)
        run.anomalies.extend(elections)
        final_reads(run, published)
        poller.finish()
        run.anomalies.extend(poller.check())
        crashed = c.crashed()
        if crashed:
            run.anomaly("crash", str(crashed), "\n".join(c.log(s)[-2000:] for s in crashed))
        scan_logs(run)
        verdict = run_checker(run)
        whole, per = longest_gaps(run, fault_start, fault_end)
        summary.update(ops=verdict.get("ops", 0), worst_unavailability_ms=round(whole, 1),
                       unavailability_ms={k: round(v, 1) for k, v in per.items()})
        anomalies = list(verdict.get("anomalies", [])) + run.anomalies
        summary["anomalies"] = anomalies
        summary["linearizability_anomalies"] = sum(
            1 for a in verdict.get("anomalies", []) if a.get("check") == "linearizability")
        if anomalies:
            summary["verdict"] = "anomalies"
        elif verdict.get("verdict") != "ok":
            summary["verdict"] = "unknown"
        else:
            summary["verdict"] = "ok"
    except Exception as e:  # noqa: BLE001 - a run that breaks is a failed run, reported
        summary["verdict"] = "error"
        summary["anomalies"] = run.anomalies + [{"check": "harness", "key": "",
                                                 "detail": "%s: %s" % (type(e).__name__, e)}]
        import traceback
        traceback.print_exc()
    finally:
        for group in clients.values():
            for t in group:
                if t.is_alive():
                    t.finish(1.0)
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        for cand in run.candidates:
            cand.finish()
        if poller is not None:
            poller.finish()
        try:
            c.kill_all()
            for sid in list(c.servers):
                try:
                    shutil.copy(c.servers[sid].log_path,
                                os.path.join(results, "server-%d.log" % sid))
                except OSError:
                    pass
            nemesis.cleanup(run)  # after the kills: mounts are let go
        finally:
            c.cleanup()
    write_report(run, summary)
    return summary


def write_report(run, summary):
    with open(os.path.join(run.results, "timeline.jsonl"), "w") as f:
        for e in run.timeline:
            f.write(json.dumps(e, sort_keys=True) + "\n")
    with open(os.path.join(run.results, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2, sort_keys=True)
    lines = ["# Faults run %s, seed %d" % (summary["nemesis"], summary["seed"]), "",
             "- verdict: **%s**" % summary["verdict"],
             "- servers: %d; fault window: %.1f s" % (summary["servers"], summary["duration_s"]),
             "- operations checked: %s" % summary.get("ops", 0),
             "- longest unavailability: %s ms (per fault: %s)" % (
                 summary.get("worst_unavailability_ms"),
                 json.dumps(summary.get("unavailability_ms", {}), sort_keys=True)),
             "- recovery after the heal: %s ms" % summary.get("recovery_ms"),
             "- reproduce: `tests/faults/run.py --nemesis %s --seed %d --duration-s %g "
             "--servers %d --keys %d%s`" % (summary["nemesis"].replace("+", ","), summary["seed"],
                                            summary["duration_s"], summary["servers"],
                                            summary["keys"], " --plant-bug " + summary["plant_bug"]
                                            if summary.get("plant_bug") else ""),
             ""]
    if summary.get("reason"):
        lines += ["Skipped: %s" % summary["reason"], ""]
    lines += ["## Anomalies", ""]
    for a in summary.get("anomalies", []) or []:
        lines += ["- %s %s:" % (a.get("check"), a.get("key")), "", "```",
                  str(a.get("detail"))[:4000], "```", ""]
    if not summary.get("anomalies"):
        lines += ["none", ""]
    lines += ["## Timeline", ""]
    for e in run.timeline:
        fields = {k: v for k, v in e.items() if k not in ("t_ns", "kind")}
        lines.append("- %8.3f s %s %s" % ((e["t_ns"] - run.t0) / 1e9, e["kind"],
                                         nem.as_json(fields) if fields else ""))
    with open(os.path.join(run.results, "report.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


def print_summary(s):
    print("faults run %s seed %d: %s; %s ops checked; longest unavailability %s ms; results in %s"
          % (s["nemesis"], s["seed"], s["verdict"], s.get("ops", 0),
             s.get("worst_unavailability_ms"), s["results"]), flush=True)
    for a in (s.get("anomalies") or [])[:10]:
        print("  anomaly %s %s: %s" % (a.get("check"), a.get("key"),
                                      str(a.get("detail"))[:2000]), flush=True)
    if s.get("reason"):
        print("SKIPPED: %s" % s["reason"])


def table(runs):
    rows = {}
    for s in runs:
        r = rows.setdefault(s["nemesis"], {"runs": 0, "ops": 0, "anomalies": 0, "worst": 0.0,
                                           "failed": [], "skipped": 0})
        if s["verdict"] == "skipped":
            r["skipped"] += 1
            continue
        r["runs"] += 1
        r["ops"] += s.get("ops", 0) or 0
        r["anomalies"] += len(s.get("anomalies") or [])
        r["worst"] = max(r["worst"], s.get("worst_unavailability_ms") or 0.0)
        if s["verdict"] != "ok":
            r["failed"].append("%d (%s)" % (s["seed"], s["verdict"]))
    out = ["| nemesis | runs | operations checked | anomalies | worst unavailability (ms) | "
           "failed runs (seed) |", "|---|---|---|---|---|---|"]
    total = {"runs": 0, "ops": 0, "anomalies": 0, "worst": 0.0}
    for name in sorted(rows):
        r = rows[name]
        out.append("| %s | %d | %d | %d | %.0f | %s |" % (
            name, r["runs"], r["ops"], r["anomalies"], r["worst"],
            ", ".join(r["failed"]) or ("skipped" if r["skipped"] and not r["runs"] else "")))
        for k in ("runs", "ops", "anomalies"):
            total[k] += r[k]
        total["worst"] = max(total["worst"], r["worst"])
    out.append("| **all** | %d | %d | %d | %.0f | |" % (total["runs"], total["ops"],
                                                      total["anomalies"], total["worst"]))
    return "\n".join(out)


def long_mode(args):
    deadline = time.monotonic() + args.hours * 3600
    rng = random.Random(args.seed)
    runs = []
    order = []
    while time.monotonic() < deadline:
        if not order:
            order = nem.names()
            rng.shuffle(order)
            # A combined run now and then: two faults at once.
            order.append(",".join(rng.sample(
                [n for n in nem.names() if n not in ("disk-full", "corrupt-log")], 2)))
        names = order.pop().split(",")
        servers = args.servers or rng.choice((3, 5))
        s = run_once(names, rng.randrange(1, 2**31), args.duration_s, servers, args.results,
                     args.plant_bug, args.keys)
        print_summary(s)
        runs.append(s)
        if s["verdict"] == "ok":
            shutil.rmtree(s["results"], ignore_errors=True)  # keep what failed
        with open(os.path.join(args.results, "summary.md"), "w") as f:
            f.write(table(runs) + "\n")
    print(table(runs))
    return 0 if all(s["verdict"] in ("ok", "skipped") for s in runs) else 1


def main():
    # SIGTERM unwinds as Ctrl-C does, through every cleanup: no server,
    # client or mount outlives the run.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--nemesis", help="one or more of: " + ", ".join(nem.names()))
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--duration-s", type=float, default=None)
    ap.add_argument("--servers", type=int, default=None)
    ap.add_argument("--results", default=None)
    ap.add_argument("--keys", type=int, default=KEYS,
                    help="registers the workloads share (fewer: more contention)")
    ap.add_argument("--plant-bug", default=None)
    ap.add_argument("--expect", choices=("pass", "anomalies"), default="pass")
    ap.add_argument("--attempts", type=int, default=3,
                    help="with --expect anomalies: runs (seed, seed+1, ...) until one finds them")
    ap.add_argument("--long", action="store_true")
    ap.add_argument("--hours", type=float, default=1.0)
    args = ap.parse_args()
    for var in ("COORDD_BINARY", "COORD_FAULTS_WORKLOAD", "COORD_FAULTS_CHECK",
                "COORD_ELECT_BINARY"):
        if not os.environ.get(var):
            ap.error("%s must name the binary (ctest sets it)" % var)
    if wl.KAZOO_MISSING:
        print("SKIPPED: %s" % wl.KAZOO_MISSING)
        return SKIP_EXIT_CODE
    if args.seed is None:
        env_seed = os.environ.get("COORD_FAULTS_SEED")
        args.seed = int(env_seed) if env_seed else random.randrange(1, 2**31)
    if args.results is None:
        args.results = os.path.join(tempfile.gettempdir(), "coord-faults-results")
    os.makedirs(args.results, exist_ok=True)
    # kazoo narrates every reconnect; the histories say what matters.
    logging.basicConfig(filename=os.path.join(args.results, "kazoo.log"), level=logging.WARNING)
    if args.long:
        args.duration_s = args.duration_s or LONG_DURATION_S
        return long_mode(args)
    if not args.nemesis:
        ap.error("--nemesis or --long")
    names = args.nemesis.split(",")
    for n in names:
        if n not in nem.names():
            ap.error("unknown nemesis %s; known: %s" % (n, ", ".join(nem.names())))
    # A run finds a planted bug only if the faults and the clients meet it,
    # which is likely, not certain: a few runs with other seeds must.
    for attempt in range(args.attempts if args.expect == "anomalies" else 1):
        s = run_once(names, args.seed + attempt, args.duration_s or 10.0, args.servers or 3,
                     args.results, args.plant_bug, args.keys)
        print_summary(s)
        if s["verdict"] == "skipped":
            return SKIP_EXIT_CODE
        if args.expect == "pass":
            return 0 if s["verdict"] == "ok" else 1
        if s.get("linearizability_anomalies"):
            return 0
    return 1


if __name__ == "__main__":
    sys.exit(main())
