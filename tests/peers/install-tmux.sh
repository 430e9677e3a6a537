#!/usr/bin/env bash
# Installs the terminal multiplexer that the CLI's terminal tests drive
# (cli/tests/terminal.rs): Debian's `tmux`, which gives /usr/bin/tmux, to
# run `wsstream connect` in a pseudo-terminal, type into it and read the
# screen.
#
# Debian/Ubuntu only; run as root. Idempotent: when tmux is already there
# it does nothing and exits at once. The package starts no daemon (a tmux
# server runs only when a client starts one), so there is no service to
# keep down.
set -euo pipefail

# shellcheck source=tests/peers/install-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-common.sh"

PACKAGES="tmux"

all_installed() {
    [ -x /usr/bin/tmux ]
}

if all_installed; then
    exit 0
fi

require_root_and_apt install-tmux.sh "$PACKAGES" "tmux"
take_install_lock tmux 300
if all_installed; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive

# Refresh the package lists only when they lack the package (fresh image
# with empty lists) or when installing from the current ones fails (stale
# lists).
if ! has_candidate tmux; then
    apt-get update -qq
fi
packages() {
    echo "$PACKAGES"
}
apt_install_retrying packages 300

if ! all_installed; then
    echo "install-tmux.sh: $PACKAGES installed, but /usr/bin/tmux is still missing" >&2
    exit 1
fi
