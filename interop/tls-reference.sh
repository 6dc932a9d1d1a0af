#!/usr/bin/env bash
# tls-reference.sh: a reference RabbitMQ (Debian's rabbitmq-server) with an
# AMQPS listener, to validate the interop suite's TLS scenarios and to run
# `warren perf` against RabbitMQ over TLS. Modelled on
# /work/shared/tools/reference-rabbitmq (which has no TLS), on other ports:
#
#   tls-reference.sh start   make certificates (tls-certs.sh), start the node, wait until ready,
#                            and print the environment for run.sh (AMQP_URL, AMQPS_URL, TLS_*)
#   tls-reference.sh env     print that environment again (e.g. eval "$(tls-reference.sh env)")
#   tls-reference.sh stop    stop the node
#   tls-reference.sh ctl ARGS...   rabbitmqctl against it
#
# Ports: AMQP 5674, AMQPS 5675, management 15674, distribution 25674
# (AMQP_PORT, AMQPS_PORT override the first two). The listener verifies
# peers against the CA (verify_peer) without requiring a certificate
# (fail_if_no_peer_cert = false); PLAIN, AMQPLAIN and EXTERNAL
# (rabbitmq_auth_mechanism_ssl, user name = the certificate's subject DN,
# "CN=alice,O=Warren tests", created passwordless) are offered.
# State and certificates live under /tmp/tls-reference-rabbitmq-PORT,
# wiped at each start.
#
#   bash interop/tls-reference.sh start
#   eval "$(bash interop/tls-reference.sh env)"; bash interop/run.sh tls
#   bash interop/tls-reference.sh stop
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cmd=${1:-}
port=${AMQP_PORT:-5674}
tls_port=${AMQPS_PORT:-5675}
[[ $port =~ ^[0-9]+$ && $tls_port =~ ^[0-9]+$ ]] || { echo "tls-reference.sh: ports must be numbers" >&2; exit 2; }
node="tlsref$port@localhost"
base=/tmp/tls-reference-rabbitmq-$port
external_user="CN=alice,O=Warren tests"

ctl() { rabbitmqctl -n "$node" "$@"; }

install() {
  command -v rabbitmq-server >/dev/null && return
  echo "installing rabbitmq-server from Debian's packages..." >&2
  apt-get update -qq >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq rabbitmq-server >/dev/null
}

print_env() {
  [[ -f $base/tls/ca.pem ]] || { echo "tls-reference.sh: not started (no $base/tls)" >&2; exit 1; }
  cat <<EOF
export AMQP_URL='amqp://guest:guest@127.0.0.1:$port/%2f'
export AMQPS_URL='amqps://guest:guest@localhost:$tls_port/%2f'
export TLS_CA_FILE='$base/tls/ca.pem' TLS_OTHER_CA_FILE='$base/tls/other-ca.pem'
export TLS_CLIENT_CERT='$base/tls/client.pem' TLS_CLIENT_KEY='$base/tls/client.key'
export TLS_EXTERNAL_USER='$external_user'
EOF
}

start() {
  install
  if ctl -q status >/dev/null 2>&1; then
    echo "already running" >&2
    print_env
    return
  fi
  rm -rf "$base" && mkdir -p "$base"
  bash "$here/tls-certs.sh" "$base/tls" >/dev/null
  cat >"$base/rabbitmq.conf" <<EOF
listeners.tcp.default = 127.0.0.1:$port
listeners.ssl.default = 127.0.0.1:$tls_port
ssl_options.cacertfile = $base/tls/ca.pem
ssl_options.certfile = $base/tls/server.pem
ssl_options.keyfile = $base/tls/server.key
ssl_options.verify = verify_peer
ssl_options.fail_if_no_peer_cert = false
ssl_options.versions.1 = tlsv1.3
ssl_options.versions.2 = tlsv1.2
auth_mechanisms.1 = PLAIN
auth_mechanisms.2 = AMQPLAIN
auth_mechanisms.3 = EXTERNAL
management.tcp.ip = 127.0.0.1
management.tcp.port = $((port + 10000))
loopback_users = none
EOF
  echo '[rabbitmq_management,rabbitmq_auth_mechanism_ssl].' >"$base/enabled_plugins"
  # Debian's wrapper runs the node as the rabbitmq user
  id rabbitmq >/dev/null 2>&1 && chown -R rabbitmq:rabbitmq "$base"
  export RABBITMQ_NODENAME=$node RABBITMQ_NODE_PORT=$port RABBITMQ_DIST_PORT=$((port + 20000)) \
    RABBITMQ_CONFIG_FILE=$base/rabbitmq RABBITMQ_ENABLED_PLUGINS_FILE=$base/enabled_plugins \
    RABBITMQ_MNESIA_BASE=$base/mnesia RABBITMQ_LOG_BASE=$base/log RABBITMQ_PID_FILE=$base/pid
  setsid rabbitmq-server >"$base/stdout.log" 2>&1 < /dev/null &
  local pid=$!
  for _ in $(seq 1 120); do
    kill -0 "$pid" 2>/dev/null || break
    if ctl -q await_startup --timeout 1 >/dev/null 2>&1; then
      # The EXTERNAL user: no password, everything on /.
      ctl -q add_user "$external_user" "unused-$RANDOM$RANDOM" >/dev/null
      ctl -q clear_password "$external_user" >/dev/null
      ctl -q set_permissions -p / "$external_user" '.*' '.*' '.*' >/dev/null
      echo "ready: amqp://guest:guest@127.0.0.1:$port/  amqps://guest:guest@localhost:$tls_port/  CA $base/tls/ca.pem  management http://127.0.0.1:$((port + 10000))/" >&2
      print_env
      return
    fi
    sleep 0.5
  done
  echo "tls-reference.sh: node did not start; see $base/stdout.log and $base/log" >&2
  exit 1
}

case $cmd in
  start) start ;;
  env) print_env ;;
  stop) ctl -q stop >/dev/null 2>&1 || true; echo "stopped $node" ;;
  ctl) shift; ctl "$@" ;;
  *) sed -n '2,25p' "$0"; exit 2 ;;
esac
