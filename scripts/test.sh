#!/usr/bin/env bash
# Sets everything up, then configures, builds and runs every test exactly as
# CI does (the `ci` workflow preset: ASan+UBSan build, ctest on 2 jobs).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --workflow --preset ci
