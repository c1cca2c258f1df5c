#!/usr/bin/env bash
# Starts a dedicated PostgreSQL cluster on 127.0.0.1 for development, tests
# and CI: data in STELE_PG_DIR (/tmp/stele-pg), port STELE_PG_PORT (5433, so
# it never clashes with the Debian package's own cluster on 5432), trust
# auth for the superuser "postgres". Installs Debian's postgresql package if
# it is missing. Idempotent: if the cluster already runs, it says so and
# exits 0. Stop it with scripts/pg-stop.sh. docs/postgres.md has the details.
set -euo pipefail

DIR="${STELE_PG_DIR:-/tmp/stele-pg}"
PORT="${STELE_PG_PORT:-5433}"
START_TIMEOUT="${STELE_PG_START_TIMEOUT:-60}"
DATA="$DIR/data"
LOGFILE="$DIR/postgres.log"

say() { echo "pg-start: $*"; }
die() { echo "pg-start: $*" >&2; exit 1; }

case "${1:-}" in
  "") ;;
  -h|--help) sed -n '2,7p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (the cluster is configured through STELE_PG_* variables)" ;;
esac
[[ "$PORT" =~ ^[0-9]+$ ]] && [ "$PORT" -ge 1 ] && [ "$PORT" -le 65535 ] ||
  die "STELE_PG_PORT '$PORT' is not a port number"
[[ "$START_TIMEOUT" =~ ^[0-9]+$ ]] || die "STELE_PG_START_TIMEOUT '$START_TIMEOUT' is not a number"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

# The server binaries: STELE_PG_BIN, else the newest Debian installs.
find_bin() {
  if [ -n "${STELE_PG_BIN:-}" ]; then echo "$STELE_PG_BIN"; return; fi
  ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1
}
BIN="$(find_bin)"
if [ -z "$BIN" ] || [ ! -x "$BIN/initdb" ]; then
  say "installing Debian's postgresql package"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
  BIN="$(find_bin)"
  [ -n "$BIN" ] && [ -x "$BIN/initdb" ] || die "postgresql installed but no initdb under /usr/lib/postgresql/*/bin"
fi

# root cannot run postgres: the cluster belongs to the postgres OS user.
# Anyone else runs it as themselves.
if [ "$(id -u)" = 0 ]; then
  OWNER=postgres
  id -u postgres >/dev/null 2>&1 || die "no 'postgres' OS user (the postgresql package creates it)"
  as_owner() { runuser -u postgres -- "$@"; }
else
  OWNER="$(id -un)"
  as_owner() { "$@"; }
fi

CONNINFO="host=127.0.0.1 port=$PORT user=postgres dbname=postgres"
print_connection() {
  echo "conninfo: $CONNINFO"
  echo "export PGHOST=127.0.0.1 PGPORT=$PORT PGUSER=postgres PGDATABASE=postgres"
}

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }

# The port the cluster in $DATA runs on, when it runs (postmaster.pid line 4).
running_port() {
  as_owner "$BIN/pg_ctl" status -D "$DATA" >/dev/null 2>&1 || return 1
  sed -n 4p "$DATA/postmaster.pid" 2>/dev/null
}

mkdir -p "$DIR"
if [ "$(id -u)" = 0 ]; then chown "$OWNER": "$DIR"; fi
chmod 755 "$DIR"

# Two callers at once (parallel tests) start it once.
exec 9>>"$DIR/.lock"
flock -w $((START_TIMEOUT + 30)) 9 || die "timed out waiting for $DIR/.lock (another pg-start.sh?)"

if p="$(running_port)"; then
  [ "$p" = "$PORT" ] ||
    die "the cluster in $DATA already runs on port $p, not $PORT: stop it with STELE_PG_PORT=$p scripts/pg-stop.sh, or use STELE_PG_PORT=$p"
  say "already running on 127.0.0.1:$PORT ($DATA)"
  print_connection
  exit 0
fi

if port_open "$PORT"; then
  who="$(ss -ltnpH "sport = :$PORT" 2>/dev/null | sed -n 's/.*users:((\("[^"]*"\).*/\1/p' | head -n1)"
  die "port $PORT on 127.0.0.1 is taken by another process${who:+ ($who)}, not the cluster in $DATA; choose another with STELE_PG_PORT"
fi

if [ ! -f "$DATA/PG_VERSION" ]; then
  [ ! -e "$DATA" ] || [ -z "$(ls -A "$DATA" 2>/dev/null)" ] ||
    die "$DATA exists but is not a PostgreSQL data dir; remove it or choose STELE_PG_DIR"
  say "creating a cluster in $DATA"
  # UTF-8 with the C.UTF-8 locale: present on every Debian system. stele's
  # TEXT columns use COLLATE "C" anyway; see docs/postgres.md.
  as_owner "$BIN/initdb" -D "$DATA" -U postgres --auth=trust -E UTF8 \
    --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 ||
    die "initdb failed; see $DIR/initdb.log"
  cat >>"$DATA/postgresql.conf" <<EOF

# scripts/pg-start.sh: a local cluster for stele's development and tests.
listen_addresses = '127.0.0.1'
port = $PORT
unix_socket_directories = '$DIR'
fsync = on
max_connections = 100
EOF
fi

say "starting PostgreSQL ($BIN) on 127.0.0.1:$PORT, log $LOGFILE"
# -o: the port and address from the environment win over postgresql.conf,
# so the same dir can be started on another STELE_PG_PORT. 9>&-: the server
# must not inherit (and hold) the lock.
if ! as_owner "$BIN/pg_ctl" start -D "$DATA" -l "$LOGFILE" -w -t "$START_TIMEOUT" \
    -o "-p $PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$DIR" \
    >/dev/null 9>&-; then
  tail -n 20 "$LOGFILE" >&2 || true
  die "pg_ctl start failed; see $LOGFILE"
fi

deadline=$((SECONDS + START_TIMEOUT))
until "$BIN/pg_isready" -q -h 127.0.0.1 -p "$PORT" -t 2; do
  [ $SECONDS -lt $deadline ] || die "PostgreSQL is not ready on 127.0.0.1:$PORT after ${START_TIMEOUT}s; see $LOGFILE"
  sleep 0.2
done
say "ready on 127.0.0.1:$PORT"
print_connection
