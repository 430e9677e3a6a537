# shellcheck shell=bash
# Functions the install-*.sh scripts share, for installing Debian packages
# that tests need. Sourced, not run:
#
#   source "$(dirname "${BASH_SOURCE[0]}")/install-common.sh"

# Whether apt knows a version of package $1 to install.
has_candidate() {
    local candidate
    candidate=$(apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { print $2 }')
    [ -n "$candidate" ] && [ "$candidate" != "(none)" ]
}

# Whether one of the programs named is on PATH, in /usr/bin or in /usr/sbin.
have() {
    local name
    for name in "$@"; do
        if command -v "$name" >/dev/null 2>&1 || [ -x "/usr/bin/$name" ] || [ -x "/usr/sbin/$name" ]; then
            return 0
        fi
    done
    return 1
}

# Exits with 1 and a message unless we are root with apt-get.
# $1: the script's name; $2: the packages to name in `sudo apt-get install`;
# $3: what to install by hand without apt-get.
require_root_and_apt() {
    if [ "$(id -u)" -ne 0 ]; then
        echo "$1: run as root (or: sudo apt-get install $2)" >&2
        exit 1
    fi
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "$1: apt-get not found; install $3 by hand" >&2
        exit 1
    fi
}

# Waits (up to $2 seconds) for the lock named $1, held on descriptor 9 until
# the script exits: test binaries may run a script concurrently. The lock is
# the file target/peers/wsstream-install-$1.lock of this repository (found
# from this file's place, whatever the working directory), beside what the
# tests install there; nothing is written outside target/. When that
# directory cannot be made, the script goes on without the lock (apt-get
# waits for dpkg's own lock anyway).
take_install_lock() {
    local repo peers
    repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
    peers=$repo/target/peers
    if ! make_dir_owned_like "$repo" "$repo/target" || ! make_dir_owned_like "$repo" "$peers"; then
        echo "warning: cannot create $peers; installing without the lock" >&2
        return 0
    fi
    exec 9>"$peers/wsstream-install-$1.lock"
    chown --reference="$repo" "$peers/wsstream-install-$1.lock" 2>/dev/null || true
    if command -v flock >/dev/null 2>&1; then
        flock -w "$2" 9
    fi
}

# Makes directory $2 if it is missing, owned like directory $1: made as root
# (`sudo bash tests/peers/install-all.sh`) in a user's checkout, target/ and
# target/peers/ stay the user's, so a later `cargo test` without root can
# still build and install there.
make_dir_owned_like() {
    if [ -d "$2" ]; then
        [ -w "$2" ]
        return
    fi
    mkdir -p "$2" || return 1
    chown --reference="$1" "$2" 2>/dev/null || true
}

# Keeps the postinst of the packages about to be installed from starting
# daemons (sysvinit and systemd both consult policy-rc.d), until the script
# exits. An existing policy (as in Docker images) is kept. $1: the script,
# named in the temporary policy.
keep_daemons_down() {
    policy=/usr/sbin/policy-rc.d
    own_policy=no
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# Temporary, from wsstream %s\nexit 101\n' "$1" >"$policy"
        chmod 755 "$policy"
        own_policy=yes
    fi
    trap remove_own_policy EXIT
}

remove_own_policy() {
    if [ "$own_policy" = yes ]; then
        rm -f "$policy"
    fi
}

# Installs the packages that the function named $1 prints; when installing
# from the current package lists fails (stale lists), refreshes them and
# tries once more, asking $1 again. $2: how long to wait for dpkg's lock.
apt_install_retrying() {
    local list
    list=$("$1")
    # shellcheck disable=SC2086 # word splitting of the package list is meant
    if ! apt-get install -y -qq -o DPkg::Lock::Timeout="$2" $list; then
        apt-get update -qq
        list=$("$1")
        # shellcheck disable=SC2086
        apt-get install -y -qq -o DPkg::Lock::Timeout="$2" $list
    fi
}

# Stops the daemon $1 if the install started it anyway (no policy-rc.d
# honoured): its service `$1.service`, and the process of each pid file
# named after it whose command is $1.
stop_packaged_daemon() {
    local name=$1 pidfile pid
    shift
    if [ -d /run/systemd/system ] && command -v systemctl >/dev/null 2>&1; then
        systemctl stop "$name.service" >/dev/null 2>&1 || true
    fi
    for pidfile in "$@"; do
        if [ -s "$pidfile" ]; then
            pid=$(cat "$pidfile")
            if [ -n "$pid" ] && grep -qs "$name" "/proc/$pid/comm"; then
                kill "$pid" 2>/dev/null || true
            fi
            rm -f "$pidfile"
        fi
    done
}
