#!/usr/bin/env bash
# benches/before_after.sh BEFORE AFTER — two Warren binaries and the reference
# RabbitMQ, side by side in one run: `warren perf` (AFTER's) drives scenarios
# a (1p1c autoack), b (confirms + acks), c (persistent 1 KiB), e (10p10c),
# RUNS rounds interleaved, and prints the median publish rate and broker CPU
# per message of each. A benchmark, not a test: it never fails on a number.
#   RUNS=3 DUR=5 benches/before_after.sh /path/warren-old target/release/warren
#   ONLY="c" RUNS=5 ...   (some scenarios only)
#   BEFORE_ARGS / AFTER_ARGS: extra flags for each broker; AFTER_ARGS turns
#   the HTTP listeners off by default (BEFORE_ARGS too, if BEFORE knows the
#   flags), so two brokers never race for 15672 / 15692.
set -euo pipefail
BEFORE=$(realpath "$1"); AFTER=$(realpath "$2")
RUNS=${RUNS:-3}; DUR=${DUR:-5}; SHARED=${SHARED:-$(dirname "$0")/../../shared}
OUT=$(mktemp -d /tmp/warren-before-after-XXXX)
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
start() { # binary name extra-args
  local p; p=$(free_port)
  # shellcheck disable=SC2086
  "$1" --bind 127.0.0.1 --port "$p" --log-level error --data-dir "$OUT/$2-data" $3 >"$OUT/$2.log" 2>&1 &
  echo "$! $p"
}
http_off() { "$1" --help 2>/dev/null | grep -q -- --management-port && echo "--management-port 0 --prometheus-port 0"; true; }
BEFORE_ARGS=${BEFORE_ARGS-$(http_off "$BEFORE")}
AFTER_ARGS=${AFTER_ARGS-$(http_off "$AFTER")}
read -r PB PORTB < <(start "$BEFORE" before "$BEFORE_ARGS")
read -r PA PORTA < <(start "$AFTER" after "$AFTER_ARGS")
trap 'kill -9 $PB $PA 2>/dev/null; rm -rf "$OUT"' EXIT
timeout 300 "$SHARED/tools/reference-rabbitmq" start 5673 >/dev/null
PR=$(pgrep -f "beam.*ref5673" | head -1 || true)
[[ -n $PR ]] || PR=$(timeout 30 "$SHARED/tools/reference-rabbitmq" ctl 5673 eval 'os:getpid().' | tr -dc '0-9')
sleep 1
declare -A SC=(
  [a]="--producers 1 --consumers 1 --size 16 --autoack"
  [b]="--producers 1 --consumers 1 --size 16 --prefetch 1000 --confirm 1000"
  [c]="--producers 1 --consumers 1 --size 1024 --persistent --confirm 1000 --prefetch 1000"
  [e]="--producers 10 --consumers 10 --queues 10 --size 16 --autoack"
)
for r in $(seq "$RUNS"); do
  for s in ${ONLY:-a b c e}; do
    for b in before after rabbitmq; do
      case $b in before) port=$PORTB pid=$PB;; after) port=$PORTA pid=$PA;; rabbitmq) port=5673 pid=$PR;; esac
      # shellcheck disable=SC2086
      timeout -k 5 $((DUR + 60)) "$AFTER" perf --json --quiet ${SC[$s]} --duration "$DUR" --warmup 1 \
        --uri "amqp://guest:guest@127.0.0.1:$port/%2f" --pid "$pid" --queue-prefix "ba-$s-$r" \
        >"$OUT/$s.$b.$r.json" 2>/dev/null || true
    done
  done
done
python3 - "$OUT" "$RUNS" <<'PY'
import json, statistics, sys, os
out, runs = sys.argv[1], int(sys.argv[2])
names = {"a": "1p1c autoack 16 B", "b": "confirms + acks 16 B", "c": "persistent 1 KiB", "e": "10p10c 16 B"}
print("| scenario | before msg/s | after msg/s | RabbitMQ msg/s | after/before | after/RabbitMQ | µs CPU/msg before · after · RabbitMQ |")
print("|---|---:|---:|---:|---:|---:|---|")
for s, name in names.items():
    if not os.path.exists(os.path.join(out, f"{s}.after.1.json")):
        continue
    med = {}
    for b in ("before", "after", "rabbitmq"):
        rates, cpus = [], []
        for r in range(1, runs + 1):
            try:
                j = json.loads([l for l in open(os.path.join(out, f"{s}.{b}.{r}.json")) if l.startswith("{")][-1])
                rates.append(j.get("publish_rate") or 0); cpus.append(j.get("broker_cpu_us_per_msg") or j.get("broker_us_per_msg") or 0)
            except Exception:
                pass
        med[b] = (statistics.median(rates) if rates else 0, statistics.median(cpus) if cpus else 0)
    r = lambda a, b: f"{a / b:.2f}×" if b else "?"
    print(f"| {name} | {med['before'][0]:,.0f} | {med['after'][0]:,.0f} | {med['rabbitmq'][0]:,.0f} | "
          f"{r(med['after'][0], med['before'][0])} | {r(med['after'][0], med['rabbitmq'][0])} | "
          f"{med['before'][1]:.2f} · {med['after'][1]:.2f} · {med['rabbitmq'][1]:.2f} |")
PY
