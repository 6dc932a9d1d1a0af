#!/usr/bin/env bash
# The TLS tests that aiormq and aio-pika ship in their own suites, run as
# published against Warren:
#   1. fetch each library's sdist from PyPI (fetch_sdist.py checks the
#      index's sha256) into a temp dir; the tests are the package's own;
#   2. start $WARREN_BIN from the rabbitmq.conf aiormq ships for its test
#      broker (tests/certs/rabbitmq.conf), with aiormq's shipped certificates:
#      only the /certs/ paths and the ports are rewritten (loopback, free
#      ports);
#   3. replace each suite's Docker fixture with conftest_overlay.py (every
#      other shipped fixture is kept), and run:
#        - aiormq: every test parametrised over the `amqps` and
#          `amqps-client` URLs (server-verified TLS, and a client certificate),
#          and test_auth_external;
#        - aio-pika: tests/test_amqps.py (its whole AMQP case over TLS, with
#          connect and connect_robust);
#   4. compare what passed with expected_pass.txt: a listed test that fails
#      fails the script; new passes are printed (--update records them).
# Usage: bash interop/python_suites/run.sh [--update] [PYTEST_ARGS...]
# Bounded: each suite has a time limit; the broker is stopped and the temp
# dir removed on every exit.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin=${WARREN_BIN:-$root/target/release/warren}
expected="$here/expected_pass.txt"
update=0
if [[ ${1:-} == --update ]]; then update=1; shift; fi

[[ -x $bin ]] || { echo "python_suites: no Warren binary at $bin (cargo build --release)" >&2; exit 2; }

work=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

venv="$here/.venv"
[[ -x $venv/bin/python ]] || python3 -m venv "$venv"
if ! cmp -s "$here/requirements.txt" "$venv/.installed"; then
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$here/requirements.txt" \
    && cp "$here/requirements.txt" "$venv/.installed" \
    || { echo "python_suites: pip install failed" >&2; exit 2; }
fi
version_of() { sed -n "s/^$1==//p" "$here/requirements.txt"; }

# 1. The packages' own tests.
aiormq=$("$venv/bin/python" "$here/fetch_sdist.py" aiormq "$(version_of aiormq)" "$work") || exit 2
aiopika=$("$venv/bin/python" "$here/fetch_sdist.py" aio-pika "$(version_of aio-pika)" "$work") || exit 2
for pkg in "$aiormq" "$aiopika"; do
  mv "$pkg/tests/conftest.py" "$pkg/tests/_shipped_conftest.py"
  cp "$here/conftest_overlay.py" "$pkg/tests/conftest.py"
done

# 2. Warren from aiormq's broker configuration.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
amqp=$(free_port); amqps=$(free_port); https=$(free_port)
certs="$aiormq/tests/certs"
sed -e "s|/certs/|$certs/|" \
    -e "s|^listeners.tcp.default = .*|listeners.tcp.default = 127.0.0.1:$amqp|" \
    -e "s|^listeners.ssl.default = .*|listeners.ssl.default = 127.0.0.1:$amqps|" \
    -e "s|^management.ssl.port = .*|management.ssl.port = $https\nmanagement.tcp.ip = 127.0.0.1|" \
    "$certs/rabbitmq.conf" >"$work/rabbitmq.conf"
"$bin" --config "$work/rabbitmq.conf" --in-memory --prometheus-port 0 --log-level warn >"$work/warren.log" 2>&1 &
pid=$!
ready=0
for _ in $(seq 100); do
  if python3 -c "import socket; socket.create_connection(('127.0.0.1', $amqps), 1).close()" 2>/dev/null; then ready=1; break; fi
  sleep 0.1
done
if [[ $ready != 1 ]]; then
  echo "python_suites: Warren did not open its TLS port from aiormq's rabbitmq.conf:" >&2
  cat "$work/rabbitmq.conf" "$work/warren.log" >&2
  exit 1
fi
export WARREN_AMQP_PORT=$amqp WARREN_AMQPS_PORT=$amqps

# 3. The suites. -rA lists every outcome, one line each, for step 4.
run_suite() {
  local name=$1 dir=$2; shift 2
  echo "== $name: $*"
  (cd "$dir" && timeout 600 "$venv/bin/python" -m pytest -p no:cacheprovider -q -rA "$@") \
    >"$work/$name.out" 2>&1
  grep -E '^(FAILED|ERROR) tests/|[0-9]+ (passed|failed).* in [0-9.]+s' "$work/$name.out"
  grep -E '^PASSED ' "$work/$name.out" | sed "s|^PASSED |$name::|; s| - .*||" >>"$work/passed.txt"
}
: >"$work/passed.txt"
run_suite aiormq "$aiormq" tests -k "amqps or test_auth_external" "$@"
run_suite aio-pika "$aiopika" tests/test_amqps.py "$@"

# 4. Against the record.
sort -u -o "$work/passed.txt" "$work/passed.txt"
echo "== $(wc -l <"$work/passed.txt") tests passed against Warren"
if [[ $update == 1 ]]; then
  cp "$work/passed.txt" "$expected"
  echo "recorded in $expected"
  exit 0
fi
[[ -s $expected ]] || { echo "python_suites: no $expected (run with --update)" >&2; exit 1; }
missing=$(comm -23 <(grep -v '^#' "$expected" | sort -u) "$work/passed.txt")
new=$(comm -13 <(grep -v '^#' "$expected" | sort -u) "$work/passed.txt")
[[ -n $new ]] && printf 'passing now, not yet in expected_pass.txt:\n%s\n' "$new"
if [[ -n $missing ]]; then
  printf 'python_suites: FAILED: expected to pass, did not:\n%s\n' "$missing" >&2
  exit 1
fi
echo "ok - every test in expected_pass.txt passed"
