#!/usr/bin/env bash
# Installs every build and test dependency of coord from Debian 12 packages.
# Idempotent: when everything is already there it installs nothing.
set -euo pipefail

packages=(
  # build
  cmake g++ ninja-build ccache pkg-config git
  libboost-dev nlohmann-json3-dev liblmdb-dev libssl-dev libcli11-dev
  libkainjow-mustache-dev
  # tests, benchmarks, tools
  libgtest-dev libgmock-dev libbenchmark-dev clang clang-format libclang-rt-14-dev lmdb-utils
  # reference ZooKeeper 3.8 and the real clients the integration tests drive;
  # zookeeper depends on default-jre, so Java comes with it and the tests
  # that need Java run (they report "Skipped", never "Passed", without it)
  zookeeper python3-kazoo libzookeeper-mt-dev
  # cli_mt, the C client's shell, for the cluster tests' client failover
  zookeeper-bin
  # Apache Curator 5.4 and a JDK, for the recipes' interoperability tests
  default-jdk-headless libcurator-recipes-java libcurator-discovery-java
  # nc, for the README's four-letter-word example (printf srvr | nc ...)
  netcat-openbsd
  # openssl makes the TLS tests' certificates; curl is one of their HTTPS clients
  openssl curl
  # the web console's browser tests: headless Chromium driven by selenium
  chromium chromium-driver python3-selenium
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then
    sudo_cmd=(sudo)
  else
    echo "setup: must run as root (or with sudo) to install: ${missing[*]}" >&2
    exit 1
  fi
fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
