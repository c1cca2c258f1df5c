#!/usr/bin/env bash
# Stops the PostgreSQL cluster started by scripts/pg-start.sh (pg_ctl stop
# -m fast: open transactions are rolled back, sessions are cut). With
# --wipe, also removes its dir (STELE_PG_DIR, /tmp/stele-pg): every database
# in it. A server this script did not start is left alone.
set -euo pipefail

DIR="${STELE_PG_DIR:-/tmp/stele-pg}"
DATA="$DIR/data"

say() { echo "pg-stop: $*"; }
die() { echo "pg-stop: $*" >&2; exit 1; }

wipe=0
for arg in "$@"; do
  case "$arg" in
    --wipe) wipe=1 ;;
    -h|--help) sed -n '2,5p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (usage: pg-stop.sh [--wipe])" ;;
  esac
done

if [ ! -d "$DIR" ]; then
  say "nothing to stop: $DIR does not exist"
  exit 0
fi
# rm -rf on a path from the environment: only on a dir pg-start.sh made.
if [ "$wipe" = 1 ] && [ ! -f "$DATA/PG_VERSION" ] &&
   [ -n "$(ls -A "$DIR" 2>/dev/null | grep -vxF .lock)" ]; then
  die "$DIR does not look like a pg-start.sh dir; not wiping it"
fi

if [ -f "$DATA/PG_VERSION" ]; then
  BIN="${STELE_PG_BIN:-/usr/lib/postgresql/$(cat "$DATA/PG_VERSION")/bin}"
  [ -x "$BIN/pg_ctl" ] || die "no pg_ctl in $BIN (set STELE_PG_BIN)"
  if [ "$(id -u)" = 0 ]; then
    as_owner() { runuser -u "$(stat -c %U "$DATA")" -- "$@"; }
  else
    as_owner() { "$@"; }
  fi
  exec 9>>"$DIR/.lock"
  flock -w 120 9 || die "timed out waiting for $DIR/.lock (held by pg-start.sh?)"
  if as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1; then
    as_owner "$BIN/pg_ctl" stop -D "$DATA" -m fast -w -t 60 >/dev/null ||
      die "pg_ctl stop failed; see $DIR/postgres.log"
    say "stopped the cluster in $DATA"
  else
    say "not running ($DATA)"
  fi
fi

if [ "$wipe" = 1 ]; then
  rm -rf -- "$DIR"
  say "removed $DIR"
fi
