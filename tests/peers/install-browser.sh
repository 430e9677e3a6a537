#!/usr/bin/env bash
# Installs the browser that the browser integration tests drive
# (tests/support/browser.rs): Debian's `chromium` and `chromium-driver`,
# which give /usr/bin/chromium and /usr/bin/chromedriver (WebDriver).
#
# Debian/Ubuntu only; run as root. Idempotent: when both binaries are
# already there it does nothing and exits at once. Neither package starts a
# daemon, so unlike install-proxies.sh there is no service to keep down.
set -euo pipefail

PACKAGES="chromium chromium-driver"

has_candidate() {
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

all_installed() {
    [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ]
}

if all_installed; then
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    echo "install-browser.sh: run as root (or: sudo apt-get install $PACKAGES)" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser.sh: apt-get not found; install Chromium and a matching chromedriver by hand" >&2
    exit 1
fi

# One install at a time: test binaries may run this concurrently.
exec 9>/var/lock/wsstream-install-browser.lock
if command -v flock >/dev/null 2>&1; then
    flock -w 900 9
fi
if all_installed; then
    exit 0
fi

export DEBIAN_FRONTEND=noninteractive

# Refresh the package lists only when they lack a package (fresh image with
# empty lists) or when installing from the current ones fails (stale lists).
if ! has_candidate chromium || ! has_candidate chromium-driver; then
    apt-get update -qq
fi
apt_install() {
    # shellcheck disable=SC2086 # word splitting of the package list is meant
    apt-get install -y -qq -o DPkg::Lock::Timeout=600 $PACKAGES
}
if ! apt_install; then
    apt-get update -qq
    apt_install
fi

if ! all_installed; then
    echo "install-browser.sh: $PACKAGES installed, but /usr/bin/chromium or /usr/bin/chromedriver is still missing" >&2
    exit 1
fi
