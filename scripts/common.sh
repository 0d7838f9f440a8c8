# shellcheck shell=bash
# Shell functions shared by the scripts that run Firebreak on a local environment
# (scripts/demo.sh, scripts/idle-requests.sh). Source it; it runs nothing by itself.

common_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=netns.sh
source "$common_dir/netns.sh"

# run_in_private_netns SCRIPT [ARG...]: the environment's components and pod IPs can be reached
# only from inside its private network namespace (scripts/netns.sh), which has no network. Unless
# this shell is in such a namespace already, fetches what needs the network (the workspace's
# crates, the environment's tools) and re-runs SCRIPT with ARGs in a new one; returns when it is
# in one, with Cargo set to work offline. Call it first thing, with the caller's absolute path.
run_in_private_netns() {
    local script="$1"
    shift
    if netns_is_private; then
        export CARGO_NET_OFFLINE=true
        return 0
    fi
    (cd "$common_dir/.." && cargo fetch --locked --quiet)
    "$common_dir/toolchain.sh" >/dev/null
    exec "$common_dir/netns.sh" run "$script" "$@"
}

# install_crds FIREBREAK KUBECTL: applies the CRDs `FIREBREAK crd` prints and waits (at most
# 20 s) until the API server serves Rollouts.
install_crds() {
    local firebreak="$1" kubectl="$2"
    "$firebreak" crd | "$kubectl" apply --server-side -f - >/dev/null
    for _ in $(seq 100); do
        # Until the API server has set any condition, the filter has nothing to read and fails.
        [[ "$("$kubectl" get crd rollouts.firebreak.dev -o jsonpath='{.status.conditions[?(@.type=="Established")].status}' 2>/dev/null)" == True ]] && return 0
        sleep 0.2
    done
    echo "the Rollout CRD was not Established within 20s; see \`$kubectl get crd rollouts.firebreak.dev -o yaml\`" >&2
    return 1
}

# start_env NAME: starts the local environment NAME (scripts/env.sh up) in this shell's private
# network namespace (see run_in_private_netns) and loads its env file into this shell; sets `logs`
# (the environment's directory) and `kubectl`. Run from the repository root.
start_env() {
    netns_require_private "start environment $1"
    scripts/env.sh up "$1" >/dev/null
    # shellcheck disable=SC1090
    source "target/firebreak-env/$1/env"
    # shellcheck disable=SC2034 # for the caller
    logs="target/firebreak-env/$1"
    kubectl="$FIREBREAK_KUBECTL"
}
