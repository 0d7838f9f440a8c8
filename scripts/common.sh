# Shell functions shared by the scripts that run Firebreak on a local environment
# (scripts/demo.sh, scripts/idle-requests.sh). Source it; it runs nothing by itself.

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

# start_env NAME: starts the local environment NAME (scripts/env.sh up) and loads its env file into
# this shell; sets `logs` (the environment's directory) and `kubectl`. Run from the repository root.
start_env() {
    scripts/env.sh up "$1" >/dev/null
    # shellcheck disable=SC1090
    source "target/firebreak-env/$1/env"
    logs="target/firebreak-env/$1"
    kubectl="$FIREBREAK_KUBECTL"
}
