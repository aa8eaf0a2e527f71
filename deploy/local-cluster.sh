#!/usr/bin/env bash
# local-cluster.sh: a coordd cluster of N servers on 127.0.0.1, for trying
# things out, demos and tests. Not for production (docs/OPERATIONS.md is).
#
#   deploy/local-cluster.sh start [N] [-- coordd flags...]
#                                      start N servers (odd, default 3); again
#                                      after stop (without N): the same servers
#                                      on their data
#   deploy/local-cluster.sh status     each server's role, term, commit and
#                                      applied index, or "down"
#   deploy/local-cluster.sh hosts      the connection string (host:port,...)
#   deploy/local-cluster.sh kill ID    SIGKILL one server
#   deploy/local-cluster.sh restart ID [-- coordd flags...]
#                                      start one server again, on its data,
#                                      with the same flags (and these, once)
#   deploy/local-cluster.sh stop       SIGTERM every server, SIGKILL what is
#                                      still running after a bounded wait
#   deploy/local-cluster.sh add        start one more server (the next free id)
#                                      with --join and add it to the cluster
#                                      through a running server's admin API
#   deploy/local-cluster.sh remove ID  remove a server from the cluster (admin
#                                      API of another running server), then
#                                      stop it; its directory stays
#
# State lives in $COORD_CLUSTER_DIR (default ./coord-cluster): the cluster
# secret, the super user's credentials (admin: user:password, for the admin
# API as coordctl --user, and for addauth digest), and per server a config
# file, its data directory, its log and its pid file. Ports are chosen free at the first start and kept, so a server
# restarts at the same addresses. coordd is $COORDD, else the repository's
# build directory (release, debug, ci, asan-ubsan, tsan), else the PATH.
# Flags after -- go to every server and are kept for restarts.
#
# Environment: COORD_CLUSTER_DIR, COORDD, COORD_CLUSTER_START_TIMEOUT_S
# (default 30), COORD_CLUSTER_STOP_TIMEOUT_S (default 20).
set -euo pipefail

prog="local-cluster.sh"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
state="${COORD_CLUSTER_DIR:-./coord-cluster}"
start_timeout_s="${COORD_CLUSTER_START_TIMEOUT_S:-30}"
stop_timeout_s="${COORD_CLUSTER_STOP_TIMEOUT_S:-20}"
# Polls, 10 ms apart, of a server's command line while it executes itself
# again at start (running_pid).
exec_wait_polls=300
host=127.0.0.1

die() {
  echo "$prog: $*" >&2
  exit 1
}

usage() {
  # The comment block at the top of this file.
  sed -n '2,/^set /{/^#/p}' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
}

# ---- state layout ----
# $state/cluster      servers=<ids>, coordd=<binary>: written once at the first start
# $state/secret       the cluster secret (mode 600)
# $state/admin        super:<password>, the super user (mode 600)
# $state/extra-flags  flags after --, one per line
# $state/server-ID/   coordd.conf, data/, coordd.log, coordd.pid, ports

server_dir() { echo "$state/server-$1"; }
config_of() { echo "$(server_dir "$1")/coordd.conf"; }
pid_file_of() { echo "$(server_dir "$1")/coordd.pid"; }
log_of() { echo "$(server_dir "$1")/coordd.log"; }

# Reads one key of $state/cluster.
cluster_value() {
  sed -n "s/^$1=//p" "$state/cluster" | head -n 1
}

server_ids() {
  local ids
  ids="$(cluster_value servers)"
  echo "${ids//,/ }"
}

# Port of one kind (client, http, peer) of a server.
port_of() {
  sed -n "s/^$2=//p" "$(server_dir "$1")/ports" | head -n 1
}

require_state() {
  [[ -f "$state/cluster" ]] || die "no cluster in $state (start one: $prog start 3)"
  # Absolute from here on: the config files name paths in it.
  state="$(cd "$state" && pwd)"
}

# ---- coordd ----
find_coordd() {
  if [[ -n "${COORDD:-}" ]]; then
    [[ -x "$COORDD" ]] || die "COORDD=$COORDD is not an executable file"
    echo "$(cd "$(dirname "$COORDD")" && pwd)/$(basename "$COORDD")"
    return
  fi
  local preset
  for preset in release debug ci asan-ubsan tsan; do
    if [[ -x "$repo/build/$preset/coordd/coordd" ]]; then
      echo "$repo/build/$preset/coordd/coordd"
      return
    fi
  done
  if command -v coordd >/dev/null 2>&1; then
    command -v coordd
    return
  fi
  die "coordd not found: set COORDD, build it (cmake --preset release && cmake --build --preset release --target coordd) or put it on the PATH"
}

# ---- processes ----
# The pid in a server's pid file if that process is alive and is the coordd
# started with this server's config (a pid can be reused after a crash).
running_pid() {
  local pid_file pid cmdline tries=0
  pid_file="$(pid_file_of "$1")"
  [[ -f "$pid_file" ]] || return 1
  pid="$(cat "$pid_file")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  if [[ -r "/proc/$pid/cmdline" ]]; then
    cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    # coordd executes itself again as it starts (to tune the allocator):
    # meanwhile its command line reads empty. So does a zombie's, for good.
    while [[ -z "$cmdline" ]] && ((tries++ < exec_wait_polls)); do
      [[ "$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null)" != Z* ]] || return 1
      sleep 0.01
      cmdline="$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null)"
    done
    [[ "$cmdline" == *"$(config_of "$1")"* ]] || return 1
  fi
  echo "$pid"
}

# A four-letter word to a port on $host; empty when nothing answers. The
# connection lives in a subshell: its descriptor and error messages stay
# there.
four_letter() {
  local port="$1" word="$2"
  (
    exec 2>/dev/null
    exec 3<>"/dev/tcp/$host/$port" || exit 0
    printf '%s' "$word" >&3
    timeout 2 cat <&3 || true
  )
}

# GET of an HTTP path on a port: the body, empty when nothing answers.
http_get() {
  local port="$1" path="$2"
  if command -v curl >/dev/null 2>&1; then
    curl -s --max-time 2 "http://$host:$port$path" 2>/dev/null || true
    return
  fi
  (
    exec 2>/dev/null
    exec 3<>"/dev/tcp/$host/$port" || exit 0
    printf 'GET %s HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n' "$path" "$host" >&3
    # The body follows the blank line after the headers.
    timeout 2 cat <&3 | sed '1,/^\r\{0,1\}$/d' || true
  )
}

# The super user's digest identity for coordd's --super-digest:
# user:base64(sha1(user:password)) of the user:password in $1.
digest_of() {
  local hex
  hex="$(printf '%s' "$1" | sha1sum | cut -c1-40)"
  # shellcheck disable=SC2059,SC2001 # the format is the point: \xNN escapes
  printf "$(sed 's/../\\x&/g' <<<"$hex")" | base64 -w 0 | sed "s/^/${1%%:*}:/"
}

# An HTTP request with a JSON body (empty: none), as the super user: the
# reply's body, then its status code on a line of its own (000 when nothing
# answers).
http_send() {
  local method="$1" port="$2" path="$3" body="${4:-}" auth=""
  [[ -r "$state/admin" ]] && auth="$(head -n 1 "$state/admin")"
  if command -v curl >/dev/null 2>&1; then
    # The credentials go through a config on stdin, not the command line.
    printf '%s' "${auth:+user = \"$auth\"}" |
      curl -s --max-time 30 -K - -X "$method" -H 'Content-Type: application/json' \
        ${body:+--data "$body"} -w '\n%{http_code}\n' "http://$host:$port$path" 2>/dev/null ||
      printf '\n000\n'
    return
  fi
  local reply
  reply="$(
    exec 2>/dev/null
    exec 3<>"/dev/tcp/$host/$port" || exit 0
    printf '%s %s HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\n%sContent-Length: %s\r\nConnection: close\r\n\r\n%s' \
      "$method" "$path" "$host" \
      "${auth:+Authorization: Basic $(printf '%s' "$auth" | base64 -w 0)$'\r\n'}" \
      "${#body}" "$body" >&3
    timeout 30 cat <&3 || true
  )"
  # The body follows the blank line after the headers; the code is the
  # second word of the status line.
  sed '1,/^\r\{0,1\}$/d' <<<"$reply"
  printf '%s\n' "$(head -n 1 <<<"$reply" | awk '{print $2}' | grep -E '^[0-9]{3}$' || echo 000)"
}

# A string field of a flat JSON object.
json_string() {
  sed -n "s/.*\"$1\":\"\([^\"]*\)\".*/\1/p" <<<"$2" | head -n 1
}

# A number field of a flat JSON object (the status carries no nested key of
# the same name before these).
json_number() {
  sed -n "s/.*\"$1\":\\([0-9]*\\).*/\\1/p" <<<"$2" | head -n 1
}

# Starts one server from its config, in its own session so that it outlives
# this script and a ctrl-c in the terminal that ran it.
launch() {
  local id="$1" coordd extra=()
  shift
  coordd="${COORDD:-$(cluster_value coordd)}"
  [[ -x "$coordd" ]] || die "coordd $coordd is gone (set COORDD)"
  if [[ -s "$state/extra-flags" ]]; then
    mapfile -t extra <"$state/extra-flags"
  fi
  if running_pid "$id" >/dev/null; then
    die "server $id is already running (pid $(running_pid "$id"))"
  fi
  # A background child of a script does not lead a process group, so
  # setsid calls setsid() in place, without forking: $! is coordd's pid.
  setsid "$coordd" --config "$(config_of "$id")" "${extra[@]}" "$@" \
    </dev/null >>"$(log_of "$id")" 2>&1 &
  echo "$!" >"$(pid_file_of "$id")"
}

# Waits until a server answers ruok; false (with its log's tail) if it
# exits or the time runs out.
wait_serving() {
  local id="$1" deadline=$((SECONDS + start_timeout_s))
  local port
  port="$(port_of "$id" client)"
  while ((SECONDS < deadline)); do
    if ! running_pid "$id" >/dev/null; then
      echo "$prog: server $id exited; the end of $(log_of "$id"):" >&2
      tail -n 15 "$(log_of "$id")" >&2 || true
      return 1
    fi
    if [[ "$(four_letter "$port" ruok)" == imok ]]; then
      return 0
    fi
    sleep 0.1
  done
  echo "$prog: server $id did not answer ruok within ${start_timeout_s}s; the end of $(log_of "$id"):" >&2
  tail -n 15 "$(log_of "$id")" >&2 || true
  return 1
}

# Waits until every server names the same leader.
wait_leader() {
  local deadline=$((SECONDS + start_timeout_s)) id first agreed leader
  while ((SECONDS < deadline)); do
    first=""
    agreed=1
    for id in $(server_ids); do
      leader="$(json_number leader_id "$(http_get "$(port_of "$id" http)" /v1/cluster/status)")"
      [[ -n "$first" ]] || first="${leader:-0}"
      if [[ "${leader:-0}" == 0 || "$leader" != "$first" ]]; then agreed=0; fi
    done
    ((agreed)) && return 0
    sleep 0.1
  done
  echo "$prog: no leader agreed on within ${start_timeout_s}s (see $prog status and the logs)" >&2
  return 1
}

hosts() {
  local id out=""
  for id in $(server_ids); do
    out+="${out:+,}$host:$(port_of "$id" client)"
  done
  echo "$out"
}

print_servers() {
  local id
  for id in $(server_ids); do
    printf 'server %s  client %s:%s  http %s:%s  peer %s:%s  log %s\n' "$id" \
      "$host" "$(port_of "$id" client)" "$host" "$(port_of "$id" http)" \
      "$host" "$(port_of "$id" peer)" "$(log_of "$id")"
  done
  echo "connection string: $(hosts)"
  [[ ! -r "$state/admin" ]] || echo "super user (admin API, addauth digest): $state/admin"
}

# ---- ports ----
# Ports are picked below the kernel's ephemeral range, so that a client's
# outgoing connection cannot hold one when a server restarts on it.
ephemeral_low() {
  local low=32768
  if [[ -r /proc/sys/net/ipv4/ip_local_port_range ]]; then
    read -r low _ </proc/sys/net/ipv4/ip_local_port_range
  fi
  echo "$low"
}

port_taken() {
  local port="$1"
  # Something listens (on 127.0.0.1 or any address).
  if (exec 2>/dev/null 3<>"/dev/tcp/$host/$port"); then
    return 0
  fi
  if command -v ss >/dev/null 2>&1 && ss -Htan "sport = :$port" 2>/dev/null | grep -q .; then
    return 0
  fi
  return 1
}

# A free port in $picked, never one picked before by this run. Called
# directly, not in $(...): a subshell's choice would not reach
# $chosen_ports, and two picks could return the same port.
chosen_ports=" "
picked=""
pick_port() {
  local low span port tries=0
  low=10000
  span=$(($(ephemeral_low) - low))
  ((span > 1000)) || { low=20000; span=10000; }
  while ((tries < 200)); do
    tries=$((tries + 1))
    port=$((low + (RANDOM * 32768 + RANDOM) % span))
    [[ "$chosen_ports" == *" $port "* ]] && continue
    port_taken "$port" && continue
    chosen_ports+="$port "
    picked="$port"
    return
  done
  die "no free port found"
}

# Picks server $1's client, HTTP and peer ports and writes its ports file.
pick_ports_of() {
  local client http peer
  pick_port
  client="$picked"
  pick_port
  http="$picked"
  pick_port
  peer="$picked"
  printf 'client=%s\nhttp=%s\npeer=%s\n' "$client" "$http" "$peer" >"$(server_dir "$1")/ports"
}

# The config file of server $1: --peers $2 (the founding servers, or the
# members and this server for one that joins), cluster id $3, and with $4
# the line that makes it join.
write_config() {
  local i="$1" peers="$2" cluster_id="$3" join="${4:-}"
  cat >"$(config_of "$i")" <<EOF
# coordd server $i of a local cluster, written by $prog.
# Every key is a coordd flag without its dashes (coordd --help).
id = $i
peers = "$peers"
cluster-id = "$cluster_id"
cluster-secret-file = "$state/secret"
bind = "$host"
client-port = $(port_of "$i" client)
http-port = $(port_of "$i" http)
peer-port = $(port_of "$i" peer)
data-dir = "$(server_dir "$i")/data"
log-level = "info"
EOF
  if [[ -r "$state/admin" ]]; then
    printf '# The super user (%s): the admin API and addauth digest.\nsuper-digest = "%s"\n' \
      "$state/admin" "$(digest_of "$(head -n 1 "$state/admin")")" >>"$(config_of "$i")"
  fi
  if [[ -n "$join" ]]; then
    printf '# Joined a running cluster: started with an empty log, added by reconfig.\njoin = true\n' \
      >>"$(config_of "$i")"
  fi
}

set_server_ids() {
  local ids="$1" coordd
  coordd="$(cluster_value coordd)"
  printf 'servers=%s\ncoordd=%s\n' "$ids" "$coordd" >"$state/cluster.new"
  mv "$state/cluster.new" "$state/cluster"
}

# ---- commands ----
cmd_start() {
  local n=3 n_given=0 extra=()
  if [[ $# -gt 0 && "$1" != "--" ]]; then
    n="$1"
    n_given=1
    shift
  fi
  if [[ $# -gt 0 ]]; then
    [[ "$1" == "--" ]] || die "start: unexpected '$1' (usage: start [N] [-- coordd flags...])"
    shift
    extra=("$@")
  fi
  if ! [[ "$n" =~ ^[0-9]+$ ]] || ((10#$n < 1 || 10#$n > 255)); then
    die "start: N must be a number from 1 to 255"
  fi
  n=$((10#$n))

  if [[ -f "$state/cluster" ]]; then
    require_state
    local id running="" existing
    existing="$(server_ids | wc -w)"
    # Servers added or removed since the first start count as they are now.
    ((n_given)) || n="$existing"
    ((existing == n)) || die "$state holds a cluster of $existing servers; stop it and remove $state for another size"
    for id in $(server_ids); do
      if running_pid "$id" >/dev/null; then running+=" $id"; fi
    done
    [[ -z "$running" ]] || die "servers$running already running ($prog status; $prog restart ID for one that is down)"
    ((${#extra[@]} == 0)) || die "start: flags after -- are for a new cluster; $state keeps those it was started with"
    echo "$prog: starting the $n servers in $state again, on their data"
  else
    ((n % 2 == 1)) || die "start: N must be odd (a cluster of $n servers survives no more failures than one of $((n - 1)))"
    local coordd
    coordd="$(find_coordd)"
    mkdir -p "$state"
    state="$(cd "$state" && pwd)"
    # The secret: random bytes as base64 text, readable by this user only.
    (
      umask 077
      head -c 48 /dev/urandom | base64 -w 0 >"$state/secret"
      echo >>"$state/secret"
    )
    chmod 600 "$state/secret"
    # The super user, who may change the membership through the admin API.
    (
      umask 077
      printf 'super:%s\n' "$(head -c 18 /dev/urandom | base64 -w 0 | tr '+/' '-_')" >"$state/admin"
    )
    chmod 600 "$state/admin"
    printf '%s\n' "${extra[@]+"${extra[@]}"}" | sed '/^$/d' >"$state/extra-flags"
    local cluster_id
    cluster_id="local-$(head -c 6 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    local ids=() i
    for ((i = 1; i <= n; i++)); do ids+=("$i"); done
    local peers=""
    for i in "${ids[@]}"; do
      mkdir -p "$(server_dir "$i")/data"
      pick_ports_of "$i"
      peers+="${peers:+,}$i=$host:$(port_of "$i" peer);$host:$(port_of "$i" client)"
    done
    for i in "${ids[@]}"; do
      write_config "$i" "$peers" "$cluster_id"
    done
    {
      echo "servers=$(
        IFS=,
        echo "${ids[*]}"
      )"
      echo "coordd=$coordd"
    } >"$state/cluster"
    echo "$prog: starting $n servers in $state with $coordd"
  fi

  local id failed=0
  for id in $(server_ids); do launch "$id"; done
  for id in $(server_ids); do
    wait_serving "$id" || failed=1
  done
  if ((failed)); then
    echo "$prog: stopping the servers that did start" >&2
    cmd_stop >&2 || true
    exit 1
  fi
  wait_leader || exit 1
  print_servers
}

cmd_stop() {
  require_state
  local id pid pids=() ids=()
  for id in $(server_ids); do
    if pid="$(running_pid "$id")"; then
      kill -TERM "$pid" 2>/dev/null || true
      pids+=("$pid")
      ids+=("$id")
    fi
  done
  if ((${#pids[@]} == 0)); then
    echo "$prog: no server was running"
    return 0
  fi
  local deadline=$((SECONDS + stop_timeout_s)) alive
  while :; do
    alive=0
    for id in "${ids[@]}"; do
      if running_pid "$id" >/dev/null; then alive=$((alive + 1)); fi
    done
    ((alive == 0)) && break
    if ((SECONDS >= deadline)); then
      for id in "${ids[@]}"; do
        if pid="$(running_pid "$id")"; then
          echo "$prog: server $id (pid $pid) still running after ${stop_timeout_s}s: SIGKILL" >&2
          kill -KILL "$pid" 2>/dev/null || true
        fi
      done
      break
    fi
    sleep 0.1
  done
  for id in "${ids[@]}"; do rm -f "$(pid_file_of "$id")"; done
  echo "$prog: stopped servers ${ids[*]}"
}

cmd_status() {
  require_state
  local id pid body node leader term commit applied role leaders=""
  for id in $(server_ids); do
    if ! pid="$(running_pid "$id")"; then
      printf 'server %s  down\n' "$id"
      continue
    fi
    body="$(http_get "$(port_of "$id" http)" /v1/cluster/status)"
    node="$(json_number node_id "$body")"
    if [[ -z "$node" ]]; then
      printf 'server %s  running (pid %s) but its HTTP port %s does not answer\n' "$id" "$pid" "$(port_of "$id" http)"
      continue
    fi
    leader="$(json_number leader_id "$body")"
    term="$(json_number term "$body")"
    commit="$(json_number commit_index "$body")"
    applied="$(json_number applied_index "$body")"
    if [[ "$leader" == "$node" ]]; then
      role=leader
      leaders+=" $id"
    elif [[ "$leader" == 0 || -z "$leader" ]]; then
      role="no-leader"
    else
      role=follower
    fi
    printf 'server %s  %-9s  term %s  commit %s  applied %s  leader %s  pid %s  client %s:%s\n' \
      "$id" "$role" "$term" "$commit" "$applied" "${leader:-0}" "$pid" "$host" "$(port_of "$id" client)"
  done
}

cmd_kill() {
  require_state
  local id="${1:-}" pid
  [[ -n "$id" && -d "$(server_dir "$id")" ]] || die "kill: no server '${id}' (ids: $(server_ids))"
  pid="$(running_pid "$id")" || die "kill: server $id is not running"
  kill -KILL "$pid"
  local deadline=$((SECONDS + 10))
  while running_pid "$id" >/dev/null && ((SECONDS < deadline)); do sleep 0.05; done
  rm -f "$(pid_file_of "$id")"
  echo "$prog: killed server $id (pid $pid, SIGKILL)"
}

cmd_restart() {
  require_state
  local id="${1:-}"
  [[ -n "$id" && -d "$(server_dir "$id")" ]] || die "restart: no server '${id}' (ids: $(server_ids))"
  shift
  if [[ $# -gt 0 ]]; then
    [[ "$1" == "--" ]] || die "restart: unexpected '$1' (usage: restart ID [-- coordd flags...])"
    shift
  fi
  launch "$id" "$@"
  wait_serving "$id" || exit 1
  echo "$prog: server $id is up (pid $(running_pid "$id")), client $host:$(port_of "$id" client)"
}

# A running server other than $1 to send admin requests to; empty if none.
admin_server() {
  local id
  for id in $(server_ids); do
    [[ "$id" != "${1:-}" ]] || continue
    if running_pid "$id" >/dev/null; then
      echo "$id"
      return
    fi
  done
}

cmd_add() {
  require_state
  local via id=0 d n peers="" i cluster_id
  via="$(admin_server)"
  [[ -n "$via" ]] || die "add: no server is running ($prog start)"
  # The next id never used here: a removed server's directory stays.
  for d in "$state"/server-*; do
    n="${d##*/server-}"
    if [[ "$n" =~ ^[0-9]+$ ]] && ((10#$n > id)); then id=$((10#$n)); fi
  done
  id=$((id + 1))
  ((id <= 255)) || die "add: no server id left (ids go up to 255)"
  cluster_id="$(sed -n 's/^cluster-id = "\(.*\)"$/\1/p' "$(config_of "$via")")"
  mkdir -p "$(server_dir "$id")/data"
  pick_ports_of "$id"
  for i in $(server_ids) "$id"; do
    peers+="${peers:+,}$i=$host:$(port_of "$i" peer);$host:$(port_of "$i" client)"
  done
  write_config "$id" "$peers" "$cluster_id" join
  launch "$id"
  if ! wait_serving "$id"; then
    rm -rf "$(server_dir "$id")"
    exit 1
  fi
  local body reply code
  body="{\"id\":$id,\"peer_address\":\"$host:$(port_of "$id" peer)\",\"client_address\":\"$host:$(port_of "$id" client)\",\"role\":\"participant\"}"
  reply="$(http_send POST "$(port_of "$via" http)" /v1/cluster/members "$body")"
  code="$(tail -n 1 <<<"$reply")"
  if [[ "$code" != 200 ]]; then
    echo "$prog: add: server $via refused to add server $id (HTTP $code): $(sed '$d' <<<"$reply")" >&2
    echo "$prog: add: stopping server $id and removing $(server_dir "$id")" >&2
    kill -KILL "$(running_pid "$id")" 2>/dev/null || true
    rm -rf "$(server_dir "$id")"
    exit 1
  fi
  set_server_ids "$(cluster_value servers),$id"
  # Added: it follows once the leader has sent it the log.
  local deadline=$((SECONDS + start_timeout_s)) leader=""
  while ((SECONDS < deadline)); do
    leader="$(json_number leader_id "$(http_get "$(port_of "$id" http)" /v1/cluster/status)")"
    [[ -n "$leader" && "$leader" != 0 ]] && break
    sleep 0.1
  done
  if [[ -z "$leader" || "$leader" == 0 ]]; then
    echo "$prog: add: server $id was added but follows no leader yet (see $(log_of "$id"))" >&2
  fi
  echo "$prog: added server $id (membership version $(json_string version "$(sed '$d' <<<"$reply")"))"
  print_servers | grep -E "^server $id |^connection string"
}

cmd_remove() {
  require_state
  local id="${1:-}" via remaining="" i
  [[ -n "$id" && " $(server_ids) " == *" $id "* ]] || die "remove: no server '${id}' (ids: $(server_ids))"
  via="$(admin_server "$id")"
  [[ -n "$via" ]] || die "remove: no other server is running to ask"
  local reply code
  reply="$(http_send DELETE "$(port_of "$via" http)" "/v1/cluster/members/$id")"
  code="$(tail -n 1 <<<"$reply")"
  [[ "$code" == 200 ]] ||
    die "remove: server $via refused to remove server $id (HTTP $code): $(sed '$d' <<<"$reply")"
  for i in $(server_ids); do
    [[ "$i" == "$id" ]] || remaining+="${remaining:+,}$i"
  done
  set_server_ids "$remaining"
  local pid
  if pid="$(running_pid "$id")"; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + stop_timeout_s))
    while running_pid "$id" >/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if running_pid "$id" >/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
  fi
  rm -f "$(pid_file_of "$id")"
  echo "$prog: removed server $id (membership version $(json_string version "$(sed '$d' <<<"$reply")")) and stopped it; $(server_dir "$id") stays"
  echo "connection string: $(hosts)"
}

main() {
  local cmd="${1:-}"
  [[ $# -gt 0 ]] && shift
  case "$cmd" in
    start) cmd_start "$@" ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    hosts)
      require_state
      hosts
      ;;
    kill) cmd_kill "$@" ;;
    restart) cmd_restart "$@" ;;
    add) cmd_add ;;
    remove) cmd_remove "$@" ;;
    -h | --help | help) usage ;;
    "")
      usage >&2
      exit 2
      ;;
    *)
      echo "$prog: unknown command '$cmd'" >&2
      usage >&2
      exit 2
      ;;
  esac
}

main "$@"
