#!/usr/bin/env bash
# benches/management.sh [BINARY] — what the management API and metrics cost
# on the message path: the same Warren binary twice, "before" with the HTTP
# listeners off and "after" with them on and scraped hard (every second:
# /api/overview, a page of /api/queues, /api/connections, /metrics and
# /metrics/per-object, while the 5 s rate sampler runs), then RabbitMQ, via
# benches/before_after.sh. Broker CPU per message should stay within 5 %.
#   RUNS=5 DUR=5 benches/management.sh target/release/warren
set -euo pipefail
BIN=$(realpath "${1:-target/release/warren}")
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
M=$(free_port); P=$(free_port)
(
  for _ in $(seq 3600); do
    for path in /api/overview "/api/queues?page=1&page_size=100" /api/connections; do
      curl -s -o /dev/null -u guest:guest "http://127.0.0.1:$M$path" || true
    done
    curl -s -o /dev/null "http://127.0.0.1:$P/metrics" || true
    curl -s -o /dev/null "http://127.0.0.1:$P/metrics/per-object" || true
    sleep 1
  done
) &
SCRAPER=$!
trap 'kill $SCRAPER 2>/dev/null' EXIT
BEFORE_ARGS="--management-port 0 --prometheus-port 0" \
AFTER_ARGS="--management-port $M --prometheus-port $P" \
  "$(dirname "$0")/before_after.sh" "$BIN" "$BIN"
