#!/usr/bin/env bash
# benches/compare.sh — Warren vs the reference RabbitMQ on the same machine, same load tools.
#
# Builds Warren (release) and amqp-bench, starts Warren on a free loopback port and the
# reference RabbitMQ (../shared/tools/reference-rabbitmq, 127.0.0.1:5673), runs every scenario
# against both, median of $RUNS runs (rounds interleaved), and prints a Markdown table.
# A benchmark, not a test: it never fails on a number. Every step is bounded by `timeout`.
#
#   benches/compare.sh                     # ~15-20 min on 2 cores
#   RUNS=1 DUR=3 ONLY=a,f benches/compare.sh   # quick look at some rows
#   TABLE_ONLY=1 benches/compare.sh        # re-print the table from the last run's $OUT/runs
#
# Env: RUNS (3), DUR publish seconds per throughput run (6), ONLY (comma list of a..i),
#      OUT (target/bench-compare), BACKLOG (1000000), CONNS (1000), SHARED (../shared: where
#      tools/amqp-bench and tools/reference-rabbitmq live). Honours CARGO_TARGET_DIR for Warren.
# Scenarios:
#   a 1p1c 16 B autoack, no confirms            b 1p1c 16 B manual ack prefetch 1000 + confirms 1000
#   c 1p1c 1 KiB persistent, durable queue, confirms 1000, manual ack prefetch 1000
#   d fanout to 10 queues, 10 consumers, 16 B   e 10 producers, 10 consumers, 10 queues, 16 B
#   f latency at a fixed 10,000 msg/s, 1p1c     g start to first AMQP handshake (amqp-bench startup)
#   h idle RSS and RSS per idle connection      i RSS per queued 16 B message, backlog of $BACKLOG
# a-f run with both `warren perf` and amqp-bench; g-i with amqp-bench's startup/backlog modes.
set -euo pipefail
cd "$(dirname "$0")/.."

RUNS=${RUNS:-3}
DUR=${DUR:-6}
ONLY=${ONLY:-a,b,c,d,e,f,g,h,i}
OUT=$(realpath -m "${OUT:-target/bench-compare}")
BACKLOG=${BACKLOG:-1000000}
CONNS=${CONNS:-1000}
SHARED=${SHARED:-../shared}
REF=$SHARED/tools/reference-rabbitmq
RMQ_PORT=5673
WARREN=$(realpath -m "${CARGO_TARGET_DIR:-target}/release/warren")
BENCH=$(realpath -m target/amqp-bench/release/amqp-bench)

want() { [[ ",$ONLY," == *",$1,"* ]]; }
log() { printf '[%s] %s\n' "$(date +%T)" "$*" >&2; }
# One line per run from its JSON: the numbers that matter, or the error.
brief() {
  python3 - "$1" <<'PY' 2>/dev/null || echo "(no JSON; see ${1%.json}.err)"
import json, sys
lines = [l for l in open(sys.argv[1]) if l.startswith("{")]
j = json.loads(lines[-1])
keys = ["error", "errors", "publish_rate", "consume_rate", "latency_p99_us", "broker_cpu_pct", "client_cpu_pct",
        "ready_ms", "rss_idle_kb", "rss_per_connection_kb", "rss_growth_per_msg_bytes", "drain_rate"]
print(" ".join(f"{k}={j[k]}" for k in keys if j.get(k) is not None))
PY
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# ------------------------------------------------------------------ table

print_table() { # from the JSON files in $OUT/runs
  python3 - "$OUT" "$RUNS" "$DUR" <<'EOF' | tee "$OUT/table.md"
import glob, json, os, statistics, sys
out, runs, dur = sys.argv[1], sys.argv[2], sys.argv[3]
res = {}
for path in glob.glob(os.path.join(out, "runs", "*.json")):
    s, b, t, r = os.path.basename(path)[:-5].split(".")
    lines = [l for l in open(path) if l.startswith("{")]
    if lines:
        res.setdefault((s, b, t), []).append(json.loads(lines[-1]))

def med(s, b, t, f):
    vals = []
    for j in res.get((s, b, t), []):
        try:
            v = f(j)
        except (KeyError, TypeError, ZeroDivisionError):
            v = None
        if isinstance(v, (int, float)):
            vals.append(v)
    return statistics.median(vals) if vals else None

def errs(s, b, t):  # runs that failed, counted errors, or did not get every delivery in the drain time
    return sum(1 for j in res.get((s, b, t), []) if j.get("error") or j.get("errors")
               or j.get("messages_received", 0) < j.get("expected_received", 0))

def fmt(v, unit=""):
    if v is None: return "n/a"
    if abs(v) >= 100: return f"{v:,.0f}{unit}"
    if abs(v) >= 1: return f"{v:.1f}{unit}"
    return f"{v:.3f}{unit}"

def broker_cpu(j):  # µs of broker CPU per delivered message
    if j.get("broker_cpu_us_per_msg") is not None: return j["broker_cpu_us_per_msg"]
    return j["broker_cpu_pct"] / 100 * 1e6 / j["consume_rate"]

def client_cpu(j):  # µs of load-tool CPU per message published or consumed
    if j.get("client_cpu_us_per_msg") is not None: return j["client_cpu_us_per_msg"]
    return j["client_cpu_pct"] / 100 * 1e6 / (j["publish_rate"] + j["consume_rate"])

TOOLS = {"perf": "warren perf", "bench": "amqp-bench"}
rows = []
def row(label, metric, s, t, f, cpu=True, lower_better=False):
    w, r = med(s, "warren", t, f), med(s, "rabbitmq", t, f)
    ratio = "n/a" if w is None or not r else f"{w / r:.3f}×" if w / r < 0.1 else f"{w / r:.2f}×"
    wc = fmt(med(s, "warren", t, broker_cpu)) if cpu else ""
    rc = fmt(med(s, "rabbitmq", t, broker_cpu)) if cpu else ""
    note = "".join(f" ⚠ {name}: {n} of {len(res[(s, b, t)])} run(s) with errors or not drained"
                   for b, name in (("warren", "Warren"), ("rabbitmq", "RabbitMQ")) if (n := errs(s, b, t)))
    rows.append(f"| {label} | {metric}{' (lower is better)' if lower_better else ''} | {TOOLS[t]} | {fmt(w)} | {fmt(r)} | {ratio}{note} | {wc} | {rc} |")

labels = {"a": "(a) 1p1c 16 B autoack", "b": "(b) 1p1c 16 B ack, prefetch 1000, confirms 1000",
          "c": "(c) 1p1c 1 KiB persistent, confirms, ack", "d": "(d) fanout 1→10 queues, 10 consumers",
          "e": "(e) 10p10c, 10 queues, 16 B"}
for s in "abcde":
    for t in ("perf", "bench"):
        if (s, "warren", t) in res or (s, "rabbitmq", t) in res:
            row(labels[s], "deliveries/s" if s == "d" else "consumed msg/s", s, t, lambda j: j["consume_rate"])
            if s != "d":
                row(labels[s], "published msg/s", s, t, lambda j: j["publish_rate"], cpu=False)
for t in ("perf", "bench"):
    if ("f", "warren", t) in res or ("f", "rabbitmq", t) in res:
        row("(f) 1p1c at 10,000 msg/s", "p99 latency µs", "f", t, lambda j: j["latency_p99_us"], lower_better=True)
        row("(f) 1p1c at 10,000 msg/s", "p50 latency µs", "f", t, lambda j: j["latency_p50_us"], cpu=False, lower_better=True)
if ("g", "warren", "bench") in res:
    row("(g) start to first handshake", "ms", "g", "bench", lambda j: j["ready_ms"], cpu=False, lower_better=True)
    row("(h) idle RSS", "MiB", "g", "bench", lambda j: j["rss_idle_kb"] / 1024, cpu=False, lower_better=True)
    row("(h) RSS per idle connection", "KiB", "g", "bench", lambda j: j["rss_per_connection_kb"], cpu=False, lower_better=True)
if ("i", "warren", "bench") in res:
    row("(i) backlog of 16 B messages", "RSS bytes per queued msg", "i", "bench", lambda j: j["rss_growth_per_msg_bytes"], cpu=False, lower_better=True)
    row("(i) backlog of 16 B messages", "publish msg/s (confirms 1000)", "i", "bench", lambda j: j["publish_rate"], cpu=False)
    row("(i) backlog of 16 B messages", "drain msg/s (autoack)", "i", "bench", lambda j: j["drain_rate"], cpu=False)

print(f"Median of {runs} run(s); throughput runs publish for {dur} s (first 2 s left out).")
print()
print("| scenario | metric | load tool | Warren | RabbitMQ | Warren ÷ RabbitMQ | Warren CPU µs/msg | RabbitMQ CPU µs/msg |")
print("|---|---|---|---:|---:|---:|---:|---:|")
print("\n".join(rows))
print()
print("Load tool's own CPU per message published or consumed (median, µs):")
print()
print("| scenario | warren perf → Warren | warren perf → RabbitMQ | amqp-bench → Warren | amqp-bench → RabbitMQ |")
print("|---|---:|---:|---:|---:|")
for s in "abcdef":
    if any((s, b, t) in res for b in ("warren", "rabbitmq") for t in ("perf", "bench")):
        cells = [fmt(med(s, b, t, client_cpu)) for t in ("perf", "bench") for b in ("warren", "rabbitmq")]
        print(f"| ({s}) | " + " | ".join(cells) + " |")
EOF
}

if [[ -n ${TABLE_ONLY:-} ]]; then print_table; exit 0; fi
rm -rf "$OUT/runs" && mkdir -p "$OUT/runs"
ulimit -n 65536 2>/dev/null || true

log "building Warren (release) and amqp-bench"
timeout 1800 cargo build --release --bin warren >&2
timeout 1800 cargo build --release --manifest-path "$SHARED/tools/amqp-bench/Cargo.toml" \
  --target-dir target/amqp-bench >&2

# ------------------------------------------------------------------ brokers

WARREN_PID= WARREN_PORT= STARTED_RMQ=
start_warren() { # a fresh data directory each time: persistent messages go to disk (fsync)
  rm -f "$OUT/warren.port" && rm -rf "$OUT/warren-data"
  "$WARREN" --bind 127.0.0.1 --port 0 --port-file "$OUT/warren.port" --log-level warn \
    --data-dir "$OUT/warren-data" >>"$OUT/warren.log" 2>&1 &
  WARREN_PID=$!
  for _ in $(seq 100); do [[ -s $OUT/warren.port ]] && break; sleep 0.05; done
  [[ -s $OUT/warren.port ]] || { log "Warren did not start; see $OUT/warren.log"; exit 1; }
  WARREN_PORT=$(tr -d '[:space:]' <"$OUT/warren.port")
}
stop_warren() {
  [[ -n $WARREN_PID ]] || return 0
  kill "$WARREN_PID" 2>/dev/null || true
  for _ in $(seq 100); do kill -0 "$WARREN_PID" 2>/dev/null || break; sleep 0.05; done
  kill -9 "$WARREN_PID" 2>/dev/null || true
  wait "$WARREN_PID" 2>/dev/null || true
  WARREN_PID=
}
cleanup() {
  stop_warren
  [[ -n $STARTED_RMQ ]] && timeout 60 "$REF" stop "$RMQ_PORT" >/dev/null 2>&1 || true
  rm -rf /tmp/warren-bench-rmq-startup "$OUT/warren-data" "$OUT/warren-startup-data"
}
trap cleanup EXIT

start_warren
log "Warren pid $WARREN_PID on 127.0.0.1:$WARREN_PORT"
if ! timeout 30 "$REF" ctl "$RMQ_PORT" -q status >/dev/null 2>&1; then STARTED_RMQ=1; fi
timeout 300 "$REF" start "$RMQ_PORT" >&2
RMQ_PID=$(pgrep -f "beam.*ref$RMQ_PORT" | head -1 || true)
[[ -n $RMQ_PID ]] || RMQ_PID=$(timeout 30 "$REF" ctl "$RMQ_PORT" eval 'os:getpid().' | tr -dc '0-9')
log "RabbitMQ $(rabbitmqctl version 2>/dev/null || echo '?') beam pid $RMQ_PID on 127.0.0.1:$RMQ_PORT"
uri() { if [[ $1 == warren ]]; then echo "amqp://guest:guest@127.0.0.1:$WARREN_PORT/%2f"; else echo "amqp://guest:guest@127.0.0.1:$RMQ_PORT/%2f"; fi; }
pid_of() { if [[ $1 == warren ]]; then echo "$WARREN_PID"; else echo "$RMQ_PID"; fi; }

# ------------------------------------------------------------------ throughput and latency (a-f)

declare -A SC=(
  [a]="--producers 1 --consumers 1 --size 16 --autoack"
  [b]="--producers 1 --consumers 1 --size 16 --prefetch 1000 --confirm 1000"
  [c]="--producers 1 --consumers 1 --size 1024 --persistent --confirm 1000 --prefetch 1000"
  [d]="--producers 1 --consumers 10 --queues 10 --exchange-type fanout --size 16 --autoack"
  [e]="--producers 10 --consumers 10 --queues 10 --size 16 --autoack"
  [f]="--producers 1 --consumers 1 --size 16 --autoack --rate 10000"
)
COMMON="--duration $DUR --warmup 2 --drain-timeout 10"

run_load() { # scenario broker tool round
  local s=$1 b=$2 t=$3 r=$4 f="$OUT/runs/$1.$2.$3.$4"
  local cmd
  if [[ $t == perf ]]; then cmd=("$WARREN" perf --json --quiet); else cmd=("$BENCH"); fi
  # shellcheck disable=SC2206
  cmd+=(${SC[$s]} $COMMON --uri "$(uri "$b")" --pid "$(pid_of "$b")" --queue-prefix "cmp-$s-$t-$r")
  timeout -k 10 $((DUR + 90)) "${cmd[@]}" >"$f.json" 2>"$f.err" || true
  log "$s $b $t #$r: $(brief "$f.json")"
}

for r in $(seq "$RUNS"); do
  for s in a b c d e f; do
    want "$s" || continue
    for b in warren rabbitmq; do
      for t in perf bench; do run_load "$s" "$b" "$t" "$r"; done
    done
  done
done

# ------------------------------------------------------------------ startup and idle memory (g, h)

if want g || want h; then
  P=$(free_port)
  RQ=5791 # its distribution port is RQ+20000
  base=/tmp/warren-bench-rmq-startup
  for r in $(seq "$RUNS"); do
    f="$OUT/runs/g.warren.bench.$r"
    rm -rf "$OUT/warren-startup-data"
    timeout -k 10 300 "$BENCH" startup --port "$P" --connections "$CONNS" --cmd "exec $WARREN --bind 127.0.0.1 \
--port $P --log-level warn --data-dir $OUT/warren-startup-data >>$OUT/startup-warren.log 2>&1" \
      >"$f.json" 2>"$f.err" || true
    log "g/h warren #$r: $(brief "$f.json")"
    # A bare RabbitMQ node (no plugins) in the foreground, as root, so amqp-bench owns its
    # process group and stops it at the end.
    rm -rf "$base" && mkdir -p "$base"
    printf 'listeners.tcp.default = 127.0.0.1:%s\nloopback_users = none\n' "$RQ" >"$base/rabbitmq.conf"
    echo '[].' >"$base/enabled_plugins"
    f="$OUT/runs/g.rabbitmq.bench.$r"
    timeout -k 10 300 "$BENCH" startup --port "$RQ" --connections "$CONNS" --cmd "exec env HOME=$base \
RABBITMQ_NODENAME=warrenbench$RQ@localhost RABBITMQ_NODE_PORT=$RQ RABBITMQ_DIST_PORT=$((RQ + 20000)) \
RABBITMQ_CONFIG_FILE=$base/rabbitmq RABBITMQ_ENABLED_PLUGINS_FILE=$base/enabled_plugins \
RABBITMQ_MNESIA_BASE=$base/mnesia RABBITMQ_LOG_BASE=$base/log RABBITMQ_PID_FILE=$base/pid \
/usr/lib/rabbitmq/bin/rabbitmq-server >$base/stdout.log 2>&1" >"$f.json" 2>"$f.err" || true
    log "g/h rabbitmq #$r: $(brief "$f.json")"
  done
fi

# ------------------------------------------------------------------ backlog (i)

if want i; then
  for r in $(seq "$RUNS"); do
    # A fresh Warren each round, so earlier rounds' freed-but-kept heap does not hide growth.
    stop_warren && start_warren
    for b in warren rabbitmq; do
      f="$OUT/runs/i.$b.bench.$r"
      timeout -k 10 900 "$BENCH" backlog --count "$BACKLOG" --size 16 --confirm 1000 --autoack \
        --uri "$(uri "$b")" --pid "$(pid_of "$b")" --queue-prefix "cmp-i-$r" >"$f.json" 2>"$f.err" || true
      log "i $b #$r: $(brief "$f.json")"
    done
  done
fi

print_table
log "raw results: $OUT/runs/ (one JSON per run, stderr beside it); table: $OUT/table.md"
