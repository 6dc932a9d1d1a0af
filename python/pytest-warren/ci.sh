#!/usr/bin/env bash
# The pytest-warren wheel, built and tested as a user would get it:
#   1. maturin (pinned in build-requirements.txt, in a build venv kept in
#      .venv-build) builds the wheel: the pure-Python plugin in src/ plus the
#      crate's `warren` binary as a script. It builds in release into
#      $CARGO_TARGET_DIR (default: the repository's target/), so after
#      test.sh's `cargo build --release` only the stripped binary is linked;
#   2. a clean venv (.venv-test, made anew on every run) gets the wheel and
#      requirements.txt (pytest, pika, kombu, pinned), and nothing else;
#   3. tests/ runs there with WARREN_BIN unset, so the fixtures start the
#      binary the wheel installed, and from outside src/, so the plugin is the
#      installed one (pytest loads it through its pytest11 entry point).
# Usage: bash python/pytest-warren/ci.sh [PYTEST_ARGS...]
# The wheel is left in $CARGO_TARGET_DIR/wheels/.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
start=$SECONDS
step() { echo "pytest-warren: $* ($((SECONDS - start)) s)"; }

if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
  echo "pytest-warren: python3 has no venv/ensurepip (apt-get install python3-venv)" >&2
  exit 2
fi
pip_install() { "$1/bin/pip" install --quiet --disable-pip-version-check "${@:2}"; }

# 1. The wheel.
build="$here/.venv-build"
[[ -x $build/bin/python ]] || python3 -m venv "$build" || exit 2
if ! cmp -s "$here/build-requirements.txt" "$build/.installed"; then
  pip_install "$build" -r "$here/build-requirements.txt" \
    && cp "$here/build-requirements.txt" "$build/.installed" \
    || { echo "pytest-warren: pip install maturin failed" >&2; exit 2; }
fi
dist="$CARGO_TARGET_DIR/wheels/pytest-warren"
rm -rf "$dist"
(cd "$here" && "$build/bin/maturin" build --release --out "$dist") \
  || { echo "pytest-warren: maturin build failed" >&2; exit 1; }
wheel=$(ls "$dist"/pytest_warren-*.whl 2>/dev/null | head -n 1)
[[ -n $wheel ]] || { echo "pytest-warren: maturin left no wheel in $dist" >&2; exit 1; }
step "built $(basename "$wheel"), $(du -h "$wheel" | cut -f1)"

# 2. A clean venv with the wheel and the test clients.
venv="$here/.venv-test"
rm -rf "$venv"
python3 -m venv "$venv" || exit 2
pip_install "$venv" "$wheel" -r "$here/requirements.txt" \
  || { echo "pytest-warren: pip install of the wheel failed" >&2; exit 1; }
[[ -x $venv/bin/warren ]] || { echo "pytest-warren: the wheel installed no bin/warren" >&2; exit 1; }
"$venv/bin/warren" --version || exit 1
step "installed into a clean venv"

# 3. The suite, against the installed plugin and binary.
cd "$here/tests" || exit 2
env -u WARREN_BIN -u PYTHONPATH PYTHONDONTWRITEBYTECODE=1 \
  timeout 600 "$venv/bin/python" -m pytest -p no:cacheprovider -v "$@" .
rc=$?
step "pytest exited $rc"
exit $rc
