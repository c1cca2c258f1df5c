#!/usr/bin/env bash
# The whole test suite: installs the build and test dependencies, builds
# stele twice (Release, and ASan+UBSan), and runs every test in both builds
# with ctest: unit, end-to-end, and integration tests against a real Kafka
# broker and a real PostgreSQL server, which the tests start themselves
# (scripts/kafka-start.sh, scripts/pg-start.sh) when they are not running.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
scripts/build.sh build Release
(cd build && ctest --output-on-failure)
scripts/build.sh build-asan Asan
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure)
