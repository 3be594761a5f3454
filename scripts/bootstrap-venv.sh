#!/usr/bin/env bash
# Create the project virtual environment (if absent) and install the project with its dev extras.
# Usage: PYTHON=python3.11 scripts/bootstrap-venv.sh .venv
set -euo pipefail
VENV="${1:-.venv}"
PYTHON="${PYTHON:-python3.11}"
command -v "$PYTHON" >/dev/null || PYTHON=python3

version=$("$PYTHON" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)
[ "$version" = "3.11" ] || { echo "bootstrap-venv: need Python 3.11 (found '${version:-none}' at $PYTHON); apt-get install python3.11" >&2; exit 1; }

if [ ! -x "$VENV/bin/python" ]; then
  echo "bootstrap-venv: creating $VENV with $PYTHON"
  if ! "$PYTHON" -m venv "$VENV" 2>/dev/null; then
    # Debian/Ubuntu ship venv's pip bootstrap separately.
    rm -rf "$VENV"
    pkg="python3.11-venv"
    apt-cache show "$pkg" >/dev/null 2>&1 || pkg="python3-venv"
    echo "bootstrap-venv: installing $pkg (apt)"
    if [ "$(id -u)" -eq 0 ]; then SUDO=(); else SUDO=(sudo -n); fi
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get update -qq >/dev/null
    DEBIAN_FRONTEND=noninteractive "${SUDO[@]}" apt-get install -y -qq "$pkg" >/dev/null
    "$PYTHON" -m venv "$VENV"
  fi
fi
echo "bootstrap-venv: installing sonoreview and its dependencies into $VENV"
# --no-compile: byte-compiling all of torch up front costs CI time; modules compile on import.
# (this machine's pip configuration names extra local indexes; drop its noise about them)
"$VENV/bin/python" -m pip install -q --no-compile -e '.[dev]' 2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
