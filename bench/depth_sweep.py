#!/usr/bin/python3
"""depth_sweep.py: one coordd against one ZooKeeper 3.8 at several depths
of requests in flight, to tell a server bound by its CPU from one bound by
its pipeline's latency.

For each depth D: 32 sessions x D outstanding requests of --op (setData by
default, 100 bytes) from coord-bench, its 32 libcoord Clients on one shared
runtime (the leanest libcoord load, so that the load generator takes as
little of the machine as it can). Each row: ops/s, the server's CPU per
operation (utime + stime from /proc/PID/stat over the run), the load
generator's CPU per operation, and how many of the machine's cores the run
kept busy (from /proc/stat, whoever ran).

A server bound by its CPU keeps both cores busy, and more in flight gains
it little. One bound by latency leaves cores idle at a shallow depth and
gains with more in flight: its stages wait on each other (the disk, the
loop, the client's threads) and each trip through them carries more.

Each server is fresh and warmed up first (as in compare.py); with
--rounds N (odd) the systems alternate N times and each row is the median
round's run.

  /usr/bin/python3 bench/depth_sweep.py --build-dir build/release
  /usr/bin/python3 bench/depth_sweep.py --depths 8,16,32 --rounds 3 --json out.json
"""

import argparse
import os
import sys
import tempfile

import compare

SESSIONS = 32
MAX_CONNECTIONS = 1000  # coordd's per-address cap, over the sessions and probes


def sweep(s, bench, args):
    compare.warm_up(s, bench)
    res = {}
    for depth in args.depths:
        flags = {"mode": "ops", "op": args.op, "sessions": SESSIONS, "outstanding": depth,
                 "runtimes": 1}
        res[depth] = compare.run_bench(s, bench, flags, args.duration_s, "/sweep-%d" % depth)
        r = res[depth]
        compare.log("%s %s %dx%d: %.0f ops/s, server %.1f us/op, client %.1f us/op, "
                    "%.2f cores busy" % (s.name, args.op, SESSIONS, depth, r["ops_per_s"],
                                         r["server_cpu_us_per_op"], r["client_cpu_us_per_op"],
                                         r["cores_busy"]))
    return res


def table(results, args):
    names = list(results)
    head = "| depth | system | %s ops/s | ratio | server CPU/op | client CPU/op | cores busy |" % (
        args.op)
    lines = [head, "|---|---|---|---|---|---|---|"]
    for depth in args.depths:
        base = results["zookeeper"][depth]["ops_per_s"] if "zookeeper" in results else None
        for name in names:
            r = results[name][depth]
            ratio = "%.2f×" % (r["ops_per_s"] / base) if base and name != "zookeeper" else ""
            lines.append("| %d×%d | %s | %s | %s | %.1f µs | %.1f µs | %.2f |" % (
                SESSIONS, depth, name, format(round(r["ops_per_s"]), ","), ratio,
                r["server_cpu_us_per_op"], r["client_cpu_us_per_op"], r["cores_busy"]))
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--build-dir", default=os.path.join(compare.REPO, "build", "release"))
    p.add_argument("--depths", default="8,32", help="requests in flight per session, comma-separated")
    p.add_argument("--op", default="set", choices=("set", "get"))
    p.add_argument("--duration-s", type=float, default=4.0, help="seconds per depth")
    p.add_argument("--rounds", type=int, default=1, help="an odd number")
    p.add_argument("--no-zookeeper", action="store_true")
    p.add_argument("--json", help="also write the JSON result to this file")
    args = p.parse_args()
    args.depths = [int(d) for d in args.depths.split(",") if d]
    if not args.depths or min(args.depths) < 1:
        sys.exit("depth_sweep.py: --depths takes positive numbers")
    if args.rounds < 1 or args.rounds % 2 == 0:
        sys.exit("depth_sweep.py: --rounds takes an odd number")
    coordd, bench = compare.built_binaries(args.build_dir, "depth_sweep.py")
    with tempfile.TemporaryDirectory(prefix="coord-sweep-") as work:
        makers = {"coordd": lambda: compare.CoorddOne(coordd, MAX_CONNECTIONS)}
        if not args.no_zookeeper:
            if not os.access(compare.cc.JAVA, os.X_OK) or \
                    not all(os.path.exists(j) for j in compare.cc.ZK_JARS):
                sys.exit("depth_sweep.py: java or the zookeeper jars are missing "
                         "(apt install zookeeper), or --no-zookeeper")
            makers["zookeeper"] = lambda: compare.launch_heap_1g(
                compare.ZkOne(tempfile.mkdtemp(dir=work)))
        # Per depth, the median round's run, whole.
        results = compare.alternate(makers, lambda s: sweep(s, bench, args), args.rounds)
    compare.report(table(results, args),
                   {"bench": "depth_sweep", "machine": compare.machine(), "op": args.op,
                    "duration_s": args.duration_s, "rounds": args.rounds, "results": results},
                   args.json)


if __name__ == "__main__":
    main()
