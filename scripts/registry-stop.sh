#!/usr/bin/env bash
# Stops the schema registry started by scripts/registry-start.sh: SIGTERM,
# then SIGKILL if it still runs after STELE_REGISTRY_STOP_TIMEOUT seconds
# (20). Its schemas are in memory only and go with it. With --wipe, also
# removes the state dir (STELE_REGISTRY_DIR, /tmp/stele-registry); the
# unpacked server in ~/.cache/stele stays. A registry this script did not
# start is left alone.
set -euo pipefail

DIR="${STELE_REGISTRY_DIR:-/tmp/stele-registry}"
STOP_TIMEOUT="${STELE_REGISTRY_STOP_TIMEOUT:-20}"
PIDFILE="$DIR/registry.pid"

say() { echo "registry-stop: $*"; }
die() { echo "registry-stop: $*" >&2; exit 1; }

wipe=0
for arg in "$@"; do
  case "$arg" in
    --wipe) wipe=1 ;;
    -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (usage: registry-stop.sh [--wipe])" ;;
  esac
done
[[ "$STOP_TIMEOUT" =~ ^[0-9]+$ ]] || die "STELE_REGISTRY_STOP_TIMEOUT '$STOP_TIMEOUT' is not a number"

if [ ! -d "$DIR" ]; then
  say "nothing to stop: $DIR does not exist"
  exit 0
fi
if [ "$wipe" = 1 ] && [ ! -f "$DIR/ports" ] &&
   [ -n "$(find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock ! -name mvn.log -print -quit)" ]; then
  die "$DIR does not look like a registry-start.sh state dir; not wiping it"
fi

exec 9>"$DIR/.lock"
flock -w 240 9 || die "timed out waiting for $DIR/.lock (held by registry-start.sh?)"

gone() { ! kill -0 "$1" 2>/dev/null; }
is_registry_of_dir() {
  [ -r "/proc/$1/cmdline" ] &&
    tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline" | grep -xF -- "-Dstele.registry.dir=$DIR" >/dev/null
}

pid="$(cat "$PIDFILE" 2>/dev/null || true)"
if [[ "$pid" =~ ^[0-9]+$ ]] && is_registry_of_dir "$pid"; then
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while ! gone "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  if gone "$pid"; then
    say "stopped the registry (pid $pid)"
  else
    say "the registry (pid $pid) did not stop within ${STOP_TIMEOUT}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do gone "$pid" && break; sleep 0.1; done
    gone "$pid" || die "pid $pid survived SIGKILL"
  fi
else
  say "no registry started by registry-start.sh is running for $DIR"
fi
rm -f "$PIDFILE"

if [ "$wipe" = 1 ]; then
  rm -rf -- "$DIR"
  say "removed $DIR"
fi
