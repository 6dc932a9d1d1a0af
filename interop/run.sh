#!/usr/bin/env bash
# Runs the interop suite (see interop/README.md).
#
#   AMQP_URL set:   test the broker it points at.
#   AMQP_URL unset: start $WARREN_BIN (default: target/release/warren) on a
#                   free loopback port, with an AMQPS listener on another
#                   (certificates made by tls-certs.sh), test it, and stop
#                   it on exit. WARREN_BIN is exported (as an absolute path)
#                   for the fault_* checks, which start a Warren of their
#                   own with --allow-fault-injection; without it (AMQP_URL
#                   given and WARREN_BIN unset) they skip.
#
# The TLS scenarios (*tls*) read AMQPS_URL, TLS_CA_FILE, TLS_OTHER_CA_FILE,
# TLS_CLIENT_CERT, TLS_CLIENT_KEY and TLS_EXTERNAL_USER; with AMQP_URL given
# and no AMQPS_URL they are skipped (tls-reference.sh prints all of them for
# a reference RabbitMQ).
#
# Arguments are passed to runner.py (e.g. a scenario name filter).
# Clients are installed first (install.sh; cached after the first run).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"

# Listing scenarios needs no broker and no clients (the runner uses only the
# standard library).
for arg in "$@"; do
    if [[ "$arg" == "--list" ]]; then
        exec python3 "$here/runner.py" "$@"
    fi
done

# (a) The client libraries: Debian packages, the Python venv, node_modules,
# the Go build. Cached, so repeated runs start in about a second.
bash "$here/install.sh" --versions
venv="$here/.venv"

# (b) A broker of our own unless one was given.
broker_pid=""
clock_pid=""
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
    if [[ -n "$clock_pid" ]] && kill -0 "$clock_pid" 2>/dev/null; then
        kill -TERM "$clock_pid" 2>/dev/null || true
        wait "$clock_pid" 2>/dev/null || true
    fi
    if [[ -n "$workdir" ]]; then
        rm -rf "$workdir"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM  # run the EXIT trap on Ctrl-C or kill as well

# The user EXTERNAL logs in as with tls-certs.sh's client certificate: its
# subject DN in RabbitMQ's format (RFC 4514 order, most specific first).
external_user="CN=alice,O=Warren tests"
write_definitions() {
    # RabbitMQ's definitions format; "password_hash": "" is a user without a
    # password (EXTERNAL only). guest is listed too, with its usual password,
    # so the import cannot leave the suite without it.
    "$venv/bin/python" - "$1" "$external_user" <<'PY'
import base64, hashlib, json, os, sys
salt = os.urandom(4)
guest_hash = base64.b64encode(salt + hashlib.sha256(salt + b"guest").digest()).decode()
user = sys.argv[2]
everything = {"vhost": "/", "configure": ".*", "write": ".*", "read": ".*"}
json.dump({
    "users": [
        {"name": "guest", "password_hash": guest_hash,
         "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": ["administrator"]},
        {"name": user, "password_hash": "",
         "hashing_algorithm": "rabbit_password_hashing_sha256", "tags": []},
    ],
    "vhosts": [{"name": "/"}],
    "permissions": [{**everything, "user": "guest"}, {**everything, "user": user}],
}, open(sys.argv[1], "w"), indent=2)
PY
}

if [[ -z "${AMQP_URL:-}" ]]; then
    warren="${WARREN_BIN:-$root/target/release/warren}"
    if [[ ! -x "$warren" ]]; then
        echo "run.sh: no broker binary at $warren (cargo build --release, or set WARREN_BIN or AMQP_URL)" >&2
        exit 2
    fi
    workdir="$(mktemp -d "${TMPDIR:-/tmp}/warren-interop.XXXXXX")"
    port_file="$workdir/port"
    broker_log="$workdir/broker.log"
    tls_port_file="$workdir/tls-port"
    # TLS: a CA, a server certificate for localhost/127.0.0.1 and a client
    # certificate (CN=alice,O=Warren tests), made here (tls-certs.sh). Peers
    # are verified (--tls-ca) but a certificate is not required, so PLAIN
    # logins work over TLS too; EXTERNAL logs in as the certificate's
    # subject DN, a passwordless user created by the definitions file.
    tls_dir="$workdir/tls"
    bash "$here/tls-certs.sh" "$tls_dir"
    definitions="$workdir/definitions.json"
    write_definitions "$definitions"
    "$warren" --port 0 --management-port 0 --prometheus-port 0 --port-file "$port_file" --bind 127.0.0.1 --data-dir "$workdir/data" \
        --tls-cert "$tls_dir/server.pem" --tls-key "$tls_dir/server.key" --tls-ca "$tls_dir/ca.pem" \
        --tls-port 0 --tls-port-file "$tls_port_file" --definitions "$definitions" >"$broker_log" 2>&1 &
    broker_pid=$!

    port=""
    tls_port=""
    for _ in $(seq 200); do  # up to 20s
        # The file may exist before the port is fully written: wait for digits.
        if [[ -z "$tls_port" && -s "$tls_port_file" ]]; then
            tls_port="$(tr -d '[:space:]' <"$tls_port_file")"
            [[ "$tls_port" =~ ^[0-9]+$ ]] || tls_port=""
        fi
        if [[ -n "$tls_port" && -s "$port_file" ]]; then
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
        echo "run.sh: broker wrote no port to $port_file or $tls_port_file within 20s; its log:" >&2
        tail -n 30 "$broker_log" >&2
        exit 2
    fi
    export AMQP_URL="amqp://guest:guest@127.0.0.1:$port/%2f"
    # "localhost", the name in the server certificate (clients check it).
    export AMQPS_URL="amqps://guest:guest@localhost:$tls_port/%2f"
    export TLS_CA_FILE="$tls_dir/ca.pem" TLS_OTHER_CA_FILE="$tls_dir/other-ca.pem"
    export TLS_CLIENT_CERT="$tls_dir/client.pem" TLS_CLIENT_KEY="$tls_dir/client.key"
    export TLS_EXTERNAL_USER="$external_user"
    echo "broker: $warren on 127.0.0.1:$port, AMQPS on localhost:$tls_port"

    # A second Warren on a virtual clock, for the virtual_clock checks.
    clock_mgmt_port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
    "$warren" --clock manual --in-memory --port 0 --port-file "$workdir/clock-port" --bind 127.0.0.1 \
        --management-port "$clock_mgmt_port" --prometheus-port 0 >"$workdir/clock-broker.log" 2>&1 &
    clock_pid=$!
    for _ in $(seq 100); do
        [[ -s "$workdir/clock-port" ]] && break
        sleep 0.1
    done
    if [[ ! -s "$workdir/clock-port" ]]; then
        echo "run.sh: the --clock manual broker did not start; its log:" >&2
        tail -n 30 "$workdir/clock-broker.log" >&2
        exit 2
    fi
    export CLOCK_AMQP_URL="amqp://guest:guest@127.0.0.1:$(tr -d '[:space:]' <"$workdir/clock-port")/%2f"
    export CLOCK_MGMT_URL="http://127.0.0.1:$clock_mgmt_port"
    # The fault_* checks start a Warren of their own from it (restarts and
    # alarms would hit every scenario on the shared one).
    WARREN_BIN="$(cd "$(dirname "$warren")" && pwd)/$(basename "$warren")"
    export WARREN_BIN
elif [[ -z "${AMQPS_URL:-}" ]]; then
    echo "run.sh: AMQP_URL given without AMQPS_URL: the TLS scenarios will be skipped"
fi

# (c) The scenarios. Run in the background and waited for, so that the INT/
# TERM trap fires at once and cleanup() can stop the runner.
status=0
# Scenarios mostly wait (heartbeat pauses, prefetch windows), so several run
# at once; INTEROP_JOBS=1 runs them one by one.
"$venv/bin/python" "$here/runner.py" --jobs "${INTEROP_JOBS:-4}" "$@" &
runner_pid=$!
wait "$runner_pid" || status=$?
runner_pid=""
if [[ $status -ne 0 && -n "$broker_pid" ]]; then
    echo "--- last lines of the broker's log ---"
    tail -n 30 "$broker_log"
fi
exit "$status"
