#!/usr/bin/env bash
# Runs every test, as CI does:
#   1. unit and integration tests (cargo nextest; cargo test if it is missing),
#      including the SIGKILL crash-recovery test and the fuzz stand-in;
#   2. the interop suite: real clients in several languages against the
#      release binary (interop/run.sh installs them on first use);
#   3. the differential suite: the same scenarios against Warren and a real
#      RabbitMQ (Debian's rabbitmq-server, installed and started on first use).
#   4. aiormq's and aio-pika's own TLS tests, from their PyPI sdists, against
#      the release binary (interop/python_suites/run.sh);
#   5. a bounded fuzz run: every cargo-fuzz target in fuzz/ for 60 s from its
#      committed corpus (fuzz/run.sh installs cargo-fuzz on first use);
#   6. the management tools against the release binary (tests/tools/run.sh);
#   7. the pytest plugin: python/pytest-warren/ci.sh builds its wheel with
#      maturin (reusing the release build), installs it in a clean venv with
#      pika and kombu and runs its suite. Late, since maturin leaves its
#      stripped build at target/release/warren (the next cargo build puts the
#      other back without recompiling);
#   8. the npm package: node/warren-broker/ci.sh packs a stripped copy of
#      target/release/warren into its tarball, installs it with pinned
#      amqplib into a clean project and runs its node --test suite.
# Each stage runs even if an earlier one failed; the exit code says whether all passed.
set -uo pipefail
cd "$(dirname "$0")"

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "installing python3-venv from Debian's packages" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
fi

status=0
cargo build --release --bins || exit 1

if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --no-fail-fast || status=1
else
  cargo test --no-fail-fast || status=1
fi
cargo test --doc || status=1

WARREN_BIN="$PWD/target/release/warren" bash interop/run.sh || status=1
WARREN_BIN="$PWD/target/release/warren" bash interop/diff/run.sh || status=1
WARREN_BIN="$PWD/target/release/warren" bash interop/python_suites/run.sh || status=1
bash fuzz/run.sh || status=1
WARREN_BIN="$PWD/target/release/warren" bash tests/tools/run.sh || status=1
bash python/pytest-warren/ci.sh || status=1
bash node/warren-broker/ci.sh || status=1

exit $status
