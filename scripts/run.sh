#!/usr/bin/env bash
# Sets everything up, builds the release preset and starts a single-node
# coordd on its defaults (ZooKeeper protocol on 127.0.0.1:2181, HTTP on
# 127.0.0.1:8080, data in ./coord-data). Extra arguments go to coordd.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset release >/dev/null
cmake --build --preset release
if [ -x build/release/coordd/coordd ]; then
  exec build/release/coordd/coordd "$@"
fi
echo "run: everything is built; coordd does not exist yet, so there is no server to start."
