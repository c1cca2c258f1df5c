#!/usr/bin/env bash
# Runs tests/interop/test_interop.py in the test venv (scripts/test-venv.sh
# makes it if missing): stele against Confluent's Python client, and its
# JavaScript registry client when npm is there (scripts/test-npm.sh),
# through a real schema registry on a real Kafka broker. ctest passes
# BUILD_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:?usage: run.sh BUILD_DIR}"
VENV="$("$ROOT/scripts/test-venv.sh")"
# The npm oracle is optional: without npm the test says it skipped it.
if NPM_DIR="$("$ROOT/scripts/test-npm.sh")"; then export STELE_NPM_DIR="$NPM_DIR"; fi
exec "$VENV/bin/python" "$ROOT/tests/interop/test_interop.py" "$BUILD" "$ROOT" "${@:2}"
