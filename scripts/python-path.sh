#!/usr/bin/env bash
# Makes `import cdma` work for Debian's /usr/bin/python3 after a build: writes a cdma.pth file
# (one line: the build's python/ folder) into that interpreter's site-packages for local installs
# (/usr/local/lib/python3.X/dist-packages), as `pip install -e` would. Run by scripts/demo.sh and
# scripts/test.sh after the build; needs write access there (root), else prints the PYTHONPATH line
# to use instead. Usage: scripts/python-path.sh [BUILD_DIR]   (default: build)
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
pkg="$(cd "$build" && pwd)/python"
if [ ! -f "$pkg/cdma/__init__.py" ]; then
  echo "python-path.sh: no built package in $pkg (is CDMA_WITH_PYTHON on?)" >&2
  exit 1
fi
site=$(/usr/bin/python3 -c 'import site, sys; print(next(p for p in site.getsitepackages() if p.startswith("/usr/local")))')
if mkdir -p "$site" 2>/dev/null && echo "$pkg" > "$site/cdma.pth" 2>/dev/null; then
  echo "python-path.sh: $site/cdma.pth -> $pkg (import cdma works for /usr/bin/python3)"
else
  echo "python-path.sh: cannot write $site; use: export PYTHONPATH=$pkg" >&2
fi
