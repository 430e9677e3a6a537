#!/usr/bin/env bash
# Installs nghttpx, the HTTP/2 reverse proxy of the nghttp2 project, that the
# HTTP/2 proxy tests start (tests/http2_nghttpx.rs): Debian's `nghttp2-proxy`.
#
# Debian/Ubuntu only; run as root. Idempotent: when nghttpx is already there
# it does nothing and exits at once. The tests start their own nghttpx on free
# ports, so this script keeps the package's service (nghttpx.service, port
# 3000) from starting during the install, and stops it if it started anyway.
set -euo pipefail

# shellcheck source=tests/peers/install-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-common.sh"

if have nghttpx; then
    exit 0
fi

require_root_and_apt install-nghttpx.sh nghttp2-proxy "nghttpx (nghttp2)"
take_install_lock nghttpx 600
if have nghttpx; then
    exit 0
fi

keep_daemons_down tests/peers/install-nghttpx.sh

export DEBIAN_FRONTEND=noninteractive

# Refresh the package lists only when they lack the package (fresh image with
# empty lists) or when installing from the current ones fails (stale lists).
if ! has_candidate nghttp2-proxy; then
    apt-get update -qq
fi
packages() {
    echo nghttp2-proxy
}
apt_install_retrying packages 300

# If the install started the packaged daemon anyway, stop it: it would hold
# port 3000 for nothing.
stop_packaged_daemon nghttpx /run/nghttpx.pid /var/run/nghttpx.pid

if ! have nghttpx; then
    echo "install-nghttpx.sh: nghttp2-proxy installed, but nghttpx is still missing" >&2
    exit 1
fi
