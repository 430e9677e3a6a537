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

# shellcheck source=tests/peers/install-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-common.sh"

all_installed() {
    have tinyproxy && have microsocks && have stunnel4 stunnel
}

if all_installed; then
    exit 0
fi

require_root_and_apt install-proxies.sh "tinyproxy microsocks stunnel4" \
    "tinyproxy, microsocks and stunnel4"
take_install_lock proxies 600
if all_installed; then
    exit 0
fi

tinyproxy_was_installed=no
if have tinyproxy; then
    tinyproxy_was_installed=yes
fi

keep_daemons_down tests/peers/install-proxies.sh

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
apt_install_retrying packages 300

# If the install started the packaged daemon anyway, stop it: it would hold
# 127.0.0.1:8888 for nothing.
if [ "$tinyproxy_was_installed" = no ]; then
    stop_packaged_daemon tinyproxy /run/tinyproxy/tinyproxy.pid /var/run/tinyproxy/tinyproxy.pid
fi

if ! all_installed; then
    echo "install-proxies.sh: $(packages) installed, but a binary is still missing" >&2
    exit 1
fi
