#!/usr/bin/env bash
# Installs what stele builds with, from Debian's packages; with --test also
# what its integration tests run against: PostgreSQL, and Java with Maven
# (which fetch the Kafka broker from Maven Central), and clang, whose
# libFuzzer runtime (libclang-rt-14-dev) the fuzz targets link (scripts/fuzz.sh).
set -euo pipefail
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
PKGS=(build-essential cmake ninja-build pkg-config
      libavro-dev libjansson-dev libsqlite3-dev sqlite3 libyaml-dev
      libcmocka-dev librdkafka-dev libpq-dev libcurl4-openssl-dev
      libmicrohttpd-dev)
if [ "${1:-}" = "--test" ]; then
  PKGS+=(postgresql                    # scripts/pg-start.sh
         openjdk-17-jre-headless maven # scripts/kafka-start.sh
         clang libclang-rt-14-dev)     # scripts/fuzz.sh
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
