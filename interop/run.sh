#!/usr/bin/env bash
# Runs the interop suite (see interop/README.md).
#
#   AMQP_URL set:   test the broker it points at.
#   AMQP_URL unset: start $WARREN_BIN (default: target/release/warren) on a
#                   free loopback port, test it, and stop it on exit.
#
# Arguments are passed to runner.py (e.g. a scenario name filter).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

# (a) The venv for the Python clients. Reinstall only when the pinned
# requirements changed, so repeated runs start in well under a second.
venv="$here/.venv"
requirements="$here/python/requirements.txt"
stamp="$venv/.installed-requirements.txt"
if [[ ! -x "$venv/bin/python" ]]; then
    python3 -m venv "$venv"
fi
if ! cmp -s "$requirements" "$stamp"; then
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    cp "$requirements" "$stamp"
fi

# Listing scenarios needs no broker.
for arg in "$@"; do
    if [[ "$arg" == "--list" ]]; then
        exec "$venv/bin/python" "$here/runner.py" "$@"
    fi
done

# (b) A broker of our own unless one was given.
broker_pid=""
runner_pid=""
workdir=""
cleanup() {
    # The runner first, so that it stops its scenario's processes (it turns
    # SIGTERM into a clean exit) before the broker goes away under them.
    if [[ -n "$runner_pid" ]] && kill -0 "$runner_pid" 2>/dev/null; then
        kill -TERM "$runner_pid" 2>/dev/null || true
        wait "$runner_pid" 2>/dev/null || true
    fi
    if [[ -n "$broker_pid" ]] && kill -0 "$broker_pid" 2>/dev/null; then
        kill -TERM "$broker_pid" 2>/dev/null || true
        for _ in $(seq 50); do
            kill -0 "$broker_pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$broker_pid" 2>/dev/null || true
        wait "$broker_pid" 2>/dev/null || true
    fi
    if [[ -n "$workdir" ]]; then
        rm -rf "$workdir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # run the EXIT trap on Ctrl-C or kill as well

if [[ -z "${AMQP_URL:-}" ]]; then
    warren="${WARREN_BIN:-$root/target/release/warren}"
    if [[ ! -x "$warren" ]]; then
        echo "run.sh: no broker binary at $warren (cargo build --release, or set WARREN_BIN or AMQP_URL)" >&2
        exit 2
    fi
    workdir="$(mktemp -d "${TMPDIR:-/tmp}/warren-interop.XXXXXX")"
    port_file="$workdir/port"
    broker_log="$workdir/broker.log"
    "$warren" --port 0 --port-file "$port_file" --bind 127.0.0.1 >"$broker_log" 2>&1 &
    broker_pid=$!

    port=""
    for _ in $(seq 200); do  # up to 20s
        # The file may exist before the port is fully written: wait for digits.
        if [[ -s "$port_file" ]]; then
            port="$(tr -d '[:space:]' <"$port_file")"
            [[ "$port" =~ ^[0-9]+$ ]] && break
            port=""
        fi
        if ! kill -0 "$broker_pid" 2>/dev/null; then
            echo "run.sh: broker exited during startup; its log:" >&2
            tail -n 30 "$broker_log" >&2
            exit 2
        fi
        sleep 0.1
    done
    if [[ -z "$port" ]]; then
        echo "run.sh: broker wrote no port to $port_file within 20s; its log:" >&2
        tail -n 30 "$broker_log" >&2
        exit 2
    fi
    export AMQP_URL="amqp://guest:guest@127.0.0.1:$port/%2f"
    echo "broker: $warren on 127.0.0.1:$port"
fi

# (c) The scenarios. Run in the background and waited for, so that the INT/
# TERM trap fires at once and cleanup() can stop the runner.
status=0
"$venv/bin/python" "$here/runner.py" "$@" &
runner_pid=$!
wait "$runner_pid" || status=$?
runner_pid=""
if [[ $status -ne 0 && -n "$broker_pid" ]]; then
    echo "--- last lines of the broker's log ---"
    tail -n 30 "$broker_log"
fi
exit "$status"
