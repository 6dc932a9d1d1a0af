#!/usr/bin/env bash
# benches/tls.sh [BINARY] — what TLS costs, side by side in one run: `warren
# perf` against one Warren's plain and TLS listeners (the same process, the
# same certificates), and against one RabbitMQ's plain and TLS listeners
# (interop/tls-reference.sh, on AMQP 5684 / AMQPS 5685 so that it does not
# disturb a reference node the interop suite uses). Scenarios: 1p1c autoack
# 16 B, confirms + acks 16 B, 1p1c autoack 4 KiB, 10p10c autoack 16 B; RUNS
# rounds interleaved; medians of publish rate and broker CPU per message.
# A benchmark, not a test: it never fails on a number.
#   RUNS=3 DUR=5 benches/tls.sh target/release/warren
#   ONLY="a d" ...   (some scenarios only)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
BIN=$(realpath "${1:-target/release/warren}")
RUNS=${RUNS:-3}; DUR=${DUR:-5}
OUT=$(mktemp -d /tmp/warren-tls-bench-XXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

bash "$here/../interop/tls-certs.sh" "$OUT/tls" >/dev/null
PLAIN=$(free_port); TLS=$(free_port)
"$BIN" --bind 127.0.0.1 --port "$PLAIN" --tls-port "$TLS" --tls-cert "$OUT/tls/server.pem" --tls-key "$OUT/tls/server.key" \
  --management-port 0 --prometheus-port 0 --log-level error --data-dir "$OUT/data" >"$OUT/warren.log" 2>&1 &
PW=$!
export AMQP_PORT=5684 AMQPS_PORT=5685
trap 'kill -9 $PW 2>/dev/null; bash "$here/../interop/tls-reference.sh" stop >/dev/null 2>&1; rm -rf "$OUT"' EXIT
eval "$(timeout 300 bash "$here/../interop/tls-reference.sh" start 2>"$OUT/rabbitmq-start.log")" || { cat "$OUT/rabbitmq-start.log" >&2; exit 1; }
RABBIT_CA=$TLS_CA_FILE
# The node's name is not on beam's command line: find it by its port.
PR=$(ss -ltnpH "sport = :$AMQP_PORT" | grep -o 'pid=[0-9]*' | head -1 | cut -d= -f2)
sleep 1

declare -A SC=(
  [a]="--producers 1 --consumers 1 --size 16 --autoack"
  [b]="--producers 1 --consumers 1 --size 16 --prefetch 1000 --confirm 1000"
  [d]="--producers 1 --consumers 1 --size 4096 --autoack"
  [e]="--producers 10 --consumers 10 --queues 10 --size 16 --autoack"
)
for r in $(seq "$RUNS"); do
  for s in ${ONLY:-a b d e}; do
    for b in warren warren-tls rabbitmq rabbitmq-tls; do
      case $b in
        warren) uri="amqp://guest:guest@127.0.0.1:$PLAIN/%2f" pid=$PW tls=() ;;
        warren-tls) uri="amqps://guest:guest@localhost:$TLS/%2f" pid=$PW tls=(--tls-ca "$OUT/tls/ca.pem") ;;
        rabbitmq) uri="amqp://guest:guest@127.0.0.1:$AMQP_PORT/%2f" pid=$PR tls=() ;;
        rabbitmq-tls) uri="amqps://guest:guest@localhost:$AMQPS_PORT/%2f" pid=$PR tls=(--tls-ca "$RABBIT_CA") ;;
      esac
      # shellcheck disable=SC2086
      timeout -k 5 $((DUR + 60)) "$BIN" perf --json --quiet ${SC[$s]} --duration "$DUR" --warmup 1 \
        --uri "$uri" "${tls[@]}" --pid "$pid" --queue-prefix "tls-$s-$r" \
        >"$OUT/$s.$b.$r.json" 2>"$OUT/$s.$b.$r.err" || true
    done
  done
done
python3 - "$OUT" "$RUNS" <<'PY'
import json, statistics, sys, os
out, runs = sys.argv[1], int(sys.argv[2])
names = {"a": "1p1c autoack 16 B", "b": "confirms + acks 16 B", "d": "1p1c autoack 4 KiB", "e": "10p10c 16 B"}
brokers = ("warren", "warren-tls", "rabbitmq", "rabbitmq-tls")
print("| scenario | Warren msg/s | Warren TLS msg/s | RabbitMQ msg/s | RabbitMQ TLS msg/s | Warren TLS/plain | Warren TLS / RabbitMQ TLS | µs CPU/msg Warren · Warren TLS · RabbitMQ · RabbitMQ TLS |")
print("|---|---:|---:|---:|---:|---:|---:|---|")
for s, name in names.items():
    if not os.path.exists(os.path.join(out, f"{s}.warren.1.json")):
        continue
    med = {}
    for b in brokers:
        rates, cpus = [], []
        for r in range(1, runs + 1):
            try:
                j = json.loads([l for l in open(os.path.join(out, f"{s}.{b}.{r}.json")) if l.startswith("{")][-1])
                rates.append(j.get("publish_rate") or 0); cpus.append(j.get("broker_cpu_us_per_msg") or 0)
            except Exception:
                pass
        med[b] = (statistics.median(rates) if rates else 0, statistics.median(cpus) if cpus else 0)
    ratio = lambda a, b: f"{a / b:.2f}×" if b else "?"
    print(f"| {name} | " + " | ".join(f"{med[b][0]:,.0f}" for b in brokers) + " | "
          f"{ratio(med['warren-tls'][0], med['warren'][0])} | {ratio(med['warren-tls'][0], med['rabbitmq-tls'][0])} | "
          + " · ".join(f"{med[b][1]:.2f}" for b in brokers) + " |")
PY
