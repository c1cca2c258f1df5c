#!/usr/bin/env bash
# Builds stele into build/ (or $1) with build type $2 (default Release);
# further arguments go to cmake (-DSTELE_KAFKA=OFF, -DSTELE_POSTGRES=OFF).
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-build}
type=${2:-Release}
shift $(($# < 2 ? $# : 2))
cmake -S . -B "$dir" -G Ninja -DCMAKE_BUILD_TYPE="$type" -DSTELE_WERROR=ON \
  "$@" >/dev/null
ninja -C "$dir"
