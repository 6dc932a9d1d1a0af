#!/usr/bin/env bash
# The management surface against tools nobody here wrote, as CI runs it:
#   1. Debian's rabbitmqadmin (tests/rabbitmqadmin/scenario.py) against Warren;
#   2. promtool check metrics on /metrics and /metrics/per-object;
#   3. the calls Python test helpers make with `requests`
#      (tests/tools/requests_helpers.py), against Warren and RabbitMQ;
#      the common GETs side by side with the reference RabbitMQ's API
#      (tests/tools/mgmt_diff.py), and tests/management_api.rs against it;
#   4. rabbitmq_http_client's own blocking integration suite
#      (interop/http_client/run.sh, against expected_pass.txt);
#   5. the web UI in headless Chromium (tests/ui/run.sh, screenshots kept in
#      $UI_SCREENSHOTS, default target/ui-screenshots);
#   6. the container contract: the Dockerfile statically, docker/entrypoint.sh
#      run as a container runs it (tests/container/run.sh; root, unshare).
# Installs what it needs (rabbitmq-server via reference-rabbitmq, prometheus
# for promtool, chromium and playwright-core via tests/ui/run.sh).
# Every stage runs; the exit code says whether all passed.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin=${WARREN_BIN:-$root/target/release/warren}
ref="$root/../shared/tools/reference-rabbitmq"
status=0
fail() { echo "tools: FAILED: $*" >&2; status=1; }

[[ -x $bin ]] || { echo "tools: no Warren binary at $bin" >&2; exit 2; }
if ! command -v promtool >/dev/null; then
  echo "tools: installing prometheus (for promtool) from Debian's packages" >&2
  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus) >/dev/null \
    || fail "cannot install prometheus"
fi
timeout 600 bash "$ref" start >&2 || fail "cannot start the reference RabbitMQ"

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
work=$(mktemp -d)
pid=""
cleanup() {
  [[ -n $pid ]] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
  rm -rf "$work"
}
trap cleanup EXIT
amqp=$(free_port); http=$(free_port); prom=$(free_port)
"$bin" --bind 127.0.0.1 --port "$amqp" --management-port "$http" --prometheus-port "$prom" --in-memory \
  --log-level warn >"$work/warren.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sf -u guest:guest "http://127.0.0.1:$http/api/overview" >/dev/null && break
  sleep 0.1
done

echo "== rabbitmqadmin scenario"
timeout 300 python3 "$root/tests/rabbitmqadmin/scenario.py" "$http" || fail "rabbitmqadmin scenario"

echo "== promtool check metrics"
# Some traffic first, so that counters and per-queue families have samples.
curl -sf -u guest:guest -X PUT -d '{}' "http://127.0.0.1:$http/api/queues/%2F/promtool-q" >/dev/null
curl -sf -u guest:guest -X POST -d '{"routing_key":"promtool-q","payload":"x","payload_encoding":"string","properties":{}}' \
  "http://127.0.0.1:$http/api/exchanges/%2F/amq.default/publish" >/dev/null
for path in /metrics /metrics/per-object; do
  if curl -sf "http://127.0.0.1:$prom$path" >"$work/metrics.txt"; then
    if promtool check metrics <"$work/metrics.txt"; then
      echo "ok - promtool accepts $path ($(grep -vc '^#' "$work/metrics.txt") samples)"
    else
      fail "promtool check metrics $path"
    fi
  else
    fail "GET $path"
  fi
done
grep -q '^rabbitmq_queue_messages_ready{vhost="/",queue="promtool-q"} 1$' "$work/metrics.txt" \
  || fail "per-object metrics lack promtool-q's ready count"

echo "== Python requests, as test helpers call the API"
venv="$here/.venv"
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
if ! cmp -s "$here/requirements.txt" "$venv/.installed"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" && cp "$here/requirements.txt" "$venv/.installed"
fi
timeout 120 "$venv/bin/python" "$here/requests_helpers.py" "http://127.0.0.1:$http" "$amqp" || fail "requests helpers"
timeout 120 "$venv/bin/python" "$here/requests_helpers.py" http://127.0.0.1:15673 5673 >/dev/null || fail "requests helpers against RabbitMQ"

echo "== the common GETs against the reference RabbitMQ"
timeout 300 python3 "$here/mgmt_diff.py" "http://127.0.0.1:$http" http://127.0.0.1:15673 || fail "management API differences"
(cd "$root" && WARREN_TEST_URI=amqp://guest:guest@127.0.0.1:5673/%2f WARREN_TEST_MGMT_URL=http://127.0.0.1:15673 \
  timeout 600 cargo nextest run --no-fail-fast --test management_api) || fail "management API tests against the reference"

echo "== rabbitmq_http_client's own blocking suite"
WARREN_BIN="$bin" timeout 900 bash "$root/interop/http_client/run.sh" || fail "rabbitmq_http_client suite"

echo "== web UI in Chromium"
WARREN_BIN="$bin" timeout 600 bash "$root/tests/ui/run.sh" || fail "web UI"

echo "== the container contract (Dockerfile, docker/entrypoint.sh)"
WARREN_BIN="$bin" timeout 360 bash "$root/tests/container/run.sh" || fail "container contract"

if [[ $status -ne 0 ]]; then
  echo "tools: Warren's log:" >&2
  tail -n 50 "$work/warren.log" >&2
fi
exit $status
