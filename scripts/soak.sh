#!/usr/bin/env bash
# The long fault soak: stele_chaos (tests/chaos/chaos.h) run after run for
# as long as you ask, each run with its own seed, which it prints. Every
# run starts hosts of the bank example, loads them from concurrent clients
# and meanwhile SIGKILLs and restarts hosts, pauses one past its session
# timeout and restarts the server; then it audits exactly-once. A failed
# run keeps its directory (the hosts' and clients' output, the histories)
# and the soak goes on; the exit status is 1 if any run failed.
#
#   scripts/soak.sh [--backend kafka|postgres|sqlite] [--minutes M]
#                   [--run-seconds S] [--seed N] [-- stele_chaos options]
#
# Defaults: kafka, 30 minutes, runs of 300 s, a random first seed (run i
# uses seed + i). Replay a run with: build/tests/chaos/stele_chaos
# --backend B --seed N --duration S. Summaries go to stdout and to
# soak-<date>.log in the current directory. Build first (scripts/build.sh);
# the servers start as the tests start them.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CHAOS="${STELE_BUILD:-$ROOT/build}/tests/chaos/stele_chaos"

backend=kafka minutes=30 run_s=300 seed=""
while [ $# -gt 0 ]; do
  case "$1" in
    --backend) backend="$2"; shift 2 ;;
    --minutes) minutes="$2"; shift 2 ;;
    --run-seconds) run_s="$2"; shift 2 ;;
    --seed) seed="$2"; shift 2 ;;
    --) shift; break ;;
    -h|--help) sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "soak: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done
for n in "$minutes" "$run_s"; do
  [[ "$n" =~ ^[0-9]+$ ]] || { echo "soak: '$n' is not a number" >&2; exit 2; }
done
[ -x "$CHAOS" ] || { echo "soak: $CHAOS is not built (scripts/build.sh)" >&2; exit 2; }
[ -n "$seed" ] || seed=$(( $(od -An -N4 -tu4 /dev/urandom) ))

log="soak-$(date +%Y%m%d-%H%M%S).log"
end=$(( $(date +%s) + minutes * 60 ))
echo "soak: backend $backend, $minutes min in runs of $run_s s, first seed $seed; summaries in $log" | tee "$log"
runs=0 failed=0 i=0
while [ "$(date +%s)" -lt "$end" ]; do
  s=$(( seed + i )); i=$(( i + 1 ))
  left=$(( end - $(date +%s) ))
  d=$(( run_s < left ? run_s : left )); [ "$d" -ge 30 ] || d=30
  echo "soak: run $i, seed $s, $d s" | tee -a "$log"
  set +e
  out=$("$CHAOS" --backend "$backend" --seed "$s" --duration "$d" "$@" 2>"/tmp/stele-soak-$s.err")
  rc=$?
  set -e
  echo "$out" | tee -a "$log"
  runs=$(( runs + 1 ))
  if [ "$rc" -ne 0 ]; then
    failed=$(( failed + 1 ))
    echo "soak: run $i (seed $s) FAILED (exit $rc); its stderr: /tmp/stele-soak-$s.err" | tee -a "$log"
  else
    rm -f "/tmp/stele-soak-$s.err"
  fi
done
echo "soak: $runs runs, $failed failed, seeds $seed..$(( seed + i - 1 ))" | tee -a "$log"
[ "$failed" -eq 0 ]
