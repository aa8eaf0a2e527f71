#!/usr/bin/env bash
# workload_matrix.sh: one coordd against one ZooKeeper 3.8 over a matrix of
# coord-bench workloads (sessions x outstanding requests, reads, writes,
# creates, a mix, watch latency, session churn), with the same client.
#
# Starts both on free 127.0.0.1 ports with their data in one temporary
# directory (same disk), runs every workload against each in one run, and
# prints every latency percentile with the ratio coordd / ZooKeeper. Kills
# every process it started, by pid, on exit. The headline table, with CPU
# and memory figures and 3-node clusters, is bench/compare.sh's.
#
#   bench/workload_matrix.sh                 # short defaults, a few seconds per workload
#   bench/workload_matrix.sh --duration-s 30 --build-dir build/release --keep-json out.jsonl
#
# Needs: a release build (coordd, coord-bench), java and Debian's
# zookeeper jars.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/.." && pwd)"
build_dir="$repo/build/release"
duration_s=3
payload_bytes=100
keys=1000
warmup_s=2  # of setData and of getData on each target, unmeasured
keep_json=""
only=""

usage() {
  sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
  cat <<EOF
Flags:
  --build-dir DIR      where coordd and coord-bench are built ($build_dir)
  --duration-s S       seconds per workload and target ($duration_s)
  --payload-bytes B    znode payload ($payload_bytes)
  --keys K             keys read and written ($keys)
  --only NAME[,NAME]   run only these workloads
  --keep-json FILE     also write every coord-bench JSON line to FILE
EOF
}

while [[ $# -gt 0 ]]; do
  case "$1" in
    --build-dir) build_dir="$2"; shift 2 ;;
    --duration-s) duration_s="$2"; shift 2 ;;
    --payload-bytes) payload_bytes="$2"; shift 2 ;;
    --keys) keys="$2"; shift 2 ;;
    --only) only="$2"; shift 2 ;;
    --keep-json) keep_json="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) echo "workload_matrix.sh: unknown flag $1" >&2; usage >&2; exit 2 ;;
  esac
done

coordd_bin="$build_dir/coordd/coordd"
bench_bin="$build_dir/bench/coord-bench/coord-bench"
for b in "$coordd_bin" "$bench_bin"; do
  [[ -x "$b" ]] || { echo "workload_matrix.sh: $b not built (cmake --preset release && cmake --build --preset release)" >&2; exit 1; }
done
java=/usr/bin/java
zk_cp=/usr/share/java/zookeeper.jar:/usr/share/java/zookeeper-jute.jar:/usr/share/java/slf4j-api.jar
[[ -x "$java" && -r /usr/share/java/zookeeper.jar ]] || { echo "workload_matrix.sh: java or the zookeeper jars are missing (apt install zookeeper)" >&2; exit 1; }

work="$(mktemp -d "${TMPDIR:-/tmp}/coord-compare-XXXXXX")"
pids=()
cleanup() {
  for pid in "${pids[@]}"; do
    kill -9 "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()'
}
four_letter() {  # port word
  python3 - "$1" "$2" <<'EOF' 2>/dev/null || true
import socket, sys
try:
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=2)
    s.sendall(sys.argv[2].encode())
    out = b""
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
    print(out.decode(errors="replace"))
except OSError:
    pass
EOF
}
wait_until() {  # seconds description command...
  local limit="$1" what="$2"; shift 2
  local deadline=$((SECONDS + limit))
  until "$@"; do
    if (( SECONDS >= deadline )); then echo "workload_matrix.sh: $what did not come up" >&2; exit 1; fi
    sleep 0.2
  done
}
serving() {  # port: answers srvr as standalone, leader or follower
  four_letter "$1" srvr | grep -Eq 'Mode: (standalone|leader|follower)'
}

# ---- coordd, 1 node ----
mkdir -p "$work/coordd"
"$coordd_bin" --client-port 0 --http-port 0 --data-dir "$work/coordd/data" --log-level info \
  >"$work/coordd/log" 2>&1 &
pids+=($!)
coordd_port=""
coordd_has_port() {
  coordd_port="$(sed -n 's/.*serving ZooKeeper clients on [0-9.]*:\([0-9]*\).*/\1/p' "$work/coordd/log" | head -1)"
  [[ -n "$coordd_port" ]] && [[ "$(four_letter "$coordd_port" ruok)" == imok ]]
}
wait_until 30 coordd coordd_has_port

# ---- ZooKeeper, 1 node, tickTime 2000 (the default) ----
start_zk() {  # dir client_port [server lines...]
  local dir="$1" port="$2"; shift 2
  mkdir -p "$dir/data"
  {
    echo "tickTime=2000"
    echo "initLimit=10"
    echo "syncLimit=5"
    echo "dataDir=$dir/data"
    echo "clientPort=$port"
    echo "clientPortAddress=127.0.0.1"
    echo "4lw.commands.whitelist=*"
    echo "admin.enableServer=false"
    echo "maxClientCnxns=0"
    for line in "$@"; do echo "$line"; done
  } >"$dir/zoo.cfg"
  "$java" -cp "$zk_cp" -Dzookeeper.extendedTypesEnabled=true -Xmx1g \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zoo.cfg" >"$dir/log" 2>&1 &
  pids+=($!)
}
zk1_port="$(free_port)"
start_zk "$work/zk1" "$zk1_port"

wait_until 60 "ZooKeeper" serving "$zk1_port"

# ---- workloads: name | coord-bench flags ----
workloads=(
  "get-1x64|--op get --sessions 1 --outstanding 64"
  "get-16x16|--op get --sessions 16 --outstanding 16"
  "exists-4x16|--op exists --sessions 4 --outstanding 16"
  "set-4x16|--op set --sessions 4 --outstanding 16"
  "create-4x16|--op create --sessions 4 --outstanding 16"
  "mix90-8x8|--op mix --read-pct 90 --sessions 8 --outstanding 8"
  "set-1x1|--op set --sessions 1 --outstanding 1"
  "watch-latency|--mode watch-latency"
  "session-churn-4|--mode session-churn --sessions 4"
)
targets=(
  "coordd-1|127.0.0.1:$coordd_port"
  "zk-1|127.0.0.1:$zk1_port"
)

# Unmeasured writes and reads on each target first: ZooKeeper's JVM
# compiles its hot paths in its first seconds under load, and the first
# workload would pay for it.
for t in "${targets[@]}"; do
  for op in set get; do
    "$bench_bin" -s "${t#*|}" --op "$op" --sessions 16 --outstanding 8 \
      --duration-s "$warmup_s" --payload-bytes "$payload_bytes" --keys "$keys" \
      --root /bench-warm --clean >/dev/null 2>&1 || true
  done
done

results="$work/results.jsonl"
: >"$results"
for w in "${workloads[@]}"; do
  name="${w%%|*}"; flags="${w#*|}"
  if [[ -n "$only" && ",$only," != *",$name,"* ]]; then continue; fi
  for t in "${targets[@]}"; do
    target="${t%%|*}"; connect="${t#*|}"
    echo "workload_matrix.sh: $name on $target" >&2
    # shellcheck disable=SC2086
    line="$("$bench_bin" -s "$connect" $flags --duration-s "$duration_s" \
              --payload-bytes "$payload_bytes" --keys "$keys" --root "/bench-$name" --clean \
              --label "$name@$target" 2>/dev/null | tail -1)" || line=""
    if [[ -z "$line" ]]; then line="{\"label\":\"$name@$target\",\"failed\":true}"; fi
    echo "$line" >>"$results"
  done
done
[[ -n "$keep_json" ]] && cp "$results" "$keep_json"

python3 - "$results" "$duration_s" <<'EOF'
import json, sys
rows = {}
for line in open(sys.argv[1]):
    line = line.strip()
    if not line:
        continue
    r = json.loads(line)
    name, target = r["label"].split("@")
    rows.setdefault(name, {})[target] = r
figures = [("ops/s", lambda r: r["ops_per_s"]),
           ("p50 us", lambda r: r["latency_us"]["p50"]),
           ("p90 us", lambda r: r["latency_us"]["p90"]),
           ("p99 us", lambda r: r["latency_us"]["p99"]),
           ("p99.9 us", lambda r: r["latency_us"]["p999"]),
           ("max us", lambda r: r["latency_us"]["max"]),
           ("errors", lambda r: r["errors"])]
def val(rs, target, get):
    r = rs.get(target)
    if r is None or r.get("failed"):
        return None
    return get(r)
def fmt(v):
    if v is None:
        return "failed"
    return "%.0f" % v if isinstance(v, float) else str(v)
def ratio(a, b):
    if a is None or b is None or b == 0:
        return "-"
    return "%.2f" % (a / b)
head = ("workload", "figure", "coordd", "ZooKeeper", "coordd/ZooKeeper")
out = [head]
for name, rs in rows.items():
    for label, get in figures:
        c1, z1 = val(rs, "coordd-1", get), val(rs, "zk-1", get)
        out.append((name, label, fmt(c1), fmt(z1), ratio(c1, z1)))
widths = [max(len(row[i]) for row in out) for i in range(len(head))]
print("coord-bench, %s s per workload and target; latencies in microseconds" % sys.argv[2])
for i, row in enumerate(out):
    print("  ".join(cell.rjust(widths[j]) if j > 1 else cell.ljust(widths[j]) for j, cell in enumerate(row)))
    if i == 0:
        print("  ".join("-" * w for w in widths))
EOF
