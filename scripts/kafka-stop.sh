#!/usr/bin/env bash
# Stops the Kafka broker started by scripts/kafka-start.sh: SIGTERM (a clean
# shutdown), then SIGKILL if it is still running after
# STELE_KAFKA_STOP_TIMEOUT seconds (30). With --wipe, also removes the state
# dir (STELE_KAFKA_DIR, /tmp/stele-kafka): topics, offsets, logs.
# A broker this script did not start is left alone.
set -euo pipefail

DIR="${STELE_KAFKA_DIR:-/tmp/stele-kafka}"
STOP_TIMEOUT="${STELE_KAFKA_STOP_TIMEOUT:-30}"
PIDFILE="$DIR/kafka.pid"

say() { echo "kafka-stop: $*"; }
die() { echo "kafka-stop: $*" >&2; exit 1; }

wipe=0
for arg in "$@"; do
  case "$arg" in
    --wipe) wipe=1 ;;
    -h|--help) sed -n '2,6p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument '$arg' (usage: kafka-stop.sh [--wipe])" ;;
  esac
done
[[ "$STOP_TIMEOUT" =~ ^[0-9]+$ ]] || die "STELE_KAFKA_STOP_TIMEOUT '$STOP_TIMEOUT' is not a number"

if [ ! -d "$DIR" ]; then
  say "nothing to stop: $DIR does not exist"
  exit 0
fi
# rm -rf on a path from the environment: only on a dir kafka-start.sh made.
if [ "$wipe" = 1 ] && [ ! -f "$DIR/server.properties" ] && [ ! -f "$DIR/classpath" ] &&
   [ -n "$(find "$DIR" -mindepth 1 -maxdepth 1 ! -name .lock -print -quit)" ]; then
  die "$DIR does not look like a kafka-start.sh state dir; not wiping it"
fi

# Waits for a kafka-start.sh that is still starting the broker.
exec 9>"$DIR/.lock"
flock -w 180 9 || die "timed out waiting for $DIR/.lock (held by kafka-start.sh?)"

# shellcheck source=kafka/broker-pid.sh
. "$(dirname "${BASH_SOURCE[0]}")/kafka/broker-pid.sh"

gone() { ! kill -0 "$1" 2>/dev/null; }

if pid="$(broker_pid)"; then
  kill -TERM "$pid" 2>/dev/null || true
  deadline=$((SECONDS + STOP_TIMEOUT))
  while ! gone "$pid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
  if gone "$pid"; then
    say "stopped the broker (pid $pid)"
  else
    say "the broker (pid $pid) did not stop within ${STOP_TIMEOUT}s; killing it"
    kill -KILL "$pid" 2>/dev/null || true
    for _ in $(seq 50); do gone "$pid" && break; sleep 0.1; done
    gone "$pid" || die "pid $pid survived SIGKILL"
  fi
else
  say "no broker started by kafka-start.sh is running for $DIR"
fi
rm -f "$PIDFILE"

if [ "$wipe" = 1 ]; then
  rm -rf -- "$DIR"
  say "removed $DIR"
fi
