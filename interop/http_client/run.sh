#!/usr/bin/env bash
# rabbitmq_http_client's own integration suite (the library behind
# rabbitmqadmin v2) against Warren's management API, as LavinMQ runs
# third-party suites:
#   1. fetch the crate's package from crates.io (`cargo fetch` in a throw-away
#      project, then unpack the .crate) into a temp dir;
#   2. keep only its blocking-client test modules and point its hard-coded
#      endpoints (http://localhost:15672/api, amqp://localhost:5672) at the
#      ports chosen here;
#   3. build them (the build is cached in target/interop-http-client), start
#      $WARREN_BIN in memory, run them;
#   4. compare the tests that passed with expected_pass.txt: a test listed
#      there that fails now fails the script. New passes are printed; rerun
#      with --update to record them.
# Usage: bash interop/http_client/run.sh [--update] [TEST_FILTER]
# Bounded: the build and the run each have a time limit; the broker is
# stopped and the temp dir removed on every exit.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
bin=${WARREN_BIN:-$root/target/release/warren}
version=${HTTP_CLIENT_VERSION:-0.93.0}
target=${HTTP_CLIENT_TARGET_DIR:-$root/target/interop-http-client}
expected="$here/expected_pass.txt"
update=0
if [[ ${1:-} == --update ]]; then update=1; shift; fi
filter=${1:-blocking_}

[[ -x $bin ]] || { echo "http_client: no Warren binary at $bin (cargo build --release)" >&2; exit 2; }

work=$(mktemp -d)
pid=""
cleanup() {
  if [[ -n $pid ]]; then kill "$pid" 2>/dev/null; wait "$pid" 2>/dev/null; fi
  rm -rf "$work"
}
trap cleanup EXIT

# 1. The package source, exactly as published.
mkdir -p "$work/fetch/src"
cat >"$work/fetch/Cargo.toml" <<EOF
[package]
name = "fetch-rabbitmq-http-client"
version = "0.0.0"
edition = "2021"
publish = false
[dependencies]
rabbitmq_http_client = "=$version"
EOF
: >"$work/fetch/src/lib.rs"
(cd "$work/fetch" && timeout 120 cargo fetch -q) || { echo "http_client: cargo fetch failed" >&2; exit 2; }
crate=$(ls "${CARGO_HOME:-$HOME/.cargo}"/registry/cache/*/rabbitmq_http_client-"$version".crate 2>/dev/null | head -n1)
[[ -f $crate ]] || { echo "http_client: no rabbitmq_http_client-$version.crate after cargo fetch" >&2; exit 2; }
tar -xzf "$crate" -C "$work"
pkg="$work/rabbitmq_http_client-$version"

# 2. Ports and the blocking modules only. TLS tests need certificates and a
# TLS listener (Warren's management API has none); zeroize is a client-side
# feature. The async modules are the same tests through the async client.
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
http=15672
if ! command -v ss >/dev/null || ss -ltn "sport = :$http" | grep -q LISTEN; then http=$(free_port); fi
amqp=$(free_port)
prom=$(free_port)
tests="$pkg/tests/integration"
{
  echo "mod test_helpers;"
  for f in "$tests"/blocking_*.rs; do
    m=$(basename "$f" .rs)
    case $m in blocking_tls_tests | blocking_zeroize_tests) continue ;; esac
    echo "mod $m;"
  done
} >"$tests/main.rs"
sed -i "s#http://localhost:15672/api#http://127.0.0.1:$http/api#; s#amqp://localhost:5672#amqp://127.0.0.1:$amqp#" \
  "$tests/test_helpers.rs"
sed -i "s#health_check_port_listener(15672)#health_check_port_listener($http)#" "$tests"/blocking_*.rs

# 3. Build, then start the broker.
# cargo_test LIMIT_SECONDS ARGS...: the crate's integration test binary,
# with only the features its blocking tests need (no TLS backend).
cargo_test() {
  local limit=$1
  shift
  (cd "$pkg" && CARGO_TARGET_DIR="$target" timeout "$limit" cargo test --no-default-features \
    --features async,blocking --test integration "$@")
}
echo "http_client: building rabbitmq_http_client $version's integration tests" >&2
cargo_test 1200 --no-run -q 2>"$work/build.log" || {
  tail -n 30 "$work/build.log" >&2
  echo "http_client: build failed" >&2
  exit 2
}
"$bin" --bind 127.0.0.1 --port "$amqp" --management-port "$http" --prometheus-port "$prom" --in-memory \
  --log-level warn >"$work/warren.log" 2>&1 &
pid=$!
for _ in $(seq 100); do
  curl -sf -u guest:guest "http://127.0.0.1:$http/api/overview" >/dev/null && break
  sleep 0.1
done

# 4. Run and compare.
echo "http_client: running '$filter' against Warren (AMQP $amqp, HTTP $http)" >&2
PROPTEST_CASES=${PROPTEST_CASES:-8} cargo_test 240 "$filter" -- --test-threads=4 >"$work/out.txt" 2>&1
rc=$?
[[ $rc -eq 124 ]] && echo "http_client: the run hit its 240 s limit; unfinished tests count as failed" >&2
# libtest prints `test NAME ... ok|FAILED|ignored` as each test ends.
sed -nE 's/^test ([^ ]+) \.\.\. ok$/\1/p' "$work/out.txt" | sort -u >"$work/passed.txt"
sed -nE 's/^test ([^ ]+) \.\.\. ignored.*$/\1/p' "$work/out.txt" | sort -u >"$work/ignored.txt"
cargo_test 60 "$filter" -- --list 2>/dev/null | sed -n 's/: test$//p' | sort -u >"$work/listed.txt"
comm -23 "$work/listed.txt" "$work/ignored.txt" >"$work/all.txt"
# A failure's reason: the first line of its panic message.
awk '
  /^---- .* stdout ----$/ { name = $2; want = 0; next }
  name != "" && /panicked at/ { want = 1; next }
  want && name != "" { print name "\t" $0; name = ""; want = 0 }
' "$work/out.txt" | sort -u -k1,1 >"$work/reasons.tsv"
comm -23 "$work/all.txt" "$work/passed.txt" >"$work/not_passed.txt"

npass=$(wc -l <"$work/passed.txt")
nall=$(wc -l <"$work/all.txt")
echo "== rabbitmq_http_client $version blocking integration tests: $npass of $nall pass against Warren"
echo "-- not passing (with the first line of the panic):"
while read -r t; do
  r=$(awk -F'\t' -v t="$t" '$1 == t { print $2 }' "$work/reasons.tsv")
  echo "  $t: ${r:-did not finish}"
done <"$work/not_passed.txt"

if [[ $update -eq 1 ]]; then
  cp "$work/passed.txt" "$expected"
  echo "http_client: wrote $npass names to $expected"
  exit 0
fi
status=0
if [[ -f $expected ]]; then
  regressed=$(comm -23 <(sort -u "$expected") "$work/passed.txt")
  fresh=$(comm -13 <(sort -u "$expected") "$work/passed.txt")
  if [[ -n $fresh ]]; then
    echo "-- newly passing (record them with --update):"
    sed 's/^/  /' <<<"$fresh"
  fi
  if [[ -n $regressed ]]; then
    echo "-- REGRESSIONS: in expected_pass.txt but not passing now:"
    sed 's/^/  /' <<<"$regressed"
    status=1
  fi
else
  echo "http_client: no $expected yet (rerun with --update)" >&2
  status=1
fi
if [[ $status -ne 0 ]]; then
  echo "http_client: Warren's log:" >&2
  tail -n 30 "$work/warren.log" >&2
fi
echo "$npass passed, $((nall - npass)) failed"
exit $status
