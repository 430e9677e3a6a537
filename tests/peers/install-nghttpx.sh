#!/usr/bin/env bash
# Installs nghttpx, the HTTP/2 reverse proxy of the nghttp2 project, that the
# HTTP/2 proxy tests start (tests/http2_nghttpx.rs): Debian's `nghttp2-proxy`.
#
# Debian/Ubuntu only; run as root. Idempotent: when nghttpx is already there
# it does nothing and exits at once. The tests start their own nghttpx on free
# ports, so this script keeps the package's service (nghttpx.service, port
# 3000) from starting during the install, and stops it if it started anyway.
set -euo pipefail

has_candidate() {
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

installed() {
    command -v nghttpx >/dev/null 2>&1 || [ -x /usr/sbin/nghttpx ] || [ -x /usr/bin/nghttpx ]
}

if installed; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-nghttpx.sh: run as root (or: sudo apt-get install nghttp2-proxy)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-nghttpx.sh: apt-get not found; install nghttpx (nghttp2) by hand" >&2
    exit 1
fi

# One install at a time: test binaries may run this concurrently.
exec 9>/var/lock/wsstream-install-nghttpx.lock
if command -v flock >/dev/null 2>&1; then
    flock -w 600 9
fi
if installed; then
    exit 0
fi

# Keep the package's postinst from starting the daemon (sysvinit and systemd
# both consult policy-rc.d). An existing policy (as in Docker images) is kept.
policy=/usr/sbin/policy-rc.d
own_policy=no
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# Temporary, from wsstream tests/peers/install-nghttpx.sh\nexit 101\n' >"$policy"
    chmod 755 "$policy"
    own_policy=yes
fi
cleanup() {
    if [ "$own_policy" = yes ]; then
        rm -f "$policy"
    fi
}
trap cleanup EXIT

export DEBIAN_FRONTEND=noninteractive

# Refresh the package lists only when they lack the package (fresh image with
# empty lists) or when installing from the current ones fails (stale lists).
if ! has_candidate nghttp2-proxy; then
    apt-get update -qq
fi
apt_install() {
    apt-get install -y -qq -o DPkg::Lock::Timeout=300 nghttp2-proxy
}
if ! apt_install; then
    apt-get update -qq
    apt_install
fi

# If the install started the packaged daemon anyway (no policy-rc.d honoured),
# stop it: it would hold port 3000 for nothing.
if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
    systemctl stop nghttpx.service >/dev/null 2>&1 || true
fi
for pidfile in /run/nghttpx.pid /var/run/nghttpx.pid; do
    if [ -s "$pidfile" ]; then
        pid=$(cat "$pidfile")
        if [ -n "$pid" ] && grep -qs nghttpx "/proc/$pid/comm"; then
            kill "$pid" 2>/dev/null || true
        fi
        rm -f "$pidfile"
    fi
done

if ! installed; then
    echo "install-nghttpx.sh: nghttp2-proxy installed, but nghttpx is still missing" >&2
    exit 1
fi
