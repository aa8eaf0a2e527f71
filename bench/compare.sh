#!/usr/bin/env bash
# compare.sh: coordd against Apache ZooKeeper 3.8, the whole performance
# table (throughput, the servers' CPU per operation, latencies, session
# opens, memory per znode, watch and idle session; 1 node and 3 nodes), in
# one run, as markdown and JSON. bench/compare.py does the work; its --help
# says what each figure measures and how.
#
#   bash bench/compare.sh                          # release build, 5 s per workload
#   bash bench/compare.sh --nodes 1 --duration-s 10 --json out.json
set -euo pipefail
exec /usr/bin/python3 "$(cd "$(dirname "$0")" && pwd)/compare.py" "$@"
