#!/usr/bin/env bash
# Checks that every tracked C/C++/CUDA source matches .clang-format (clang-format 14, Debian 12's).
# Usage: scripts/check-format.sh [--fix]   (--fix rewrites the files in place)
# Exit 0 when all files are formatted, 1 naming the files that are not, 2 when clang-format is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
fix=0
for a in "$@"; do
  case "$a" in
    --fix) fix=1 ;;
    -h|--help) sed -n '2,4p' "$0"; exit 0 ;;
    *) echo "check-format.sh: unknown option '$a'" >&2; exit 2 ;;
  esac
done
cf=${CLANG_FORMAT:-clang-format}
if ! command -v "$cf" >/dev/null; then
  echo "check-format.sh: $cf not found (scripts/setup.sh installs clang-format)" >&2
  exit 2
fi
mapfile -t files < <(git ls-files '*.cpp' '*.hpp' '*.h' '*.cc' '*.cu' '*.cuh')
if [ "$fix" = 1 ]; then
  "$cf" -i "${files[@]}"
  exit 0
fi
bad=()
for f in "${files[@]}"; do
  "$cf" --dry-run --Werror "$f" >/dev/null 2>&1 || bad+=("$f")
done
if [ ${#bad[@]} -ne 0 ]; then
  echo "check-format.sh: ${#bad[@]} of ${#files[@]} sources differ from .clang-format (fix: scripts/check-format.sh --fix):" >&2
  printf '  %s\n' "${bad[@]}" >&2
  exit 1
fi
echo "check-format.sh: ${#files[@]} sources match .clang-format"
