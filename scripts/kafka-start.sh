#!/usr/bin/env bash
# Starts a single-node Apache Kafka broker (KRaft, broker and controller in
# one process) on 127.0.0.1 for development, tests and CI. The broker's jars
# come from Maven Central through scripts/kafka/pom.xml and stay in ~/.m2.
# Idempotent: if a broker already answers on the port, it says so and exits 0.
# With --fresh, a broker it has to start starts without topics (the data of
# an earlier broker of this state dir is removed); a running one is kept.
# Stop it with scripts/kafka-stop.sh. docs/kafka-broker.md has the details.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
POM="$ROOT/scripts/kafka/pom.xml"
LOG4J="$ROOT/scripts/kafka/log4j2.xml"
PORT="${STELE_KAFKA_PORT:-9092}"
CONTROLLER_PORT="${STELE_KAFKA_CONTROLLER_PORT:-9093}"
DIR="${STELE_KAFKA_DIR:-/tmp/stele-kafka}"
START_TIMEOUT="${STELE_KAFKA_START_TIMEOUT:-90}"
HEAP="${STELE_KAFKA_HEAP:-512m}"
BOOTSTRAP="127.0.0.1:$PORT"
PIDFILE="$DIR/kafka.pid"

say() { echo "kafka-start: $*"; }
die() { echo "kafka-start: $*" >&2; exit 1; }

fresh_data=0
case "${1:-}" in
  "") ;;
  --fresh) fresh_data=1 ;;
  -h|--help) sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
  *) die "unknown argument '$1' (usage: kafka-start.sh [--fresh]; the broker is configured through STELE_KAFKA_* variables)" ;;
esac
for p in "$PORT" "$CONTROLLER_PORT" "$START_TIMEOUT"; do
  [[ "$p" =~ ^[0-9]+$ ]] || die "'$p' is not a number (check STELE_KAFKA_PORT, STELE_KAFKA_CONTROLLER_PORT, STELE_KAFKA_START_TIMEOUT)"
done
[ "$PORT" != "$CONTROLLER_PORT" ] || die "STELE_KAFKA_PORT and STELE_KAFKA_CONTROLLER_PORT are both $PORT"

# Java 17 and Maven are all the broker needs; install them only if missing.
ensure_tools() {
  local missing=()
  command -v java >/dev/null || missing+=(default-jre-headless)
  command -v mvn >/dev/null || missing+=(maven)
  if [ ${#missing[@]} -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    say "installing ${missing[*]}"
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  local major
  major="$(java -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)"
  if [ -z "$major" ] || [ "$major" -lt 17 ]; then
    die "Kafka 4 needs Java 17 or newer; 'java' is $(java -version 2>&1 | head -n1)"
  fi
}

# Nothing listening gives "connection refused" at once on the loopback.
port_open() {
  timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null
}

# shellcheck source=kafka/broker-pid.sh
. "$(dirname "${BASH_SOURCE[0]}")/kafka/broker-pid.sh"

# The classpath is resolved once and kept in the state dir; it is resolved
# again when the POM changes or a jar has gone from ~/.m2. Offline first, so
# a warm ~/.m2 needs no network.
resolve_classpath() {
  local cpfile="$DIR/classpath" sumfile="$DIR/classpath.pom-sha256" sum jar ok=1
  sum="$(sha256sum "$POM" | cut -d' ' -f1)"
  if [ -s "$cpfile" ] && [ "$(cat "$sumfile" 2>/dev/null)" = "$sum" ]; then
    IFS=: read -r -a jars <"$cpfile" || true  # no newline at the end
    for jar in "${jars[@]}"; do [ -f "$jar" ] || { ok=0; break; }; done
    if [ "$ok" = 1 ]; then CP="$(cat "$cpfile")"; return; fi
  fi
  local tmp="$cpfile.tmp" mvnlog="$DIR/mvn.log"
  local args=(-q -B -Dstyle.color=never -f "$POM" dependency:build-classpath
              -Dmdep.outputFile="$tmp" -Dmdep.includeScope=runtime)
  rm -f "$tmp"
  if ! mvn -o "${args[@]}" >"$mvnlog" 2>&1; then
    say "fetching the Kafka broker's jars from Maven Central (once; kept in ~/.m2)"
    mvn "${args[@]}" >"$mvnlog" 2>&1 || { cat "$mvnlog" >&2; die "mvn could not resolve $POM"; }
  fi
  [ -s "$tmp" ] || die "mvn wrote no classpath (see $mvnlog)"
  mv "$tmp" "$cpfile"
  echo "$sum" >"$sumfile"
  CP="$(cat "$cpfile")"
}

# kafka_tool SECONDS CLASS ARGS...: runs a Kafka command-line class from the
# broker's classpath, killed after SECONDS. Its logging goes to tools.log so
# that the broker's log holds only the broker.
kafka_tool() {
  local secs="$1"; shift
  timeout "$secs" java -Xmx256m -XX:TieredStopAtLevel=1 -cp "$CP" \
    -Dlog4j2.configurationFile="$LOG4J" -Dstele.kafka.logfile="$DIR/tools.log" "$@"
}

# A real Kafka request (Metadata through the admin client), not just an open
# port: the listener opens shortly before the broker serves requests.
broker_answers() {
  port_open "$PORT" || return 1
  kafka_tool 30 org.apache.kafka.tools.TopicCommand \
    --bootstrap-server "$BOOTSTRAP" --command-config "$DIR/tools.properties" --list \
    >/dev/null 2>&1
}

write_config() {
  local want="$DIR/server.properties.new"
  cat >"$want" <<EOF
# Written by scripts/kafka-start.sh: a single-node test broker.
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$CONTROLLER_PORT
listeners=PLAINTEXT://127.0.0.1:$PORT,CONTROLLER://127.0.0.1:$CONTROLLER_PORT
advertised.listeners=PLAINTEXT://127.0.0.1:$PORT
inter.broker.listener.name=PLAINTEXT
controller.listener.names=CONTROLLER
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$DIR/data

# One node: every replication factor and ISR minimum is 1.
default.replication.factor=1
min.insync.replicas=1
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1

# Internal topics are created on first use; 50 partitions each (the
# default) makes the first consumer group or transaction slow.
offsets.topic.num.partitions=4
transaction.state.log.num.partitions=4
share.coordinator.state.topic.num.partitions=1
num.partitions=1

# Tests create their topics; a typo should fail, not make a topic.
auto.create.topics.enable=false
delete.topic.enable=true
group.initial.rebalance.delay.ms=0

# After a crash (kill -9) the restarted broker cannot register until its
# old registration expires: 9 s by default. Fault tests kill the broker.
broker.heartbeat.interval.ms=1000
broker.session.timeout.ms=3000

# Sized for a 2-core machine and a 512 MB heap.
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.cleaner.threads=1
log.cleaner.dedupe.buffer.size=33554432
EOF
  # Formatting recorded the controller's address in the metadata log; any
  # other setting may change between starts.
  local key="controller.quorum.bootstrap.servers"
  if [ -f "$DIR/data/meta.properties" ] && [ -f "$DIR/server.properties" ] &&
     [ "$(grep "^$key=" "$DIR/server.properties")" != "$(grep "^$key=" "$want")" ]; then
    rm -f "$want"
    die "$DIR was formatted for another controller port ($(grep "^$key=" "$DIR/server.properties")); run scripts/kafka-stop.sh --wipe or set STELE_KAFKA_DIR"
  fi
  mv "$want" "$DIR/server.properties"
}

format_storage() {
  [ -f "$DIR/data/meta.properties" ] && return
  local id
  id="$(kafka_tool 120 kafka.tools.StorageTool random-uuid)"
  kafka_tool 120 kafka.tools.StorageTool format -t "$id" -c "$DIR/server.properties" \
    --standalone >"$DIR/format.log" 2>&1 ||
    { cat "$DIR/format.log" >&2; die "formatting the KRaft storage in $DIR/data failed"; }
}

start_broker() {
  rm -f "$PIDFILE"
  echo "--- $(date -u +%FT%TZ) kafka-start.sh" >>"$DIR/broker.out"
  # setsid: its own session, so the broker outlives the shell, test or CI
  # step that started it. The pid is written by the shell that then becomes
  # java. That shell first closes every inherited descriptor but 0-2: the
  # broker must not keep holding our lock (fd 9) or a caller's pipes, whose
  # readers would then never see end-of-file.
  # shellcheck disable=SC2016 # expanded by the inner shell
  setsid nohup bash -c '
    for fd in $(ls /proc/$$/fd); do [ "$fd" -gt 2 ] && eval "exec $fd>&-"; done
    echo $$ >"$1.tmp" && mv "$1.tmp" "$1"; shift; exec "$@"' _ "$PIDFILE" \
    java -Xms"$HEAP" -Xmx"$HEAP" -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true \
    -Dstele.kafka.dir="$DIR" -Dkafka.logs.dir="$DIR" \
    -Dlog4j2.configurationFile="$LOG4J" -Dstele.kafka.logfile="$DIR/broker.log" \
    -cp "$CP" kafka.Kafka "$DIR/server.properties" \
    </dev/null >>"$DIR/broker.out" 2>&1 &
  for _ in $(seq 50); do [ -f "$PIDFILE" ] && return; sleep 0.1; done
  die "the broker process did not start (see $DIR/broker.out)"
}

show_logs() {
  echo "--- tail of $DIR/broker.log" >&2
  tail -n 30 "$DIR/broker.log" >&2 2>/dev/null || true
  echo "--- tail of $DIR/broker.out" >&2
  tail -n 15 "$DIR/broker.out" >&2 2>/dev/null || true
}

stop_failed_broker() {
  local pid="$1"
  kill -TERM "$pid" 2>/dev/null || return 0
  for _ in $(seq 100); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

ensure_tools
mkdir -p "$DIR"
exec 9>"$DIR/.lock"
flock -w $((START_TIMEOUT + 60)) 9 || die "another kafka-start.sh or kafka-stop.sh holds $DIR/.lock"
resolve_classpath
VERSION="$(tr ':' '\n' <<<"$CP" | sed -n 's|.*/kafka_2\.13-\(.*\)\.jar$|\1|p' | head -n1)"
STOP_HINT="stop with $ROOT/scripts/kafka-stop.sh"
[ -n "${STELE_KAFKA_DIR:-}" ] && STOP_HINT="stop with STELE_KAFKA_DIR=$DIR $ROOT/scripts/kafka-stop.sh"

# Short timeouts for the readiness check: a broker that is not up yet
# should fail the check quickly so that it is tried again.
printf '%s\n' "request.timeout.ms=5000" "default.api.timeout.ms=10000" >"$DIR/tools.properties"
if pid="$(broker_pid)"; then
  # Ours and running, maybe still starting: wait for it below.
  grep -qxF "advertised.listeners=PLAINTEXT://$BOOTSTRAP" "$DIR/server.properties" ||
    die "the broker of $DIR (pid $pid) runs with $(grep '^advertised.listeners=' "$DIR/server.properties"), not on $BOOTSTRAP; stop it first or set STELE_KAFKA_DIR"
elif port_open "$PORT"; then
  broker_answers || die "127.0.0.1:$PORT is in use, but not by a Kafka broker that answers"
  say "a Kafka broker already answers on $BOOTSTRAP, not started by this script; leaving it alone"
  exit 0
else
  port_open "$CONTROLLER_PORT" && die "controller port 127.0.0.1:$CONTROLLER_PORT is in use (set STELE_KAFKA_CONTROLLER_PORT)"
  # A broker recovers every partition it has at start: thousands of
  # leftover topics take it minutes.
  if [ "$fresh_data" = 1 ] && [ -d "$DIR/data" ]; then
    say "--fresh: removing the topics of the last broker of $DIR"
    rm -rf -- "$DIR/data"
  fi
  write_config
  format_storage
  start_broker
  pid="$(cat "$PIDFILE")"
  fresh=1
fi

deadline=$((SECONDS + START_TIMEOUT))
until broker_answers; do
  if ! kill -0 "$pid" 2>/dev/null; then
    show_logs
    die "the broker (pid $pid) exited while starting"
  fi
  if [ "$SECONDS" -ge "$deadline" ]; then
    show_logs
    if [ -n "${fresh:-}" ]; then
      stop_failed_broker "$pid"
      die "the broker did not answer on $BOOTSTRAP within ${START_TIMEOUT}s; stopped it"
    fi
    die "the broker (pid $pid) did not answer on $BOOTSTRAP within ${START_TIMEOUT}s"
  fi
  sleep 0.5
done

if [ -n "${fresh:-}" ]; then
  say "Kafka $VERSION ready on $BOOTSTRAP in ${SECONDS}s (pid $pid, log $DIR/broker.log); $STOP_HINT"
else
  say "Kafka $VERSION already running on $BOOTSTRAP (pid $pid, log $DIR/broker.log); $STOP_HINT"
fi
