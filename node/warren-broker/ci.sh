#!/usr/bin/env bash
# The warren-broker npm package, built and tested as a user would get it:
#   1. pack.sh strips a copy of the release binary into bin/warren and
#      `npm pack`s the package into $CARGO_TARGET_DIR/npm/ (default target/npm/);
#      the binary is $WARREN_SOURCE_BIN, else target/release/warren from
#      test.sh's `cargo build --release` (nothing is compiled here);
#   2. a clean project in a temp dir gets test/package.json and
#      test/package-lock.json (amqplib, pinned) through `npm ci`, then the
#      tarball through `npm install --no-save`, and nothing else;
#   3. test/*.test.js run there with Node's test runner and WARREN_BIN unset,
#      so they require the installed package and start the binary it ships.
# Usage: bash node/warren-broker/ci.sh [NODE_TEST_ARGS...]
# The tarball is left in $CARGO_TARGET_DIR/npm/.
set -uo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$root/target}
start=$SECONDS
step() { echo "warren-broker: $* ($((SECONDS - start)) s)"; }

for tool in node npm strip; do
  command -v "$tool" >/dev/null || { echo "warren-broker: no $tool on PATH (apt-get install nodejs npm binutils)" >&2; exit 2; }
done
if ! node -e 'process.exit(Number(process.versions.node.split(".")[0]) >= 18 ? 0 : 1)'; then
  echo "warren-broker: node $(node --version) is too old, the package needs >= 18 (global fetch)" >&2
  exit 2
fi

# 1. The tarball.
tarball=$(bash "$here/pack.sh" "${WARREN_SOURCE_BIN:-$CARGO_TARGET_DIR/release/warren}" | tail -n 1)
[[ -n $tarball && -f $tarball ]] || { echo "warren-broker: pack.sh made no tarball" >&2; exit 1; }
step "packed $(basename "$tarball"), $(du -h "$tarball" | cut -f1)"

# 2. A clean project with amqplib and the tarball.
project=$(mktemp -d "${TMPDIR:-/tmp}/warren-broker-ci.XXXXXX") || exit 2
trap 'rm -rf "$project"' EXIT
cp "$here/test/package.json" "$here/test/package-lock.json" "$here"/test/*.js "$project/" || exit 2
npm_quiet=(--no-audit --no-fund --loglevel=error)
(cd "$project" && npm ci "${npm_quiet[@]}" >/dev/null) \
  || { echo "warren-broker: npm ci of test/package-lock.json failed" >&2; exit 1; }
(cd "$project" && npm install --no-save "${npm_quiet[@]}" "$tarball" >/dev/null) \
  || { echo "warren-broker: npm install of $tarball failed" >&2; exit 1; }
installed="$project/node_modules/warren-broker/bin/warren"
[[ -x $installed ]] || { echo "warren-broker: the tarball installed no executable bin/warren" >&2; exit 1; }
"$installed" --version || exit 1
step "installed into a clean project"

# 3. The suite, against the installed package and binary.
cd "$project" || exit 2
env -u WARREN_BIN -u NODE_PATH -u NODE_OPTIONS \
  timeout 600 node --test --test-reporter=spec "$@" ./*.test.js
rc=$?
step "node --test exited $rc"
# Every broker the suite started ran the installed binary: none may be left.
sleep 0.2
left=$(pgrep -f "^$installed " || true)
if [[ -n $left ]]; then
  echo "warren-broker: brokers left running after the suite: $(echo $left)" >&2
  rc=1
fi
exit $rc
