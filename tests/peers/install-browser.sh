#!/usr/bin/env bash
# Installs the browser that the browser integration tests drive
# (tests/support/browser.rs): Debian's `chromium` and `chromium-driver`,
# which give /usr/bin/chromium and /usr/bin/chromedriver (WebDriver).
#
# Debian/Ubuntu only; run as root. Idempotent: when both binaries are
# already there it does nothing and exits at once. Neither package starts a
# daemon, so unlike install-proxies.sh there is no service to keep down.
set -euo pipefail

# shellcheck source=tests/peers/install-common.sh
source "$(dirname "${BASH_SOURCE[0]}")/install-common.sh"

PACKAGES="chromium chromium-driver"

all_installed() {
    [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]
}

if all_installed; then
    exit 0
fi

require_root_and_apt install-browser.sh "$PACKAGES" "Chromium and a matching chromedriver"
take_install_lock browser 900
if all_installed; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive

# Refresh the package lists only when they lack a package (fresh image with
# empty lists) or when installing from the current ones fails (stale lists).
if ! has_candidate chromium || ! has_candidate chromium-driver; then
    apt-get update -qq
fi
packages() {
    echo "$PACKAGES"
}
apt_install_retrying packages 600

if ! all_installed; then
    echo "install-browser.sh: $PACKAGES installed, but /usr/bin/chromium or /usr/bin/chromedriver is still missing" >&2
    exit 1
fi
