#!/usr/bin/env bash
# Installs the Autobahn|Testsuite (`wstest`, PyPI autobahntestsuite 0.8.2) into
# autobahn/.venv27 (gitignored). Idempotent: when .venv27/bin/wstest already runs
# and the pins have not changed, it does nothing.
#
# The suite needs CPython 2.7 (Twisted 20.3). There is no Docker here, so:
#   1. a Python 3 venv (autobahn/.venv-bootstrap) gets `virtualenv<20.22`, the last
#      line that can still create 2.7 environments;
#   2. that virtualenv makes autobahn/.venv27 from a CPython 2.7 interpreter
#      (found through $AUTOBAHN_PYTHON27, `pyenv root`, ~/.pyenv or PATH);
#   3. pip installs requirements-py27.txt there (all pins, --no-deps not needed
#      because every dependency is pinned).
#
# Usage: bash autobahn/install.sh
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="$HERE/.venv27"
BOOT="$HERE/.venv-bootstrap"
REQ="$HERE/requirements-py27.txt"
STAMP="$VENV/.installed-requirements"

say() { printf '[autobahn/install] %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

# Already installed with the same pins?
if [[ -x "$VENV/bin/wstest" && -f "$STAMP" ]] && cmp -s "$REQ" "$STAMP"; then
    if "$VENV/bin/python" -c 'import autobahntestsuite, twisted' >/dev/null 2>&1; then
        say "wstest already installed in $VENV (pins unchanged); nothing to do"
        exit 0
    fi
    say "existing $VENV is broken; reinstalling"
fi

# --- find CPython 2.7 -------------------------------------------------------
find_py27() {
    local c
    if [[ -n "${AUTOBAHN_PYTHON27:-}" ]]; then
        [[ -x "$AUTOBAHN_PYTHON27" ]] || die "AUTOBAHN_PYTHON27=$AUTOBAHN_PYTHON27 is not executable"
        echo "$AUTOBAHN_PYTHON27"; return 0
    fi
    local roots=()
    if command -v pyenv >/dev/null 2>&1; then roots+=("$(pyenv root 2>/dev/null || true)"); fi
    [[ -n "${PYENV_ROOT:-}" ]] && roots+=("$PYENV_ROOT")
    roots+=("$HOME/.pyenv" "/root/.pyenv" "/opt/pyenv" "/usr/local/pyenv")
    local r
    for r in "${roots[@]}"; do
        [[ -n "$r" && -d "$r/versions" ]] || continue
        # Newest 2.7.x first.
        for c in $(ls -d "$r"/versions/2.7* 2>/dev/null | sort -rV); do
            if [[ -x "$c/bin/python2.7" ]]; then echo "$c/bin/python2.7"; return 0; fi
        done
    done
    for c in python2.7 python2; do
        if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
            command -v "$c"; return 0
        fi
    done
    return 1
}
PY27="$(find_py27)" || die "no CPython 2.7 found (looked in \$AUTOBAHN_PYTHON27, \$(pyenv root)/versions/2.7*, ~/.pyenv/versions/2.7*, PATH). Install one, e.g. 'pyenv install 2.7.18', or set AUTOBAHN_PYTHON27=/path/to/python2.7"
say "CPython 2.7: $PY27 ($("$PY27" -c 'import sys; print(sys.version.split()[0])' 2>&1))"

# --- find Python 3 ----------------------------------------------------------
PY3=""
for c in python3 python; do
    if command -v "$c" >/dev/null 2>&1 && "$c" -c 'import sys, venv; sys.exit(sys.version_info[0] != 3)' 2>/dev/null; then
        PY3="$(command -v "$c")"; break
    fi
done
[[ -n "$PY3" ]] || die "no Python 3 with the venv module found on PATH"
say "Python 3: $PY3 ($("$PY3" -c 'import sys; print(sys.version.split()[0])'))"

# --- bootstrap venv with virtualenv<20.22 -----------------------------------
if [[ ! -x "$BOOT/bin/virtualenv" ]]; then
    say "creating bootstrap venv $BOOT with virtualenv<20.22"
    rm -rf "$BOOT"
    "$PY3" -m venv "$BOOT"
    "$BOOT/bin/python" -m pip install --quiet --disable-pip-version-check 'virtualenv<20.22'
else
    say "bootstrap venv $BOOT already has virtualenv"
fi

# --- the 2.7 virtualenv ------------------------------------------------------
if [[ ! -x "$VENV/bin/python" ]] || ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (2, 7))' 2>/dev/null; then
    say "creating 2.7 virtualenv $VENV"
    rm -rf "$VENV"
    "$BOOT/bin/virtualenv" --quiet --python "$PY27" "$VENV"
fi

# cryptography 3.3.2 has no Rust yet (that came in 3.4), but keep the switch in
# case a resolver ever picks a newer one; it builds against the system OpenSSL
# (libssl-dev) or uses a manylinux wheel when pip finds one.
export CRYPTOGRAPHY_DONT_BUILD_RUST=1
say "pip install -r $(basename "$REQ") into $VENV (first time: about a minute; gcc builds a few)"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-python-version-warning -r "$REQ" \
    || die "pip install failed (needs gcc, python 2.7 headers, libssl-dev and libffi-dev when no wheel fits)"

"$VENV/bin/python" -c 'import autobahntestsuite, twisted' || die "installed, but autobahntestsuite does not import"
[[ -x "$VENV/bin/wstest" ]] || die "installed, but $VENV/bin/wstest is missing"
cp "$REQ" "$STAMP"
say "done: $VENV/bin/wstest"
