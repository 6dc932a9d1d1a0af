#!/usr/bin/env bash
# End-to-end browser test of the management web UI.
#
#   tests/ui/run.sh                       against Warren ($WARREN_BIN, default target/release/warren)
#   UI_TARGET=reference tests/ui/run.sh   against the reference RabbitMQ (127.0.0.1:5673 / :15673),
#                                         the UI served by tests/ui/devserver.py; the peek step is skipped
#
# Screenshots go to $UI_SCREENSHOTS (default target/ui-screenshots/).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
ui=$root/tests/ui

if [[ ! -x /usr/bin/chromium ]]; then
  echo "run.sh: installing chromium..." >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium) >/dev/null
fi
if [[ ! -d $ui/node_modules/playwright-core ]]; then
  echo "run.sh: installing playwright-core..." >&2
  (cd "$ui" && npm ci --no-audit --no-fund --silent)
fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

pids=()
logdir=$(mktemp -d)
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$logdir"
}
trap cleanup EXIT

if [[ ${UI_TARGET:-warren} == reference ]]; then
  ref=/work/shared/tools/reference-rabbitmq
  if ! curl -sf -u guest:guest http://127.0.0.1:15673/api/overview >/dev/null; then
    "$ref" start >&2   # started if not running; never stopped here (it is shared)
  fi
  http_port=$(free_port)
  python3 "$ui/devserver.py" --port "$http_port" --target http://127.0.0.1:15673 >"$logdir/server.log" 2>&1 &
  pids+=($!)
  amqp_port=5673
  peek=0
else
  bin=${WARREN_BIN:-target/release/warren}
  [[ -x $bin ]] || { echo "run.sh: no Warren binary at $bin (set WARREN_BIN or build with cargo build --release)" >&2; exit 2; }
  amqp_port=$(free_port)
  http_port=$(free_port)
  while [[ $http_port == "$amqp_port" ]]; do http_port=$(free_port); done
  "$bin" --bind 127.0.0.1 --port "$amqp_port" --management-port "$http_port" --prometheus-port 0 --in-memory >"$logdir/server.log" 2>&1 &
  pids+=($!)
  peek=1
fi
base=http://127.0.0.1:$http_port

for _ in $(seq 100); do
  curl -sf -u guest:guest "$base/api/overview" >/dev/null && break
  kill -0 "${pids[0]}" 2>/dev/null || { echo "run.sh: the server exited:" >&2; cat "$logdir/server.log" >&2; exit 1; }
  sleep 0.2
done
curl -sf -u guest:guest "$base/api/overview" >/dev/null || {
  echo "run.sh: $base/api/overview does not answer" >&2; cat "$logdir/server.log" >&2; exit 1; }

export UI_BASE_URL=$base UI_AMQP_PORT=$amqp_port UI_PEEK=$peek
export UI_SCREENSHOTS=${UI_SCREENSHOTS:-$root/target/ui-screenshots}
echo "run.sh: testing the UI at $base (AMQP port $amqp_port, peek=$peek)" >&2
status=0
timeout 300 node "$ui/ui_test.mjs" || status=$?
if (( status != 0 )); then
  echo "run.sh: FAILED (exit $status); server log:" >&2
  tail -n 50 "$logdir/server.log" >&2
fi
exit "$status"
