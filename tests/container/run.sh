#!/usr/bin/env bash
# The container contract (Dockerfile, docker/entrypoint.sh) without a Docker
# daemon, as CI (root, Debian) can run it:
#   1. the Dockerfile, statically: what it copies exists and is in the build
#      context, it names the entrypoint tested here, its ports, volume, CMD
#      and tool symlinks;
#   2. docker/entrypoint.sh itself, run the way a container runs it: in a
#      private mount and UTS namespace (unshare), with tmpfs over
#      /etc/rabbitmq and /var/lib/rabbitmq and an overlay over /usr/local/bin
#      laid out as the Dockerfile lays out the image, a clean environment and
#      PATH, the image's user (uid 999), loopback ports. The host's files (Debian's rabbitmq-server owns
#      /etc/rabbitmq on CI) are never touched. It asserts what Testcontainers
#      and compose files see: the log line, the RABBITMQ_DEFAULT_* login,
#      definitions from /etc/rabbitmq/definitions.json, enabled_plugins
#      accepted, rabbitmqctl / rabbitmq-diagnostics / rabbitmqadmin /
#      rabbitmq-plugins through their symlinks, data kept in /var/lib/rabbitmq
#      across a restart under another hostname, RABBITMQ_CONFIG_FILE, args
#      after rabbitmq-server or alone, other commands exec'ed, and SIGTERM
#      stopping the broker with exit 0.
# Usage: WARREN_BIN=target/release/warren bash tests/container/run.sh
# (CONTAINER_LOGS=DIR keeps each start's log there.)
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin=${WARREN_BIN:-$root/target/release/warren}
status=0
fail() { echo "container: FAILED: $*" >&2; status=1; }
ok() { echo "ok - $*"; }
tools_wanted="rabbitmq-diagnostics rabbitmq-plugins rabbitmqadmin rabbitmqctl"
dockerfile=$root/Dockerfile

# The tools the Dockerfile symlinks to warren (its `for tool in ...` line).
dockerfile_tools() { sed -n 's/.*for tool in \(.*\); do.*/\1/p' "$dockerfile" | tr ' ' '\n' | sort | xargs; }

if [[ ${1:-} != --inside ]]; then
  [[ -x $bin ]] || { echo "container: no Warren binary at $bin" >&2; exit 2; }
  echo "== Dockerfile, statically"
  [[ -f $dockerfile ]] || { echo "container: no Dockerfile" >&2; exit 1; }
  # COPY sources (not --from) exist and are let through .dockerignore.
  while read -r -a words; do
    srcs=("${words[@]:1:${#words[@]}-2}")
    for src in "${srcs[@]}"; do
      [[ $src == --* ]] && continue
      [[ -e $root/$src ]] || fail "Dockerfile copies $src, which does not exist"
      top=${src%%/*}
      grep -qx "!$top" "$root/.dockerignore" || fail ".dockerignore leaves $top out of the build context"
    done
  done < <(grep -E '^COPY ' "$dockerfile" | grep -v -- '--from=')
  grep -q -- '--bin warren' "$dockerfile" && grep -q '^COPY --from=builder /src/target/release/warren /usr/local/bin/warren$' "$dockerfile" \
    || fail "Dockerfile does not build and copy the warren binary"
  grep -qx 'ENTRYPOINT \["docker-entrypoint.sh"\]' "$dockerfile" \
    && grep -qx 'COPY docker/entrypoint.sh /usr/local/bin/docker-entrypoint.sh' "$dockerfile" \
    || fail "Dockerfile's ENTRYPOINT is not docker/entrypoint.sh"
  grep -qx 'CMD \["rabbitmq-server"\]' "$dockerfile" || fail "Dockerfile's CMD is not rabbitmq-server"
  grep -qx 'VOLUME /var/lib/rabbitmq' "$dockerfile" || fail "Dockerfile has no VOLUME /var/lib/rabbitmq"
  for p in 5672 5671 15672 15692; do
    grep -Eq "^EXPOSE( [0-9]+)* $p( |$)" "$dockerfile" || fail "Dockerfile does not EXPOSE $p"
  done
  grep -qx 'USER rabbitmq' "$dockerfile" && grep -q -- '--uid 999 ' "$dockerfile" \
    || fail "Dockerfile does not run as rabbitmq, uid 999 (the test runs the entrypoint as 999)"
  [[ $(dockerfile_tools) == "$tools_wanted" ]] || fail "Dockerfile symlinks '$(dockerfile_tools)', want '$tools_wanted'"
  [[ -x $root/docker/entrypoint.sh ]] || fail "docker/entrypoint.sh is not executable"
  dash -n "$root/docker/entrypoint.sh" || fail "docker/entrypoint.sh is not valid POSIX sh (dash -n)"
  if command -v shellcheck >/dev/null; then
    shellcheck -s sh "$root/docker/entrypoint.sh" || fail "shellcheck docker/entrypoint.sh"
  fi
  [[ $status -eq 0 ]] && ok "Dockerfile: copies, context, entrypoint, CMD, VOLUME, EXPOSE, tools"

  [[ $(id -u) -eq 0 ]] || { echo "container: needs root for unshare --mount" >&2; exit 2; }
  # Mount points must exist; make (and later remove) empty ones if the host has none.
  created=()
  for d in /etc/rabbitmq /var/lib/rabbitmq; do
    [[ -e $d ]] || { mkdir "$d" && created+=("$d"); }
  done
  remove_created() { for d in ${created[@]+"${created[@]}"}; do rmdir "$d" 2>/dev/null; done; true; }
  trap remove_created EXIT
  # The host's config (nothing else writes there), and the names in its data
  # directory (a leak would add definitions.json, queues, lock).
  host_files() {
    { find /etc/rabbitmq -printf '%p %s %T@\n'; find /var/lib/rabbitmq -maxdepth 1 -printf '%p\n'; } 2>/dev/null | sort | sha256sum
  }
  before=$(host_files)
  WARREN_BIN=$(realpath "$bin") timeout 300 unshare --mount --uts --propagation private bash "$0" --inside || status=1
  [[ $(host_files) == "$before" ]] && ok "the host's /etc/rabbitmq and /var/lib/rabbitmq are unchanged" \
    || fail "the host's /etc/rabbitmq or /var/lib/rabbitmq changed"
  [[ $status -eq 0 ]] && echo "container: all passed" || echo "container: FAILED" >&2
  exit $status
fi

# ---- inside the private namespace from here on ----
python=$(command -v python3)
work=$(mktemp -d)
pid=""
stop_broker() {
  [[ -n $pid ]] || return 0
  kill -KILL "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
  pid=""
}
cleanup() {
  stop_broker
  # A broker the entrypoint failed to exec outlives the PID we know: any
  # warren left in this private mount namespace was started by this script.
  local ns p
  ns=$(readlink /proc/self/ns/mnt)
  for p in /proc/[0-9]*; do
    [[ $(readlink "$p/ns/mnt" 2>/dev/null) == "$ns" && $(readlink -f "$p/exe" 2>/dev/null) == "$(readlink -f "$WARREN_BIN")" ]] \
      && kill -KILL "${p#/proc/}" 2>/dev/null
  done
  umount /usr/local/bin 2>/dev/null
  umount "$work/ovl" 2>/dev/null
  [[ -n ${CONTAINER_LOGS:-} ]] && mkdir -p "$CONTAINER_LOGS" && cp "$work"/*.log "$CONTAINER_LOGS/"
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# The image's layout, replayed from the Dockerfile: tmpfs for its /etc/rabbitmq
# and volume, an overlay over /usr/local/bin (the host's files stay below,
# unchanged), the binary, its tool symlinks and the COPY'd files.
# Owned by the image's user, uid 999, as its RUN chown leaves them.
mount -t tmpfs -o mode=0755,uid=999,gid=999 tmpfs /etc/rabbitmq || exit 1
mount -t tmpfs -o mode=0755,uid=999,gid=999 tmpfs /var/lib/rabbitmq || exit 1
chmod 0755 "$work" && mkdir -m 1777 "$work/tmp"
mkdir "$work/ovl" && mount -t tmpfs tmpfs "$work/ovl" && mkdir "$work/ovl/upper" "$work/ovl/work" || exit 1
mount -t overlay overlay -o "lowerdir=/usr/local/bin,upperdir=$work/ovl/upper,workdir=$work/ovl/work" /usr/local/bin || exit 1
mkdir -p /etc/rabbitmq/conf.d
rm -f /usr/local/bin/warren && ln -s "$WARREN_BIN" /usr/local/bin/warren
for tool in $(dockerfile_tools); do
  rm -f "/usr/local/bin/$tool" && ln -s warren "/usr/local/bin/$tool"
done
while read -r _ src dest; do
  install -D -m "$(stat -c %a "$root/$src")" "$root/$src" "$dest"
done < <(grep -E '^COPY docker/' "$dockerfile")

# Four distinct free loopback ports (all bound at once, then released).
read -r amqp http prom http2 < <("$python" -c '
import socket
socks = [socket.socket() for _ in range(4)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*(s.getsockname()[1] for s in socks))')
user=tc-user pass=tc-pass vhost=tc-vhost

cat >/etc/rabbitmq/rabbitmq.conf <<EOF
management.tcp.port = $http
management.tcp.ip = 127.0.0.1
prometheus.tcp.port = $prom
load_definitions = /etc/rabbitmq/definitions.json
EOF
cat >/etc/rabbitmq/definitions.json <<EOF
{"vhosts": [{"name": "$vhost"}],
 "queues": [{"name": "from-definitions", "vhost": "$vhost", "durable": true, "auto_delete": false, "arguments": {}}],
 "exchanges": [{"name": "from-definitions-x", "vhost": "$vhost", "type": "topic", "durable": true,
                "auto_delete": false, "internal": false, "arguments": {}}],
 "bindings": []}
EOF
echo '[rabbitmq_management,rabbitmq_prometheus,rabbitmq_shovel].' >/etc/rabbitmq/enabled_plugins

# What `docker run -e ...` gives the container: this environment and nothing
# else (env -i), the image's PATH and ENV lines.
container_env=(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
  RABBITMQ_DEFAULT_USER=$user RABBITMQ_DEFAULT_PASS=$pass RABBITMQ_DEFAULT_VHOST=$vhost
  RABBITMQ_NODE_PORT=$amqp WARREN_BIND=127.0.0.1 TMPDIR=$work/tmp)
while read -r _ kv; do container_env+=("$kv"); done < <(grep -E '^ENV [A-Z_]+=[^ ]+$' "$dockerfile")
# What `docker exec` runs with: the container's environment. The management
# port is not 15672 here, so the tools are told where it is.
cexec() { timeout 10 "${container_env[@]}" WARREN_MANAGEMENT_URL="http://127.0.0.1:$http" "$@"; }

log=""
# start NAME [ENV=VALUE...] -- [ARGS...]: hostname NAME, the entrypoint with ARGS.
start() {
  local name=$1 extra=()
  shift
  while [[ $# -gt 0 && $1 != -- ]]; do extra+=("$1"); shift; done
  [[ ${1:-} == -- ]] && shift
  hostname "$name"
  log=$work/$name.log
  # As the image's USER (rabbitmq, uid 999); setpriv and env exec, so $! is the broker.
  setpriv --reuid 999 --regid 999 --clear-groups \
    "${container_env[@]}" HOSTNAME="$name" ${extra[@]+"${extra[@]}"} docker-entrypoint.sh "$@" >"$log" 2>&1 &
  pid=$!
  local t0=$EPOCHREALTIME
  for _ in $(seq 200); do
    grep -Eq '.*Server startup complete.*' "$log" && break
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if ! grep -Eq '.*Server startup complete.*' "$log"; then
    fail "$name: no 'Server startup complete' line"
    tail -n 30 "$log" >&2
    return 1
  fi
  local ms
  ms=$("$python" -c "print(round(($EPOCHREALTIME - $t0) * 1000))")
  ok "$name: log line matching .*Server startup complete.* (seen after ~${ms} ms, a 50 ms poll; hostname $(hostname))"
  [[ $(readlink -f "/proc/$pid/exe") == "$(readlink -f "$WARREN_BIN")" ]] \
    && ok "$name: the entrypoint exec'ed the broker (PID $pid is warren)" \
    || fail "$name: PID $pid is $(readlink -f "/proc/$pid/exe"), not warren"
  local uid
  uid=$(awk '/^Uid:/ {print $2}' "/proc/$pid/status")
  [[ $uid == 999 ]] || fail "$name: the broker runs as uid $uid, not 999"
}

# sigterm NAME: docker stop's SIGTERM; the broker must exit 0 within 10 s.
sigterm() {
  local name=$1 code=""
  kill -TERM "$pid"
  for _ in $(seq 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    fail "$name: still running 10 s after SIGTERM"
    stop_broker
    return
  fi
  wait "$pid"
  code=$?
  pid=""
  [[ $code -eq 0 ]] && ok "$name: SIGTERM stopped it with exit 0" || fail "$name: exit $code after SIGTERM"
}

login() { timeout 10 "$python" "$here/amqp_login.py" "$amqp" "$@"; }

echo "== first start, hostname warren-a"
if start warren-a; then
  grep -q "enabled_plugins lists: rabbitmq_management, rabbitmq_prometheus, rabbitmq_shovel" "$log" \
    && ok "enabled_plugins read and logged" || fail "enabled_plugins not mentioned in the log"
  grep -q "config files, in order: /etc/rabbitmq/rabbitmq.conf /etc/rabbitmq/conf.d/10-defaults.conf" "$log" \
    && ok "rabbitmq.conf and conf.d/10-defaults.conf read" || fail "config files not read as expected"
  login "$user" "$pass" "$vhost" || fail "AMQP login with RABBITMQ_DEFAULT_USER/PASS on RABBITMQ_DEFAULT_VHOST"
  login "$user" wrong "$vhost" >/dev/null 2>&1 && fail "a wrong password logged in"
  out=$(cexec rabbitmqctl list_queues -q -p "$vhost" name) && grep -qx from-definitions <<<"$out" \
    && ok "rabbitmqctl list_queues: the queue from /etc/rabbitmq/definitions.json" \
    || fail "rabbitmqctl list_queues: $out"
  cexec rabbitmq-diagnostics check_running >/dev/null && ok "rabbitmq-diagnostics check_running" \
    || fail "rabbitmq-diagnostics check_running"
  cexec rabbitmq-diagnostics -q ping >/dev/null && ok "rabbitmq-diagnostics -q ping" || fail "rabbitmq-diagnostics ping"
  cexec rabbitmqadmin -V "$vhost" declare queue name=kept durable=true >/dev/null \
    && cexec rabbitmqadmin -V "$vhost" declare exchange name=tc-x type=fanout >/dev/null \
    || fail "rabbitmqadmin declare"
  out=$(cexec rabbitmqadmin -V "$vhost" list queues) && grep -q '| from-definitions ' <<<"$out" \
    && grep -q '| kept ' <<<"$out" && ok "rabbitmqadmin declare queue/exchange, list queues" \
    || fail "rabbitmqadmin list queues: $out"
  cexec rabbitmq-plugins list >/dev/null && cexec rabbitmq-plugins enable rabbitmq_management >/dev/null \
    && ok "rabbitmq-plugins list, enable rabbitmq_management" || fail "rabbitmq-plugins"
  curl -sf -u "$user:$pass" -X POST -H 'content-type: application/json' \
    -d '{"routing_key":"kept","payload":"survives","payload_encoding":"string","properties":{"delivery_mode":2}}' \
    "http://127.0.0.1:$http/api/exchanges/$vhost/amq.default/publish" | grep -q '"routed":true' \
    || fail "publishing a persistent message over the management API"
  curl -sf "http://127.0.0.1:$prom/metrics" | grep -q '^rabbitmq_' && ok "Prometheus metrics on prometheus.tcp.port" \
    || fail "GET /metrics"
  [[ -n $(ls -A /var/lib/rabbitmq) ]] && ok "data written to /var/lib/rabbitmq: $(ls -A /var/lib/rabbitmq | xargs)" \
    || fail "nothing in /var/lib/rabbitmq"
  sigterm warren-a
fi

echo "== restart, hostname warren-b: same volume"
if start warren-b; then
  out=$(cexec rabbitmqctl list_queues -q -p "$vhost" name messages durable)
  grep -Eq '^kept[[:space:]]+1[[:space:]]+true$' <<<"$out" \
    && ok "the durable queue and its persistent message survived the rename" \
    || fail "after restart under another hostname: $out"
  cexec rabbitmqadmin -V "$vhost" list exchanges name | grep -q '| tc-x ' \
    || fail "the declared exchange did not survive the restart"
  login "$user" "$pass" "$vhost" >/dev/null || fail "login after the restart"
  sigterm warren-b
fi

echo "== RABBITMQ_CONFIG_FILE (no .conf), args after rabbitmq-server"
printf 'management.tcp.port = %s\nmanagement.tcp.ip = 127.0.0.1\n' "$http2" >/etc/rabbitmq/alternative.conf
if start warren-c RABBITMQ_CONFIG_FILE=/etc/rabbitmq/alternative -- rabbitmq-server --prometheus-port 0; then
  curl -sf -u "$user:$pass" "http://127.0.0.1:$http2/api/overview" >/dev/null \
    && ok "RABBITMQ_CONFIG_FILE replaced rabbitmq.conf (management on its port)" \
    || fail "the management API is not on RABBITMQ_CONFIG_FILE's port"
  grep -q 'Prometheus metrics on' "$log" && fail "--prometheus-port 0 after rabbitmq-server was not passed on" \
    || ok "arguments after rabbitmq-server reach the broker"
  sigterm warren-c
fi

echo "== leading flags without rabbitmq-server"
if start warren-d -- --prometheus-port 0; then
  grep -q 'Prometheus metrics on' "$log" && fail "--prometheus-port 0 as the first argument was not passed on" \
    || ok "flags as the first arguments reach the broker"
  sigterm warren-d
fi

echo "== other commands are exec'ed, as in the official image"
out=$(timeout 10 "${container_env[@]}" docker-entrypoint.sh sh -c 'echo "passed through as $0"' here)
[[ $out == "passed through as here" ]] && ok "docker-entrypoint.sh CMD... runs CMD" || fail "pass-through: $out"
out=$(timeout 10 "${container_env[@]}" RABBITMQ_CONFIG_FILE=/etc/rabbitmq/missing docker-entrypoint.sh 2>&1)
code=$?
[[ $code -eq 1 && $out == *"RABBITMQ_CONFIG_FILE=/etc/rabbitmq/missing: no such file"* ]] \
  && ok "a missing RABBITMQ_CONFIG_FILE is an error (exit 1)" || fail "missing RABBITMQ_CONFIG_FILE: exit $code: $out"

[[ $status -ne 0 ]] && [[ -n $log ]] && { echo "container: last broker log:" >&2; tail -n 30 "$log" >&2; }
exit $status
