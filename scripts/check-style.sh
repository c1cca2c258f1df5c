#!/usr/bin/env bash
# The style a machine can check (docs/CODE_STYLE.md): every tracked C file
# as clang-format formats it, no line of C over 80 columns, and, given a
# build directory, the layering of host/ (scripts/check-layers.py: no
# circles between the files of a folder, every extern prefixed; the
# findings still left are in scripts/layers-known.txt).
#   scripts/check-style.sh [BUILD_DIR]
set -euo pipefail
cd "$(dirname "$0")/.."
mapfile -t files < <(git ls-files '*.c' '*.h')
bad=0
if ! clang-format --dry-run -Werror "${files[@]}" 2>/tmp/stele-format.$$; then
  head -40 /tmp/stele-format.$$
  echo "check-style: $(grep -c 'clang-format-violations' /tmp/stele-format.$$) places" \
       "clang-format would change (clang-format -i FILE)"
  bad=1
fi
rm -f /tmp/stele-format.$$
long=$(awk 'length > 80 { print FILENAME ":" FNR ": " length " columns" }' \
       "${files[@]}")
if [ -n "$long" ]; then
  echo "$long" | head -40
  echo "check-style: $(echo "$long" | wc -l) lines over 80 columns"
  bad=1
fi
if [ -n "${1:-}" ]; then
  python3 scripts/check-layers.py --known scripts/layers-known.txt "$1" ||
    bad=1
fi
if [ "$bad" = 0 ]; then
  echo "check-style: ${#files[@]} files formatted, within 80 columns"
fi
exit "$bad"
