#!/usr/bin/env bash
# The whole test suite: installs the build and test dependencies, builds
# stele (Release), checks its style (scripts/check-style.sh), and runs
# every test with ctest, then again in an ASan+UBSan build, then the tests
# of a build with neither Kafka nor PostgreSQL: unit, end-to-end, and integration tests against a real Kafka
# broker, a real PostgreSQL server and a real schema registry (Apicurio),
# which the tests start themselves (scripts/kafka-start.sh, pg-start.sh,
# registry-start.sh) when they are not running; the interop tests run
# Confluent's Python client from the venv scripts/deps.sh --test makes;
# then a short run of every libFuzzer target (scripts/fuzz.sh, 15 s each,
# docs/fuzzing.md). STELE_FUZZ_SECONDS changes that time; 0 skips it.
#
# Servers the tests start are stopped at the end, and the script says so;
# a Kafka broker (127.0.0.1:9092), PostgreSQL server (STELE_PG_PORT, 5433)
# or schema registry (127.0.0.1:8081) that was already running before is
# left running.
set -euo pipefail
cd "$(dirname "$0")/.."

port_open() { timeout 2 bash -c "exec 3<>/dev/tcp/127.0.0.1/$1" 2>/dev/null; }
kafka_was_up=0; pg_was_up=0; registry_was_up=0
port_open 9092 && kafka_was_up=1
port_open 8081 && registry_was_up=1
port_open "${STELE_PG_PORT:-5433}" && pg_was_up=1
stop_started() {
  if [ "$kafka_was_up" = 0 ] && port_open 9092; then
    echo "test.sh: stopping the Kafka broker the tests started"
    STELE_KAFKA_DIR="${STELE_TEST_KAFKA_DIR:-/tmp/stele-kafka-test}" \
      scripts/kafka-stop.sh || true
  fi
  if [ "$pg_was_up" = 0 ] && port_open "${STELE_PG_PORT:-5433}"; then
    echo "test.sh: stopping the PostgreSQL server the tests started"
    scripts/pg-stop.sh || true
  fi
  if [ "$registry_was_up" = 0 ] && port_open 8081; then
    echo "test.sh: stopping the schema registry the tests started"
    STELE_REGISTRY_DIR="${STELE_TEST_REGISTRY_DIR:-/tmp/stele-registry-test}" \
      scripts/registry-stop.sh || true
  fi
}
trap stop_started EXIT

scripts/deps.sh --test
scripts/build.sh build Release
# The style a machine checks (docs/CODE_STYLE.md): clang-format, 80
# columns, no circles between files, every extern prefixed.
scripts/check-style.sh build
(cd build && ctest --output-on-failure)
scripts/build.sh build-asan Asan
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure)
# A build with neither optional backend builds and passes what it has.
scripts/build.sh build-minimal Debug -DSTELE_KAFKA=OFF -DSTELE_POSTGRES=OFF
(cd build-minimal && ctest --output-on-failure)
fuzz_seconds=${STELE_FUZZ_SECONDS:-15}
if [ "$fuzz_seconds" != 0 ]; then
  scripts/fuzz.sh all "$fuzz_seconds"
fi
