#!/usr/bin/env bash
# Runs a libFuzzer target of tests/fuzz for SECONDS seconds, or every one
# in turn: scripts/fuzz.sh TARGET|all SECONDS (TARGET is headers, wire,
# event, json, config or list; fuzz_<name> is taken too).
#
# Configures and builds build-fuzz (clang, -DSTELE_FUZZ=ON) when needed,
# fuzzes a scratch copy of tests/fuzz/corpus/<target> (the seeds stay as
# they are), and exits non-zero on a crash, a leak or a sanitizer report,
# printing the path of the input that caused it. tests/fuzz/<target>.dict,
# when there is one, is the target's libFuzzer dictionary. What to do with that
# input: docs/fuzzing.md. STELE_FUZZ_DIR chooses the scratch folder
# (default /tmp/stele-fuzz); extra libFuzzer flags go in STELE_FUZZ_FLAGS.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -ne 2 ] || ! [[ "$2" =~ ^[0-9]+$ ]]; then
  echo "usage: scripts/fuzz.sh TARGET|all SECONDS" >&2
  exit 2
fi
target=${1#fuzz_}
seconds=$2
build=build-fuzz
scratch=${STELE_FUZZ_DIR:-/tmp/stele-fuzz}

all=()
for f in tests/fuzz/fuzz_*.c; do
  n=$(basename "$f" .c)
  [ "$n" = fuzz_codec ] || all+=("${n#fuzz_}")
done
if [ "$target" = all ]; then
  targets=("${all[@]}")
elif [ -f "tests/fuzz/fuzz_$target.c" ]; then
  targets=("$target")
else
  echo "fuzz.sh: no target '$1' (targets: ${all[*]})" >&2
  exit 2
fi

if ! command -v clang >/dev/null; then
  echo "fuzz.sh: clang is missing: scripts/deps.sh --test installs it" >&2
  exit 2
fi
if [ ! -f "$build/build.ninja" ]; then
  CC=clang cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=Debug \
    -DSTELE_FUZZ=ON >/dev/null
fi
ninja -C "$build" "${targets[@]/#/fuzz_}" >/dev/null

status=0
for t in "${targets[@]}"; do
  work="$scratch/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/crashes"
  if [ -d "tests/fuzz/corpus/$t" ]; then
    cp -r "tests/fuzz/corpus/$t/." "$work/corpus/"
  fi
  echo "fuzz.sh: fuzz_$t for ${seconds}s (log: $work/log)"
  dict=()
  if [ -f "tests/fuzz/$t.dict" ]; then dict=(-dict="$PWD/tests/fuzz/$t.dict"); fi
  rc=0
  # libFuzzer's own -timeout (per input) catches a hang; the outer timeout
  # only guards against the fuzzer itself never stopping.
  (cd "$work" && timeout $((seconds + 120)) "$OLDPWD/$build/fuzz_$t" \
      -max_total_time="$seconds" -rss_limit_mb=2048 -malloc_limit_mb=1024 \
      -timeout=10 -print_final_stats=1 -artifact_prefix="$work/crashes/" \
      "${dict[@]}" ${STELE_FUZZ_FLAGS:-} corpus) >"$work/log" 2>&1 || rc=$?
  stats=$(grep -E '^#[0-9]+.*DONE' "$work/log" | tail -1 || true)
  echo "fuzz.sh: fuzz_$t: ${stats:-no summary}"
  if [ "$rc" != 0 ]; then
    status=1
    grep -E 'ERROR|SUMMARY|^(refused|re-encoding|encode|decode|event|accepted)' \
      "$work/log" | head -5 || true
    for a in "$work"/crashes/*; do
      [ -e "$a" ] && echo "fuzz.sh: fuzz_$t FAILED (exit $rc); input: $a"
    done
    ls "$work"/crashes/* >/dev/null 2>&1 ||
      echo "fuzz.sh: fuzz_$t FAILED (exit $rc), no input saved: see $work/log"
  fi
done
exit $status
