#!/bin/sh
# Find uv, or install it from PyPI; print the path of the uv to use on stdout (messages go to
# stderr). The Makefile's `uv` and `sync` targets run it; idempotent, quick once uv is there.
#
#   1. uv on PATH, ~/.local/bin/uv (pip --user) or var/bootstrap/bin/uv: use it;
#   2. else `$PYTHON -m pip install --user uv`;
#   3. where pip refuses that (PEP 668: stock Debian 12 and Ubuntu 23.04+ mark their Python
#      "externally managed"), or has no pip at all: a private venv, var/bootstrap, with uv in
#      it (as root on Debian without the venv module: apt-get install python3-venv first).
# infra/tests/test_bootstrap.py runs it through `make uv` with a Python whose pip refuses.
set -eu
PYTHON="${PYTHON:-python3}"
BOOTSTRAP="${UV_BOOTSTRAP_DIR:-var/bootstrap}"
case "$BOOTSTRAP" in /*) ;; *) BOOTSTRAP="$(pwd)/$BOOTSTRAP" ;; esac

found() { printf '%s\n' "$1"; exit 0; }

if command -v uv >/dev/null 2>&1; then found "$(command -v uv)"; fi
if [ -x "$BOOTSTRAP/bin/uv" ]; then found "$BOOTSTRAP/bin/uv"; fi
user_bin="$("$PYTHON" -m site --user-base 2>/dev/null || echo "$HOME/.local")/bin"
for candidate in "$HOME/.local/bin/uv" "$user_bin/uv"; do
  if [ -x "$candidate" ]; then found "$candidate"; fi
done

if ! command -v "$PYTHON" >/dev/null 2>&1; then
  echo "[setup] no $PYTHON: install Python 3.11+ (or uv: https://docs.astral.sh/uv/)" >&2
  exit 1
fi

echo "[setup] uv not found: installing it from PyPI ($PYTHON -m pip install --user uv)" >&2
log="$(mktemp)"
if "$PYTHON" -m pip install --quiet --user uv >"$log" 2>&1 && [ -x "$user_bin/uv" ]; then
  rm -f "$log"
  echo "[setup] uv installed: $user_bin/uv" >&2
  found "$user_bin/uv"
fi
if grep -q "externally-managed-environment" "$log"; then
  echo "[setup] pip refused a --user install (PEP 668: this Python is externally managed)" >&2
else
  echo "[setup] pip could not install uv: $(tail -n 1 "$log")" >&2
fi
rm -f "$log"

echo "[setup] installing uv into a private venv instead: $BOOTSTRAP" >&2
if ! "$PYTHON" -m venv "$BOOTSTRAP" >/dev/null 2>&1; then
  rm -rf "$BOOTSTRAP"
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "[setup] $PYTHON has no venv module: apt-get install -y python3-venv" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >&2
    "$PYTHON" -m venv "$BOOTSTRAP"
  else
    echo "[setup] $PYTHON has no venv module: install python3-venv (or uv)" >&2
    exit 1
  fi
fi
echo "[setup] downloading uv from PyPI into $BOOTSTRAP (about 20 MB)…" >&2
"$BOOTSTRAP/bin/python" -m pip install --quiet --disable-pip-version-check uv >&2
echo "[setup] uv installed: $BOOTSTRAP/bin/uv ($("$BOOTSTRAP/bin/uv" --version))" >&2
found "$BOOTSTRAP/bin/uv"
