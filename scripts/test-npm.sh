#!/usr/bin/env bash
# Installs the npm oracle of the interop tests (tests/interop/package.json:
# @confluentinc/schemaregistry, Confluent's JavaScript registry client) into
# STELE_NPM_DIR (~/.cache/stele/npm) and prints that directory. Optional:
# tests/interop uses it when it is there. Idempotent.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
DIR="${STELE_NPM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/stele/npm}"
command -v npm >/dev/null || { echo "test-npm: no npm; the npm oracle is skipped" >&2; exit 1; }
mkdir -p "$DIR"
exec 9>"$DIR.lock"
flock -w 600 9 || { echo "test-npm: another test-npm.sh holds $DIR.lock" >&2; exit 1; }
if ! cmp -s "$ROOT/tests/interop/package.json" "$DIR/package.json" ||
   [ ! -d "$DIR/node_modules/@confluentinc/schemaregistry" ]; then
  echo "test-npm: installing $(sed -n 's/.*"\(@confluentinc[^"]*\)": "\([^"]*\)".*/\1@\2/p' "$ROOT/tests/interop/package.json") into $DIR (npm)" >&2
  cp "$ROOT/tests/interop/package.json" "$DIR/package.json"
  (cd "$DIR" && npm install --no-audit --no-fund --loglevel=error >&2)
fi
echo "$DIR"
