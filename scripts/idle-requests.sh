#!/usr/bin/env bash
# What an idle fleet costs the Kubernetes API: the controller's requests while N settled Rollouts
# sit still for MINUTES minutes.
#
#   scripts/idle-requests.sh [N] [MINUTES]      (defaults: 100 Rollouts, 10 minutes)
#
# It starts its own local environment (`scripts/env.sh up idle`), builds firebreak (debug profile,
# as scripts/demo.sh does: the counts do not depend on the profile), starts the controller with its
# metrics endpoint, creates N Rollouts of 2 pods each without analysis (kwok runs the pods), waits
# until every one is Healthy and the controller has gone quiet, then samples
#   - the controller's firebreak_kube_requests_total{verb,resource} and its reconcile count
#     (firebreak_reconcile_duration_seconds_count), and
#   - the API server's own apiserver_request_total (every client, not only the controller)
# at the start and the end of the idle period, and prints the differences: by verb and resource,
# per Rollout, per reconcile, and per Rollout per minute. A settled Rollout is looked at again
# every RESYNC seconds (`decide::RESYNC`), so the idle period should span several RESYNCs.
#
# Everything runs in a private network namespace of its own (scripts/netns.sh), like the tests, and
# is stopped and the environment deleted on exit, also on Ctrl-C or failure.
# Settings: FIREBREAK_IDLE_SETTLE_TIMEOUT  seconds to wait for all Rollouts to be Healthy (900).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$here/common.sh"
repo="$(cd "$here/.." && pwd)"
cd "$repo"
rollouts="${1:-100}"
minutes="${2:-10}"
[[ "$rollouts" =~ ^[1-9][0-9]*$ && "$minutes" =~ ^[1-9][0-9]*$ ]] ||
    { echo "usage: $0 [N] [MINUTES]   (positive integers; defaults 100 and 10)" >&2; exit 2; }
run_in_private_netns "$here/idle-requests.sh" "$@"
name=idle
ns=idle
settle_timeout="${FIREBREAK_IDLE_SETTLE_TIMEOUT:-900}"

say() { printf '\n== %s\n' "$*"; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
    wait 2>/dev/null || true
    scripts/env.sh down "$name"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# decide.rs, or decide/mod.rs once decide is split by concern.
resync="$(grep -rh '^pub const RESYNC: Duration' src/controller |
    sed -n 's/.*Duration::from_secs(\([0-9]*\));.*/\1/p' | head -1)"
[[ -n "$resync" ]] || die "cannot read RESYNC (pub const RESYNC: Duration) from src/controller"
if ((minutes * 60 < 2 * resync)); then
    echo "warning: $minutes minutes hold fewer than two resyncs (RESYNC is ${resync}s) of each Rollout" >&2
fi

say "building firebreak (debug profile)"
cargo build --quiet --bin firebreak
firebreak="$repo/target/debug/firebreak"

say "starting environment '$name'"
start_env "$name"

say "installing the CRDs and starting the controller"
install_crds "$firebreak" "$kubectl"
"$kubectl" create namespace "$ns" >/dev/null
FIREBREAK_LOG_FORMAT=json "$firebreak" controller --namespace "$ns" --metrics-address 127.0.0.1:0 \
    >"$logs/controller.log" 2>&1 &
pids+=($!)
metrics=""
for _ in $(seq 100); do
    metrics="$(grep 'serving /metrics' "$logs/controller.log" 2>/dev/null |
        sed -n 's/.*"address":"\([^"]*\)".*/\1/p' | head -1 || true)"
    [[ -n "$metrics" ]] && break
    kill -0 "${pids[-1]}" 2>/dev/null || die "the controller exited; see $logs/controller.log"
    sleep 0.1
done
[[ -n "$metrics" ]] || die "the controller did not log its metrics address; see $logs/controller.log"
echo "controller metrics at http://$metrics/metrics (log: $logs/controller.log)"

say "creating $rollouts Rollouts of 2 replicas, without analysis"
for ((i = 1; i <= rollouts; i++)); do
    cat <<EOF
---
apiVersion: firebreak.dev/v1alpha1
kind: Rollout
metadata:
  name: idle-$i
spec:
  replicas: 2
  selector:
    matchLabels: {app: idle-$i}
  template:
    metadata:
      labels: {app: idle-$i}
    spec:
      containers:
        - name: app
          image: registry.example.com/idle:1.0.0
  strategy:
    canary:
      steps:
        - setWeight: 50
        - pause: {duration: 10s}
EOF
done | "$kubectl" apply -n "$ns" -f - >/dev/null

# Sum of the values of the series whose line starts with $1 in the controller's metrics.
controller_sum() {
    curl -fsS "http://$metrics/metrics" | awk -v prefix="$1" 'index($0, prefix) == 1 { s += $2 } END { print s + 0 }'
}

say "waiting until all $rollouts are Healthy (at most ${settle_timeout}s)"
deadline=$((SECONDS + settle_timeout))
while :; do
    healthy="$("$kubectl" get rollouts -n "$ns" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c '^Healthy$' || true)"
    ((healthy == rollouts)) && break
    if ((SECONDS > deadline)); then
        "$kubectl" get rollouts -n "$ns" -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | sort | uniq -c >&2
        die "only $healthy of $rollouts Rollouts are Healthy after ${settle_timeout}s; see $logs/controller.log"
    fi
    sleep 5
done
running="$("$kubectl" get pods -n "$ns" --field-selector status.phase=Running -o name | wc -l)"
echo "all $rollouts Healthy after ${SECONDS}s; $running pods Running"
# Settled: no reconcile for 30 s (status writes, pods turning Ready and the Events they cause have
# passed; the next reconciles are the resyncs).
quiet=0
last="$(controller_sum firebreak_reconcile_duration_seconds_count)"
while ((quiet < 30)); do
    sleep 5
    now="$(controller_sum firebreak_reconcile_duration_seconds_count)"
    if [[ "$now" == "$last" ]]; then quiet=$((quiet + 5)); else quiet=0; last="$now"; fi
    ((SECONDS > deadline)) && die "the controller did not go quiet within ${settle_timeout}s"
done
echo "settled: no reconcile for 30s ($last reconciles so far)"

# sample DIR: the controller's and the API server's counters, taken together.
sample() {
    mkdir -p "$1"
    curl -fsS "http://$metrics/metrics" >"$1/controller.txt"
    "$kubectl" get --raw /metrics >"$1/apiserver.txt"
    date +%s >"$1/time"
}
# requests FILE: "verb resource count" lines of the controller's counter.
requests() {
    awk '/^firebreak_kube_requests_total\{/ {
        match($0, /verb="[^"]*"/); verb = substr($0, RSTART + 6, RLENGTH - 7)
        match($0, /resource="[^"]*"/); resource = substr($0, RSTART + 10, RLENGTH - 11)
        print verb, resource, $2 }' "$1"
}
# apiserver FILE: "VERB group/resource[/subresource] count" lines, summed over codes and scopes.
apiserver() {
    awk '/^apiserver_request_total\{/ {
        label["verb"] = label["group"] = label["resource"] = label["subresource"] = ""
        for (l in label) if (match($0, "[{,]" l "=\"[^\"]*\"")) label[l] = substr($0, RSTART + length(l) + 3, RLENGTH - length(l) - 4)
        if (label["resource"] == "") r = "nonresource"
        else r = (label["group"] == "" ? "core" : label["group"]) "/" label["resource"]
        if (label["subresource"] != "") r = r "/" label["subresource"]
        s[label["verb"] " " r] += $NF }
        END { for (k in s) print k, s[k] }' "$1"
}
# delta BEFORE AFTER: "key1 key2 after-before" for every series that grew.
delta() {
    awk 'NR == FNR { before[$1 " " $2] = $3; next }
        { d = $3 - before[$1 " " $2]; if (d > 0) print $1, $2, d }' "$1" "$2"
}

dir="$logs/samples"
say "idle for $minutes minutes (RESYNC ${resync}s: about $((minutes * 60 / resync)) resyncs per Rollout)"
sample "$dir/start"
sleep $((minutes * 60))
sample "$dir/end"

elapsed=$(($(cat "$dir/end/time") - $(cat "$dir/start/time")))
reconciles=$(($(awk '/^firebreak_reconcile_duration_seconds_count/ { s += $2 } END { print s + 0 }' "$dir/end/controller.txt") -
    $(awk '/^firebreak_reconcile_duration_seconds_count/ { s += $2 } END { print s + 0 }' "$dir/start/controller.txt")))
requests "$dir/start/controller.txt" >"$dir/start/requests"
requests "$dir/end/controller.txt" >"$dir/end/requests"
delta "$dir/start/requests" "$dir/end/requests" | sort -k3,3nr >"$dir/requests.delta"
apiserver "$dir/start/apiserver.txt" >"$dir/start/apiserver"
apiserver "$dir/end/apiserver.txt" >"$dir/end/apiserver"
delta "$dir/start/apiserver" "$dir/end/apiserver" | sort -k3,3nr >"$dir/apiserver.delta"

say "result: $rollouts settled Rollouts, idle for ${elapsed}s"
awk -v n="$rollouts" -v r="$reconciles" -v secs="$elapsed" 'BEGIN {
    printf "reconciles: %d (%.2f per Rollout, %.3f per Rollout per minute)\n", r, r / n, r / n / (secs / 60) }'
echo
echo "controller requests (firebreak_kube_requests_total), idle period:"
awk -v n="$rollouts" -v r="$reconciles" -v secs="$elapsed" '
    function row(verb, resource, c) {
        printf "  %-8s %-22s %8d %12.3f %14.3f %16.4f\n", verb, resource, c, c / n, (r ? c / r : 0), c / n / (secs / 60) }
    BEGIN { printf "  %-8s %-22s %8s %12s %14s %16s\n", "verb", "resource", "requests", "per Rollout", "per reconcile", "per Rollout/min" }
    { row($1, $2, $3)
      if ($1 == "get" || $1 == "list") reads += $3
      else if ($1 == "watch") watches += $3
      else writes += $3 }
    END {
      print ""
      row("reads", "(get, list)", reads)
      row("writes", "(all)", writes)
      row("watches", "(opened)", watches) }' "$dir/requests.delta"
echo
echo "API server (apiserver_request_total, all clients; a WATCH counts when it ends), idle period:"
awk '{ printf "  %-8s %-40s %8d\n", $1, $2, $3 }' "$dir/apiserver.delta"
echo
echo "samples: $dir"
