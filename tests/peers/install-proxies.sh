#!/usr/bin/env bash
# Installs the proxy servers that the proxy integration tests start
# (tests/support/proxies.rs): tinyproxy (HTTP CONNECT), microsocks (SOCKS5)
# and stunnel4 (TLS in front of tinyproxy, for https:// proxies).
#
# Debian/Ubuntu only; run as root. Idempotent: when the three binaries are
# already there it does nothing and exits at once. The tests start their own
# proxies on free ports, so this script makes sure the install does not leave
# a packaged tinyproxy daemon running on port 8888: it installs Debian's
# `tinyproxy-bin` (the executable alone, no service) when the distribution
# has it, and otherwise `tinyproxy`, with daemons kept from starting.
set -euo pipefail

has_candidate() {
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

have() {
    local name
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1 || [ -x "/usr/bin/$name" ] || [ -x "/usr/sbin/$name" ]; then
            return 0
        fi
    done
    return 1
}

all_installed() {
    have tinyproxy && have microsocks && have stunnel4 stunnel
}

if all_installed; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-proxies.sh: run as root (or: sudo apt-get install tinyproxy microsocks stunnel4)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-proxies.sh: apt-get not found; install tinyproxy, microsocks and stunnel4 by hand" >&2
    exit 1
fi

# One install at a time: test binaries may run this concurrently.
exec 9>/var/lock/wsstream-install-proxies.lock
if command -v flock >/dev/null 2>&1; then
    flock -w 600 9
fi
if all_installed; then
    exit 0
fi

tinyproxy_was_installed=no
if have tinyproxy; then
    tinyproxy_was_installed=yes
fi

# Keep the packages' postinst from starting daemons (sysvinit and systemd
# both consult policy-rc.d). An existing policy (as in Docker images) is kept.
policy=/usr/sbin/policy-rc.d
own_policy=no
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# Temporary, from wsstream tests/peers/install-proxies.sh\nexit 101\n' >"$policy"
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

# Refresh the package lists only when they lack a package (fresh image with
# empty lists) or when installing from the current ones fails (stale lists).
if ! { has_candidate tinyproxy-bin || has_candidate tinyproxy; } \
    || ! has_candidate microsocks || ! has_candidate stunnel4; then
    apt-get update -qq
fi
packages() {
    if has_candidate tinyproxy-bin; then
        echo tinyproxy-bin microsocks stunnel4
    else
        echo tinyproxy microsocks stunnel4
    fi
}
apt_install() {
    # shellcheck disable=SC2046 # word splitting of the package list is meant
    apt-get install -y -qq -o DPkg::Lock::Timeout=300 $(packages)
}
if ! apt_install; then
    apt-get update -qq
    apt_install
fi

# If the install started the packaged daemon anyway (no policy-rc.d honoured),
# stop it: it would hold 127.0.0.1:8888 for nothing.
if [ "$tinyproxy_was_installed" = no ]; then
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl stop tinyproxy.service >/dev/null 2>&1 || true
    fi
    for pidfile in /run/tinyproxy/tinyproxy.pid /var/run/tinyproxy/tinyproxy.pid; do
        if [ -s "$pidfile" ]; then
            pid=$(cat "$pidfile")
            if [ -n "$pid" ] && grep -qs tinyproxy "/proc/$pid/comm"; then
                kill "$pid" 2>/dev/null || true
            fi
            rm -f "$pidfile"
        fi
    done
fi

if ! all_installed; then
    echo "install-proxies.sh: $(packages) installed, but a binary is still missing" >&2
    exit 1
fi
