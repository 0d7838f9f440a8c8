#!/usr/bin/env bash
# The Firebreak demo (README's main command). On a fresh machine it:
#   1. builds the local environment's tools if they are not cached, and starts a local cluster
#      (real kube-apiserver, controller-manager, scheduler, etcd; kwok nodes) and Prometheus;
#   2. builds firebreak and the fleet simulator (tools/fleet-sim), installs the CRD, starts the
#      simulator (scraped by Prometheus) and the controller;
#   3. applies examples/demo: v1 (deployed straight to stable), v2 (healthy: promoted through its
#      canary steps once the judge is sure), v3 (5% errors: rolled back by itself);
#   4. shows each rollout live and ends with the rollback reason;
#   5. a Gateway API rollout with real requests: storefront (4 pods) behind an HTTPRoute on a
#      real gateway (Traefik), v2 canaried at exactly 5% then 25% and promoted, v3 (15% errors)
#      rolled back, with the requests per second per revision shown live;
#   6. stops everything again (also on Ctrl-C or failure).
# It runs in a private network namespace of its own (scripts/netns.sh), like the tests: the crates
# and tools are fetched first, then everything else happens offline inside it.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$here/common.sh"
run_in_private_netns "$here/demo.sh" "$@"
repo="$(cd "$here/.." && pwd)"
cd "$repo"
name=demo
ns=demo
started=$SECONDS

# Bold headings on a terminal only: no escape codes in a log file or a pipe.
if [[ -t 1 ]]; then
    say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
    say() { printf '\n== %s\n' "$*"; }
fi

pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    scripts/env.sh down "$name"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

say "building firebreak"
cargo build --quiet --bin firebreak --bin fleet-sim
firebreak="$repo/target/debug/firebreak"
fleet_sim="$repo/target/debug/fleet-sim"

say "starting the local cluster and Prometheus"
start_env "$name"

say "installing the Rollout CRD, starting the fleet simulator and the controller"
install_crds "$firebreak" "$kubectl"
"$kubectl" create namespace "$ns" >/dev/null

# start_namespace NS SEED [FLEET-SIM FLAGS...]: a fleet simulator for namespace NS (scraped by
# Prometheus) and a controller watching it, both stopped by `cleanup`.
start_namespace() {
    local namespace="$1" seed="$2" address=""
    shift 2
    FIREBREAK_LOG=warn "$fleet_sim" --namespace "$namespace" --listen 127.0.0.1:0 --seed "$seed" "$@" \
        >"$logs/$namespace.simulator.out" 2>"$logs/$namespace.simulator.log" &
    pids+=($!)
    for _ in $(seq 100); do
        address="$(sed -n 's/^listening on //p' "$logs/$namespace.simulator.out" 2>/dev/null | head -1)"
        [[ -n "$address" ]] && break
        sleep 0.1
    done
    [[ -n "$address" ]] || { echo "the fleet simulator did not start; see $logs/$namespace.simulator.log" >&2; exit 1; }
    printf '[{"targets": ["%s"], "labels": {"fleet": "%s"}}]\n' "$address" "$namespace" >"$FIREBREAK_SCRAPE_DIR/$namespace.json"
    echo "fleet simulator for $namespace on $address, scraped by Prometheus at $FIREBREAK_PROMETHEUS_URL"
    "$firebreak" controller --namespace "$namespace" >"$logs/$namespace.controller.log" 2>&1 &
    pids+=($!)
    echo "controller for $namespace running (log: $logs/$namespace.controller.log)"
}

# apply FILE NS: applies examples/demo/FILE to NS with the environment's Prometheus and Gateway.
apply() {
    sed -e "s#http://prometheus.monitoring:9090#$FIREBREAK_PROMETHEUS_URL#" \
        -e "s#GATEWAY_NAMESPACE#$FIREBREAK_GATEWAY_NAMESPACE#" \
        -e "s#GATEWAY_NAME#$FIREBREAK_GATEWAY_NAME#" "examples/demo/$1" |
        "$kubectl" apply -n "$2" -f - >/dev/null
}

# watch_until ROLLOUT NS PHASE LOG WHAT: prints each change of the rollout live until it settles
# (the final full status goes to LOG) and fails unless it ended in PHASE.
watch_until() {
    "$firebreak" status "$1" -n "$2" --watch --timeout 600 | tee "$logs/$4" | sed -u '/^Rollout/,$d' || true
    grep -q "^Phase     $3" "$logs/$4" || { echo "$5" >&2; cat "$logs/$4" >&2; exit 1; }
}

start_namespace "$ns" 7

say "v1: first deploy goes straight to stable"
apply checkout-v1.yaml "$ns"
"$firebreak" status checkout -n "$ns" --watch --timeout 120 | sed '/^Rollout/,$d'

say "v2: a healthy new version walks through 20% and 50% and is promoted once the judge is sure"
apply checkout-v2.yaml "$ns"
watch_until checkout "$ns" Healthy v2.txt "v2 was not promoted"

say "v3: 5% errors (5x v2) — rolled back automatically"
apply checkout-v3.yaml "$ns"
watch_until checkout "$ns" RolledBack v3.txt "v3 was not rolled back"

say "final state"
sed -n '/^Rollout/,$p' "$logs/v3.txt"

say "rollback reason"
"$kubectl" get rollout checkout -n "$ns" -o jsonpath='{.status.rollbackReason}{"\n"}'
say "the incident record (firebreak incidents, then the head of firebreak postmortem)"
"$firebreak" incidents -n "$ns"
incident="$("$kubectl" get rollout checkout -n "$ns" -o jsonpath='{.status.incident}')"
"$firebreak" postmortem "$incident" -n "$ns" | sed -n '1,40p'
say "Gateway API: exact weights on real requests through a real gateway (Traefik)"
gns=demo-gateway
"$kubectl" create namespace "$gns" >/dev/null
# This simulator answers real HTTP requests on each pod's IP (inside this private network
# namespace) and counts them; the gateway proxies to those IPs.
start_namespace "$gns" 11 --serve-pods
echo "gateway $FIREBREAK_GATEWAY_NAMESPACE/$FIREBREAK_GATEWAY_NAME at $FIREBREAK_GATEWAY_URL; storefront.demo is routed by an HTTPRoute Firebreak creates"

say "storefront v1: 4 pods, deployed straight to stable"
apply storefront-v1.yaml "$gns"
"$firebreak" status storefront -n "$gns" --watch --timeout 120 | sed '/^Rollout/,$d'

say "live requests per second per revision (pod-template-hash), 400 requests/s through the gateway"
"$fleet_sim" load --url "$FIREBREAK_GATEWAY_URL" --host storefront.demo --rps 400 --duration 1200s \
    --report-every 3s 2>"$logs/load.log" | sed -u 's/^/    [requests] /' &
pids+=($!)
sleep 4

say "storefront v2: healthy, canaried at exactly 5% then 25% of requests (with 4 pods), then promoted"
apply storefront-v2.yaml "$gns"
watch_until storefront "$gns" Healthy storefront-v2.txt "storefront v2 was not promoted"

say "storefront v3: 15% errors at 5% of traffic — rolled back, all requests back on stable"
apply storefront-v3.yaml "$gns"
watch_until storefront "$gns" RolledBack storefront-v3.txt "storefront v3 was not rolled back"
sleep 4

say "storefront: rollback reason and the mitigation, in order"
"$kubectl" get rollout storefront -n "$gns" -o jsonpath='{.status.rollbackReason}{"\n"}'
sincident="$("$kubectl" get rollout storefront -n "$gns" -o jsonpath='{.status.incident}')"
"$kubectl" get incident "$sincident" -n "$gns" \
    -o jsonpath='{range .spec.mitigation[*]}{.time}  {.action}: {.detail}{"\n"}{end}'
printf '\ndemo finished in %ss\n' "$((SECONDS - started))"
