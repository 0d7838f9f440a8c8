#!/usr/bin/env bash
# Private network namespaces for the local test environment. Pods in the kwok cluster get IPs
# from POD_CIDR (10.244.0.0/16), and the fleet simulator serves HTTP on them while Traefik proxies
# to them. Those addresses must be local, but only inside a network namespace of our own that has
# nothing but loopback: never on the machine's own network. So every component of an environment
# runs in such a namespace, where POD_CIDR is routed to `lo`.
#
#   scripts/netns.sh run CMD [ARG...]   runs CMD in a new private network namespace (the exit
#                                       status is CMD's); the namespace ends with its last process
#   scripts/netns.sh check              exits 0 if this shell is in a private network namespace
#                                       (its only interface is lo), else says why and exits 1
#   scripts/netns.sh hold READY_FILE    (used by scripts/env.sh) in a new private namespace: sets
#                                       it up, writes its pid to READY_FILE and sleeps until killed
#
# A new namespace is made with `unshare --net` as root, else with `unshare --user --map-root-user
# --net` (an unprivileged user namespace that owns the network namespace). Inside it, before
# anything else runs: `lo` is brought up, POD_CIDR is routed to it as local addresses, and the
# namespace is checked to hold no interface but `lo` (refused otherwise). Nothing here ever
# changes the machine's own network.
#
# Other scripts source this file for netns_is_private and netns_require_private.
set -euo pipefail

POD_CIDR=10.244.0.0/16
# An address inside POD_CIDR, to ask the kernel how it would route there.
POD_CIDR_PROBE=10.244.0.1

netns_log() { printf '[netns] %s\n' "$*" >&2; }
netns_die() { printf '[netns] error: %s\n' "$*" >&2; exit 1; }

# ensure_iproute2: installs Debian's iproute2 (the `ip` command) if it is missing and we are root.
ensure_iproute2() {
    command -v ip >/dev/null 2>&1 && return 0
    [[ $(id -u) -eq 0 ]] ||
        netns_die "the 'ip' command is missing. Install Debian's package: sudo apt-get install --no-install-recommends iproute2"
    netns_log "installing Debian package 'iproute2'"
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null ||
        netns_die "apt-get update failed; check that Debian's package mirror is reachable"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends iproute2 >/dev/null ||
        netns_die "apt-get install iproute2 failed; run it by hand to see why"
    command -v ip >/dev/null 2>&1 || netns_die "'ip' still not on PATH after installing iproute2"
}

# netns_interfaces: the names of this namespace's network interfaces, one a line.
netns_interfaces() {
    ip -o link show | awk -F': ' '{ sub(/@.*/, "", $2); print $2 }'
}

# netns_is_private: true if this process's network namespace has no interface but `lo`.
netns_is_private() {
    command -v ip >/dev/null 2>&1 || return 1
    local ifaces
    ifaces="$(netns_interfaces)" || return 1
    [[ "$ifaces" == lo ]]
}

# netns_require_private WHAT: exits unless this is a private namespace in which POD_CIDR is local.
# Call it before sending anything to a pod IP.
netns_require_private() {
    local what="$1" ifaces
    command -v ip >/dev/null 2>&1 || netns_die "refusing to $what: cannot list interfaces ('ip' is missing)"
    ifaces="$(netns_interfaces | paste -sd, -)"
    [[ "$ifaces" == lo ]] ||
        netns_die "refusing to $what: this network namespace has interfaces other than lo ($ifaces). Run it in a private one: scripts/netns.sh run CMD, or scripts/env.sh exec NAME CMD"
    ip route get "$POD_CIDR_PROBE" 2>/dev/null | grep -q "^local $POD_CIDR_PROBE dev lo" ||
        netns_die "refusing to $what: $POD_CIDR is not routed to lo in this namespace (ip route get $POD_CIDR_PROBE: $(ip route get "$POD_CIDR_PROBE" 2>&1 | head -1))"
}

# netns_setup: prepares the namespace this process is in (a fresh one, as a rule; doing it twice
# is harmless). Refuses to touch a namespace that has any interface besides lo, so that it can
# never change the machine's own network.
netns_setup() {
    local ifaces
    ifaces="$(netns_interfaces | paste -sd, -)"
    [[ "$ifaces" == lo ]] ||
        netns_die "this network namespace has interfaces other than lo ($ifaces); refusing to set it up"
    ip link set lo up
    ip route replace local "$POD_CIDR" dev lo
    netns_require_private "use the new network namespace"
}

# netns_unshare CMD...: execs CMD in a new network namespace (and a user namespace unless root).
netns_unshare() {
    ensure_iproute2
    if [[ $(id -u) -eq 0 ]]; then
        exec unshare --net -- "$@"
    fi
    exec unshare --user --map-root-user --net -- "$@"
}

netns_main() {
    local self
    self="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/$(basename "${BASH_SOURCE[0]}")"
    case "${1:-}" in
        run)
            shift
            (($# > 0)) || netns_die "usage: $0 run CMD [ARG...]"
            netns_unshare "$self" _enter "$@"
            ;;
        _enter)
            # Inside the new namespace (see `run`).
            shift
            netns_setup
            exec "$@"
            ;;
        hold)
            (($# == 2)) || netns_die "usage: $0 hold READY_FILE"
            netns_unshare "$self" _hold "$2"
            ;;
        _hold)
            netns_setup
            echo $$ >"$2.tmp"
            mv "$2.tmp" "$2"
            # Named so that `ps` shows what it is; it only keeps the namespace alive.
            exec -a firebreak-netns-holder sleep infinity
            ;;
        check)
            ensure_iproute2
            if netns_is_private; then
                echo "private network namespace (interfaces: lo)"
            else
                echo "not a private network namespace (interfaces: $(netns_interfaces | paste -sd, -))" >&2
                exit 1
            fi
            ;;
        *)
            echo "usage: $0 run CMD [ARG...] | check | hold READY_FILE" >&2
            exit 2
            ;;
    esac
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
    netns_main "$@"
fi
