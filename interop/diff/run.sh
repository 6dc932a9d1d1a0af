#!/usr/bin/env bash
# Differential test: the same scenarios against a reference RabbitMQ (A) and
# Warren (B); any difference in what the client observes fails the scenario.
#
#   interop/diff/run.sh [--show] [--list] [PATTERN...]
#
# Environment:
#   DIFF_A_URL  reference broker; default: start ../shared/tools/reference-rabbitmq
#               (if it is not already running) and use amqp://guest:guest@127.0.0.1:5673/
#   DIFF_B_URL  broker under test; default: start $WARREN_BIN on a free port
#   WARREN_BIN  default: <repo>/target/release/warren
#   DIFF_BUDGET seconds after which no further scenario is started (default 170)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"

# (a) Python with the pinned pika: the shared interop venv if it has it,
# otherwise a venv of our own.
python=""
if [[ -x "$root/interop/.venv/bin/python" ]] &&
   "$root/interop/.venv/bin/python" -c 'import pika, sys; sys.exit(pika.__version__ != "1.3.2")' 2>/dev/null; then
    python="$root/interop/.venv/bin/python"
else
    venv="$here/.venv"
    stamp="$venv/.installed-requirements.txt"
    [[ -x "$venv/bin/python" ]] || python3 -m venv "$venv"
    if ! cmp -s "$here/requirements.txt" "$stamp"; then
        "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt"
        cp "$here/requirements.txt" "$stamp"
    fi
    python="$venv/bin/python"
fi

# (b) The reference broker.
if [[ -z "${DIFF_A_URL:-}" ]]; then
    ref="$root/../shared/tools/reference-rabbitmq"
    if [[ ! -f "$ref" ]]; then
        echo "run.sh: $ref not found; set DIFF_A_URL" >&2
        exit 2
    fi
    timeout 600 bash "$ref" start >&2
    export DIFF_A_URL="amqp://guest:guest@127.0.0.1:5673/"
    export DIFF_A_MGMT="${DIFF_A_MGMT:-http://127.0.0.1:15673}"
fi

# (c) Warren, unless a broker under test was given.
warren_pid=""
workdir=""
cleanup() {
    if [[ -n "$warren_pid" ]] && kill -0 "$warren_pid" 2>/dev/null; then
        kill -TERM "$warren_pid" 2>/dev/null || true
        for _ in $(seq 30); do
            kill -0 "$warren_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$warren_pid" 2>/dev/null || true
        wait "$warren_pid" 2>/dev/null || true
    fi
    [[ -n "$workdir" ]] && rm -rf "$workdir"
    return 0
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if [[ -z "${DIFF_B_URL:-}" ]]; then
    warren="${WARREN_BIN:-$root/target/release/warren}"
    [[ "$warren" = /* ]] || warren="$root/$warren"
    if [[ ! -x "$warren" ]]; then
        echo "run.sh: no broker binary at $warren (cargo build --release, or set WARREN_BIN or DIFF_B_URL)" >&2
        exit 2
    fi
    workdir="$(mktemp -d "${TMPDIR:-/tmp}/warren-diff.XXXXXX")"
    # The management API too: the limits scenarios set vhosts, users and
    # limits through it on both brokers.
    mport="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    export DIFF_B_MGMT="http://127.0.0.1:$mport"
    "$warren" --bind 127.0.0.1 --port 0 --management-port "$mport" --prometheus-port 0 --port-file "$workdir/port" --data-dir "$workdir/data" >"$workdir/warren.log" 2>&1 &
    warren_pid=$!
    port=""
    for _ in $(seq 200); do  # up to 20 s
        if [[ -s "$workdir/port" ]]; then
            port="$(tr -dc 0-9 <"$workdir/port")"
            [[ -n "$port" ]] && break
        fi
        if ! kill -0 "$warren_pid" 2>/dev/null; then
            echo "run.sh: warren exited early:" >&2
            cat "$workdir/warren.log" >&2
            exit 2
        fi
        sleep 0.1
    done
    if [[ -z "$port" ]]; then
        echo "run.sh: warren wrote no port file within 20s" >&2
        exit 2
    fi
    export DIFF_B_URL="amqp://guest:guest@127.0.0.1:$port/"
fi

"$python" "$here/diff.py" "$@"
