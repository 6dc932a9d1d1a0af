#!/usr/bin/env bash
# Runs every test: unit and integration tests (cargo nextest, falling back to
# cargo test), then the interop suite against the release binary.
# Installs what it needs (Python venv with pika) on first use.
set -euo pipefail
cd "$(dirname "$0")"

if ! command -v python3 >/dev/null || ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "installing python3-venv from Debian's packages" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-venv >/dev/null
fi

cargo build --release --bins
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --all-targets --no-fail-fast
else
  cargo test --all-targets --no-fail-fast
fi
cargo test --doc

WARREN_BIN="$PWD/target/release/warren" bash interop/run.sh
