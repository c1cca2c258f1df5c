# Sourced by kafka-start.sh and kafka-stop.sh: broker_pid prints the pid of
# the broker of state dir $DIR, or fails. The pid file is only trusted if
# that process runs with -Dstele.kafka.dir=$DIR (after a reboot the pid may
# belong to something else); without a usable pid file the broker is
# looked for among the running processes, and the pid file written again.
#
# The scripts run with pipefail: "tr | grep -q" would fail whenever grep
# quits before tr has written a java command line of several KB (SIGPIPE),
# which is why grep reads all of it here.

is_broker_of_dir() {
  [ -r "/proc/$1/cmdline" ] &&
    tr '\0' '\n' 2>/dev/null <"/proc/$1/cmdline" | grep -xF -- "-Dstele.kafka.dir=$DIR" >/dev/null
}

broker_pid() {
  local pid=""
  [ -f "$PIDFILE" ] && pid="$(cat "$PIDFILE" 2>/dev/null)"
  if [[ "$pid" =~ ^[0-9]+$ ]] && is_broker_of_dir "$pid"; then
    echo "$pid"
    return 0
  fi
  for pid in $(pgrep -f -- "-Dstele.kafka.dir=$DIR" 2>/dev/null); do
    if is_broker_of_dir "$pid"; then
      echo "$pid" >"$PIDFILE.tmp" && mv "$PIDFILE.tmp" "$PIDFILE"
      echo "$pid"
      return 0
    fi
  done
  return 1
}
