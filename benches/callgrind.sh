#!/usr/bin/env bash
# benches/callgrind.sh [BINARY] — the broker's instructions per message,
# counted by valgrind's callgrind: a number machine noise does not move, so
# a regression on the hot path shows as a number.
#
# The broker runs under callgrind, in memory, on a loopback port. Once it
# is ready its counters are zeroed (callgrind_control -z); `warren perf`
# (native, not under valgrind) then sends MESSAGES messages per scenario at
# a fixed RATE, the counters are dumped (callgrind_control -d), and the
# instructions of that window are divided by the messages sent. Idle work
# in the window (timers, the 1 s stats tick) is included; at RATE 20k/s it
# is a few percent of the count.
#
# Scenarios (SCENARIOS, space-separated; default all):
#   autoack   1p1c 16 B, no-ack consumer
#   ack       1p1c 16 B, confirms (window 1000) + manual ack, prefetch 1000
#   fanout10  1 producer, fanout to 10 queues with a consumer each (per delivery)
#
#   MESSAGES=100000 RATE=20000 bash benches/callgrind.sh
# Keep the per-scenario report in docs/BENCHMARKS.md. Takes ~1 min per
# scenario. A benchmark, not a test: it never fails on a number.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/.." && pwd)
bin=$(realpath "${1:-$root/target/release/warren}")
[[ -x $bin ]] || { echo "callgrind: no binary at $bin (cargo build --release)" >&2; exit 2; }
command -v valgrind >/dev/null || { echo "callgrind: valgrind is missing (apt-get install valgrind)" >&2; exit 2; }
messages=${MESSAGES:-100000}
rate=${RATE:-20000}
scenarios=${SCENARIOS:-autoack ack fanout10}
work=$(mktemp -d /tmp/warren-callgrind.XXXXXX)
vg_pid=""
cleanup() {
  if [[ -n $vg_pid ]] && kill -0 "$vg_pid" 2>/dev/null; then
    kill -TERM "$vg_pid" 2>/dev/null || true
    wait "$vg_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
valgrind --tool=callgrind --callgrind-out-file="$work/cg.%p" --dump-instr=no \
  "$bin" --in-memory --bind 127.0.0.1 --port "$port" --port-file "$work/port" \
  --management-port 0 --prometheus-port 0 --log-level warn >"$work/broker.log" 2>&1 &
vg_pid=$!
for _ in $(seq 600); do [[ -s $work/port ]] && break; sleep 0.1; done
[[ -s $work/port ]] || { echo "callgrind: the broker did not start under valgrind:" >&2; tail "$work/broker.log" >&2; exit 1; }
uri="amqp://guest:guest@127.0.0.1:$port/%2f"

# Instructions in the counters' current window: dump, then read the total
# of the newest dump file.
dump_total() {
  callgrind_control -d "$vg_pid" >/dev/null 2>&1
  local f
  f=$(ls -t "$work"/cg.* | head -n 1)
  awk '/^(summary|totals):/ { print $2; exit }' "$f"
}

printf '%-10s %12s %14s %12s\n' scenario messages instructions "Ir/message"
for s in $scenarios; do
  case $s in
    autoack) args=(--autoack) ; per=1 ;;
    ack) args=(--confirm 1000 --prefetch 1000) ; per=1 ;;
    fanout10) args=(--exchange-type fanout --queues 10 --consumers 10 --autoack) ; per=10 ;;
    *) echo "callgrind: unknown scenario '$s'" >&2; exit 2 ;;
  esac
  duration=$(( (messages + rate - 1) / rate ))
  callgrind_control -z "$vg_pid" >/dev/null 2>&1
  out=$("$bin" perf --uri "$uri" --duration "$duration" --warmup 0 --rate "$rate" --drain-timeout 30 \
    --queue-prefix "cg-$s" "${args[@]}" 2>&1)
  total=$(dump_total)
  sent=$(sed -nE 's/.*messages +sent ([0-9]+), received ([0-9]+).*/\1 \2/p' <<<"$out")
  read -r n_sent n_received <<<"$sent"
  [[ -n ${n_sent:-} ]] || { echo "callgrind: warren perf said:" >&2; echo "$out" >&2; exit 1; }
  deliveries=$n_received
  [[ $per -eq 1 ]] && deliveries=$n_sent
  awk -v s="$s" -v n="$deliveries" -v t="$total" 'BEGIN { printf "%-10s %12d %14d %12.0f\n", s, n, t, t / n }'
done
