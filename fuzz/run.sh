#!/usr/bin/env bash
# A bounded cargo-fuzz run of every target in fuzz/Cargo.toml, as CI runs it:
# each target FUZZ_SECONDS (default 60) from its committed corpus
# (fuzz/corpus/<target>/, see fuzz/seeds.py). Inputs it finds go to a
# scratch directory, not into the repository. Exits non-zero if any target
# crashes (a panic, an overflowed stack, a failed invariant), times out on
# one input (FUZZ_INPUT_TIMEOUT seconds, default 10: a hang) or fails to
# build; the crashing input is left in fuzz/artifacts/<target>/.
#
# Nightly is not available, so RUSTC_BOOTSTRAP=1 lets the stable compiler
# take the sanitizer-coverage flags cargo-fuzz passes. cargo-fuzz itself is
# installed from crates.io on first use.
set -uo pipefail
cd "$(dirname "$0")"

seconds=${FUZZ_SECONDS:-60}
input_timeout=${FUZZ_INPUT_TIMEOUT:-10}

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "installing cargo-fuzz from crates.io" >&2
  cargo install cargo-fuzz --locked || exit 1
fi

targets=$(cargo fuzz list) || exit 1
[ -n "$targets" ] || { echo "fuzz/run.sh: no targets in fuzz/Cargo.toml" >&2; exit 1; }

export RUSTC_BOOTSTRAP=1
status=0
for target in $targets; do
  echo "== fuzz target $target: ${seconds}s"
  # One build per target before the clock starts, so the time goes to fuzzing.
  if ! cargo fuzz build -s none "$target"; then
    echo "FAIL fuzz target $target: build failed" >&2
    status=1
    continue
  fi
  mkdir -p "corpus/$target"
  scratch=$(mktemp -d)
  # First corpus directory: where new inputs go; the committed one is read only.
  if cargo fuzz run -s none "$target" "$scratch" "corpus/$target" -- \
      -max_total_time="$seconds" -timeout="$input_timeout" -print_final_stats=1; then
    echo "PASS fuzz target $target"
  else
    echo "FAIL fuzz target $target: see fuzz/artifacts/$target/" >&2
    status=1
  fi
  rm -rf "$scratch"
done
exit $status
