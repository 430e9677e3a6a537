#!/usr/bin/env bash
# Installs every system peer the integration tests use, once, as root, so
# that the tests can then run without root:
#
#   sudo bash tests/peers/install-all.sh
#   cargo test --workspace --all-features
#
# It runs each install-*.sh beside it (install-browser.sh, install-nghttpx.sh,
# install-proxies.sh, and any other, such as install-tmux.sh), which install
# Debian packages with apt-get and do nothing where they are installed
# already; then it checks what the tests install by themselves, without
# root, under target/peers on first use: python3 (3.11 or later, with venv,
# for target/peers/python-venv with `websockets` from PyPI) and node (18 or
# later) with npm (for target/peers/node with `ws` from npm). It installs
# neither: it says what to install when they are missing or too old.
#
# Without root it installs nothing, and so checks that all is there. Exits
# non-zero, after trying every script, when anything is missing.
set -uo pipefail

here=$(dirname "${BASH_SOURCE[0]}")
failed=()

if [ "$(id -u)" -ne 0 ]; then
    echo "install-all.sh: not root, so nothing is installed, only checked (run: sudo bash $0)" >&2
fi

for script in "$here"/install-*.sh; do
    name=$(basename "$script")
    case "$name" in
        install-all.sh | install-common.sh) continue ;;
    esac
    echo "install-all.sh: bash $name"
    if ! bash "$script" </dev/null; then
        failed+=("$name")
    fi
done

# The interpreters the tests run as the user: WSSTREAM_PYTHON, WSSTREAM_NODE
# and WSSTREAM_NPM when set (sudo drops them unless kept), as the tests do.
python=${WSSTREAM_PYTHON:-python3}
node=${WSSTREAM_NODE:-node}
npm=${WSSTREAM_NPM:-npm}

if ! "$python" -c 'import sys, venv, ensurepip; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
    echo "install-all.sh: $python (3.11 or later, with the venv module and ensurepip) is missing or too old;" \
        "install it, e.g. \`sudo apt-get install python3 python3-venv\`, or set WSSTREAM_PYTHON for the tests" >&2
    failed+=("python3")
fi

node_major=$("$node" --version 2>/dev/null | sed -n 's/^v\([0-9][0-9]*\)\..*/\1/p')
if [ -z "$node_major" ] || [ "$node_major" -lt 18 ]; then
    echo "install-all.sh: $node (Node.js 18 or later) is missing or too old;" \
        "install it, e.g. \`sudo apt-get install nodejs npm\`, or set WSSTREAM_NODE for the tests" >&2
    failed+=("node")
fi
if ! "$npm" --version >/dev/null 2>&1; then
    echo "install-all.sh: $npm is missing; install it, e.g. \`sudo apt-get install npm\`," \
        "or set WSSTREAM_NPM for the tests" >&2
    failed+=("npm")
fi

if [ "${#failed[@]}" -gt 0 ]; then
    echo "install-all.sh: not ready: ${failed[*]} (see above)" >&2
    exit 1
fi
echo "install-all.sh: every peer is there; run \`cargo test --workspace --all-features\` (no root needed)"
