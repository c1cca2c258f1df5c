#!/usr/bin/env bash
# Runs tests/interop/test_interop.py in the test venv (scripts/test-venv.sh
# makes it if missing): stele against Confluent's Python client through a
# real schema registry on a real Kafka broker. ctest passes BUILD_DIR.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
BUILD="${1:?usage: run.sh BUILD_DIR}"
VENV="$("$ROOT/scripts/test-venv.sh")"
exec "$VENV/bin/python" "$ROOT/tests/interop/test_interop.py" "$BUILD" "$ROOT" "${@:2}"
