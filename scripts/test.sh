#!/usr/bin/env bash
# The whole test suite: installs the build dependencies, builds stele twice
# (Release, and ASan+UBSan), and runs every test in both builds with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh
scripts/build.sh build Release
(cd build && ctest --output-on-failure)
scripts/build.sh build-asan Asan
(cd build-asan && ASAN_OPTIONS=detect_leaks=1 ctest --output-on-failure)
