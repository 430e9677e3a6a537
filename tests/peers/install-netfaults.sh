#!/usr/bin/env bash
# Installs what the network-fault tests (tests/faults/, with
# tests/support/netns.rs) use to build their network namespaces and to cut
# the link between them: Debian's `nftables` (/usr/sbin/nft, the blackhole)
# and, where `ip` is missing, `iproute2` (/usr/sbin/ip for `ip netns`, veth
# pairs and addresses; it brings `tc` too).
#
# Debian/Ubuntu only; run as root. Idempotent: when both programs are
# already there it does nothing and exits at once. The nftables package
# ships a service that loads /etc/nftables.conf, which starts with `flush
# ruleset`: the install keeps daemons from starting (policy-rc.d), so the
# host's own rules are never touched; the tests only ever load rules inside
# the namespaces they create.
set -euo pipefail

# shellcheck source=tests/peers/install-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-common.sh"

all_installed() {
    have nft && have ip
}

if all_installed; then
    exit 0
fi

require_root_and_apt install-netfaults.sh "nftables iproute2" "nftables (nft) and iproute2 (ip)"
take_install_lock netfaults 300
if all_installed; then
    exit 0
fi

keep_daemons_down tests/peers/install-netfaults.sh

export DEBIAN_FRONTEND=noninteractive

# Refresh the package lists only when they lack a package (fresh image with
# empty lists) or when installing from the current ones fails (stale lists).
if ! has_candidate nftables || ! { have ip || has_candidate iproute2; }; then
    apt-get update -qq
fi
packages() {
    local list=""
    have nft || list="nftables"
    have ip || list="$list iproute2"
    echo "$list"
}
apt_install_retrying packages 300

if ! all_installed; then
    echo "install-netfaults.sh: $(packages) installed, but nft or ip is still missing" >&2
    exit 1
fi
