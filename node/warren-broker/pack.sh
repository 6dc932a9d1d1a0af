#!/usr/bin/env bash
# Packs the warren-broker npm tarball: copies the release binary (stripped,
# the original left as it is) to bin/warren here and runs `npm pack`.
# Usage: bash node/warren-broker/pack.sh [WARREN_BINARY]
#   WARREN_BINARY defaults to $WARREN_SOURCE_BIN, else
#   $CARGO_TARGET_DIR/release/warren (test.sh's `cargo build --release`).
# The tarball goes to $CARGO_TARGET_DIR/npm/ (default target/npm/); its path
# is the last line printed.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
target=${CARGO_TARGET_DIR:-$root/target}
src=${1:-${WARREN_SOURCE_BIN:-$target/release/warren}}
fail() { echo "warren-broker: $*" >&2; exit 1; }

[[ -x $src ]] || fail "no binary at $src (cargo build --release, or pass its path)"
# package.json says os linux, cpu x64: refuse to pack another platform's binary.
[[ "$(uname -s) $(uname -m)" == "Linux x86_64" ]] || fail "package.json is for Linux x86_64, this is $(uname -sm)"
cargo_version=$(sed -n 's/^version *= *"\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)
npm_version=$(node -p 'require(process.argv[1]).version' "$here/package.json")
[[ $cargo_version == "$npm_version" ]] \
  || fail "package.json version $npm_version is not Cargo.toml's $cargo_version"

mkdir -p "$here/bin"
rm -f "$here/bin/warren"
strip --strip-all -o "$here/bin/warren" "$src" || fail "strip $src failed"
chmod 755 "$here/bin/warren"
out="$target/npm"
mkdir -p "$out"
rm -f "$out"/warren-broker-*.tgz
(cd "$here" && npm pack --silent --pack-destination "$out" >/dev/null) || fail "npm pack failed"
tarball="$out/warren-broker-$npm_version.tgz"
[[ -f $tarball ]] || fail "npm pack left no $tarball"
echo "$tarball"
