#!/bin/bash
# Instructions coordd executes per client operation, counted by callgrind:
# a figure that does not move with the machine's load, for comparing two
# builds of the server side by side where CPU time is too noisy to tell a
# few percent apart.
#
# coordd runs under valgrind twice, once for a short coord-bench run and
# once for a long one, each on a fresh data directory; the difference of
# the two totals over the difference of the operations is the cost of one
# operation, with start and stop cancelled out. The count covers every
# thread of the server (network, core, storage) in user space; the
# kernel's share (system calls, TCP, fsync) is not in it.
#
# usage: bench/instructions_per_op.sh [--op set|get|create|...] [--ops N]
#            [--sessions S] [--outstanding O] COORDD COORD_BENCH
set -euo pipefail

op=set
ops=10000
sessions=8
outstanding=8
while [[ $# -gt 2 ]]; do
  case "$1" in
    --op) op="$2"; shift 2 ;;
    --ops) ops="$2"; shift 2 ;;
    --sessions) sessions="$2"; shift 2 ;;
    --outstanding) outstanding="$2"; shift 2 ;;
    *) echo "instructions_per_op.sh: unknown flag $1" >&2; exit 2 ;;
  esac
done
if [[ $# -ne 2 ]]; then
  sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//' >&2
  exit 2
fi
coordd="$1"
bench="$2"
command -v valgrind >/dev/null || { echo "instructions_per_op.sh: valgrind is not installed" >&2; exit 2; }
warmup_ops=2000
# coordd starts itself anew to set glibc's allocator cache when this is
# unset (base/malloc_tuning.h), and valgrind does not follow that exec:
# set here, the count is of the allocator coordd runs with.
export GLIBC_TUNABLES="${GLIBC_TUNABLES:-glibc.malloc.tcache_count=256}"
server_start_s_max=60

work="$(mktemp -d "${TMPDIR:-/tmp}/coord-instr-XXXXXX")"
server_pid=""
cleanup() {
  if [[ -n "$server_pid" ]]; then kill -TERM "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  /usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Total instructions of a coordd that served `n` operations.
count() {
  local n="$1" dir="$work/run-$1" port http deadline
  mkdir -p "$dir"
  port="$(free_port)"
  http="$(free_port)"
  valgrind --tool=callgrind --callgrind-out-file="$dir/callgrind.out" "$coordd" \
    --bind 127.0.0.1 --client-port "$port" --http-port "$http" --data-dir "$dir/data" \
    >"$dir/coordd.log" 2>&1 &
  server_pid=$!
  deadline=$((SECONDS + server_start_s_max))
  until /usr/bin/python3 -c 'import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=1)
s.sendall(b"ruok")
sys.exit(0 if s.recv(4) == b"imok" else 1)' "$port" 2>/dev/null; do
    if ((SECONDS > deadline)) || ! kill -0 "$server_pid" 2>/dev/null; then
      echo "instructions_per_op.sh: coordd did not start; its log:" >&2
      cat "$dir/coordd.log" >&2
      exit 1
    fi
    sleep 0.2
  done
  "$bench" -s "127.0.0.1:$port" --op "$op" --ops "$n" --sessions "$sessions" \
    --outstanding "$outstanding" --payload-bytes 100 --keys 1000 --root /instr \
    >"$dir/bench.out" 2>&1 || { echo "instructions_per_op.sh: coord-bench failed:" >&2; cat "$dir/bench.out" >&2; exit 1; }
  kill -TERM "$server_pid"
  wait "$server_pid" || true
  server_pid=""
  # awk reads to the end: leaving early would fail the pipeline.
  callgrind_annotate "$dir/callgrind.out" 2>/dev/null |
    awk '/PROGRAM TOTALS/ && !done { gsub(",", "", $1); print $1; done = 1 }'
}

short="$(count "$warmup_ops")"
long="$(count "$((warmup_ops + ops))")"
per_op=$(((long - short) / ops))
echo "{\"op\": \"$op\", \"ops\": $ops, \"sessions\": $sessions, \"outstanding\": $outstanding, \"instructions_per_op\": $per_op}"
