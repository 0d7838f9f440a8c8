#!/usr/bin/env bash
# End-to-end check of the environment's Gateway API routing, from a request to a pod IP:
#   - a Deployment of 4 kwok pods; 3 are labelled track=stable and 1 track=canary, and a Service
#     selects each track (port 8080); their EndpointSlices must list exactly those pods, Ready;
#   - a small HTTP server (python3) on each pod IP:8080 answers with the pod's name;
#   - an HTTPRoute (hostname web.gateway-check.test) on the environment's Gateway sends 90% to
#     the stable Service and 10% to the canary one; its status must say Accepted and ResolvedRefs
#     for the current generation;
#   - 1000 requests through Traefik (FIREBREAK_GATEWAY_URL): the split must be 90/10 within 2
#     points, every pod must answer, and a request for another hostname must get a 404.
# It prints the split, the HTTPRoute's conditions and the EndpointSlices, and exits non-zero if
# any check fails. Everything it creates is in a namespace of its own, deleted at the end.
#
#   scripts/gateway-check.sh [NAME]
#
# With NAME, it checks the running environment NAME (scripts/env.sh up NAME) from inside its
# network namespace; without, it starts a throwaway environment 'gateway-check' in a new private
# network namespace and stops it again at the end.
#
# Pod IPs are local addresses only inside the environment's private network namespace
# (scripts/netns.sh): this script refuses to serve on or send to a pod IP anywhere else.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=netns.sh
source "$here/netns.sh"
cd "$repo"

env_name="${1:-}"
hostname=web.gateway-check.test
requests=1000

say() { printf '\n== %s\n' "$*"; }
die() { printf '[gateway-check] error: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is not installed: apt-get install python3"

# Get into the right network namespace first.
if ! netns_is_private; then
    if [[ -n "$env_name" ]]; then
        exec "$here/env.sh" exec "$env_name" "$here/gateway-check.sh" "$env_name"
    fi
    # The tools are built (if need be) while the network can still be reached.
    "$here/toolchain.sh" >/dev/null
    exec "$here/netns.sh" run "$here/gateway-check.sh"
fi
# Before anything is served on or sent to a pod IP: only lo, and pod IPs local.
netns_require_private "serve on or send requests to pod IPs"

own_env=0
if [[ -z "$env_name" ]]; then
    env_name=gateway-check
    own_env=1
fi
ns="gateway-check-$RANDOM"
work="$(mktemp -d)"
server_pid=""
cleanup() {
    [[ -z "$server_pid" ]] || kill "$server_pid" 2>/dev/null || true
    if [[ -n "${kubectl:-}" ]]; then
        "$kubectl" delete namespace "$ns" --wait=false >/dev/null 2>&1 || true
    fi
    ((own_env == 0)) || scripts/env.sh down "$env_name"
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

if ((own_env)); then
    say "starting environment '$env_name'"
    scripts/env.sh up "$env_name" >/dev/null
fi
env_file="target/firebreak-env/$env_name/env"
[[ -f "$env_file" ]] || die "environment '$env_name' is not running (no $env_file)"
# shellcheck disable=SC1090
source "$env_file"
kubectl="$FIREBREAK_KUBECTL"
[[ -n "${FIREBREAK_GATEWAY_URL:-}" ]] || die "$env_file has no FIREBREAK_GATEWAY_URL: restart the environment with this version of scripts/env.sh"
gateway_port="${FIREBREAK_GATEWAY_URL##*:}"

# eventually WHAT SECONDS CMD...: retries CMD every 0.5 s until it succeeds.
eventually() {
    local what="$1" seconds="$2"
    shift 2
    local deadline=$((SECONDS + seconds))
    until "$@"; do
        ((SECONDS < deadline)) || die "$what: not within ${seconds}s"
        sleep 0.5
    done
}

say "namespace $ns: Deployment web (4 kwok pods), Services web-stable (3 pods) and web-canary (1 pod)"
"$kubectl" create namespace "$ns" >/dev/null
"$kubectl" apply -n "$ns" -f - >/dev/null <<EOF
apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 4
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
    spec:
      containers:
        - name: web
          image: example.com/web:1
          ports: [{containerPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: web-stable
spec:
  selector: {app: web, track: stable}
  ports: [{port: 8080, targetPort: 8080}]
---
apiVersion: v1
kind: Service
metadata:
  name: web-canary
spec:
  selector: {app: web, track: canary}
  ports: [{port: 8080, targetPort: 8080}]
EOF

ready_pods() {
    "$kubectl" get pods -n "$ns" -l app=web -o json >"$work/pods.json"
    python3 - "$work/pods.json" >"$work/pods.txt" <<'PY'
import json, sys
pods = json.load(open(sys.argv[1]))["items"]
ready = [
    (p["metadata"]["name"], p["status"].get("podIP", ""))
    for p in pods
    if any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    and p["status"].get("podIP")
]
for name, ip in sorted(ready):
    print(name, ip)
sys.exit(0 if len(ready) == 4 else 1)
PY
}
eventually "4 Ready pods with IPs" 90 ready_pods
mapfile -t pods < <(cut -d' ' -f1 "$work/pods.txt")
mapfile -t ips < <(cut -d' ' -f2 "$work/pods.txt")
for i in 0 1 2 3; do
    track=stable
    ((i < 3)) || track=canary
    "$kubectl" label pod -n "$ns" "${pods[$i]}" "track=$track" >/dev/null
    printf '%-28s %-14s track=%s node=%s\n' "${pods[$i]}" "${ips[$i]}" "$track" \
        "$("$kubectl" get pod -n "$ns" "${pods[$i]}" -o jsonpath='{.spec.nodeName}')"
done

# endpoints_match: each Service's EndpointSlices list exactly its pods' IPs, all Ready.
endpoints_match() {
    "$kubectl" get endpointslices -n "$ns" -o json >"$work/slices.json"
    python3 - "$work/slices.json" "${ips[@]}" <<'PY'
import json, sys
slices, ips = json.load(open(sys.argv[1]))["items"], sys.argv[2:]
want = {"web-stable": sorted(ips[:3]), "web-canary": sorted(ips[3:])}
got = {name: [] for name in want}
for s in slices:
    service = s["metadata"].get("labels", {}).get("kubernetes.io/service-name")
    for e in s.get("endpoints") or []:
        if service in got and e.get("conditions", {}).get("ready"):
            got[service] += e["addresses"]
sys.exit(0 if {k: sorted(v) for k, v in got.items()} == want else 1)
PY
}
eventually "EndpointSlices listing the Ready pods of each Service" 60 endpoints_match

say "an HTTP server on each pod IP:8080 (answering with the pod's name)"
cat >"$work/serve.py" <<'PY'
# Serves GET on each POD_IP:8080 (argv: NAME=IP ...), answering with the pod's name.
import http.server, ipaddress, sys, threading

POD_CIDR = ipaddress.ip_network("10.244.0.0/16")

def handler_for(pod):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = pod.encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass
    return Handler

servers = []
for arg in sys.argv[1:]:
    pod, ip = arg.split("=")
    if ipaddress.ip_address(ip) not in POD_CIDR:
        sys.exit(f"refusing to serve on {ip}: not in {POD_CIDR}")
    server = http.server.ThreadingHTTPServer((ip, 8080), handler_for(pod))
    servers.append(server)
    threading.Thread(target=server.serve_forever, daemon=True).start()
print("serving", flush=True)
threading.Event().wait()
PY
args=()
for i in 0 1 2 3; do args+=("${pods[$i]}=${ips[$i]}"); done
python3 "$work/serve.py" "${args[@]}" >"$work/serve.log" 2>&1 &
server_pid=$!
server_started() {
    kill -0 "$server_pid" 2>/dev/null || die "the pod servers exited: $(cat "$work/serve.log")"
    grep -q '^serving' "$work/serve.log"
}
eventually "pod servers listening" 10 server_started

say "HTTPRoute web: $hostname -> web-stable 90, web-canary 10"
"$kubectl" apply -n "$ns" -f - >/dev/null <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: HTTPRoute
metadata:
  name: web
spec:
  parentRefs:
    - name: $FIREBREAK_GATEWAY_NAME
      namespace: $FIREBREAK_GATEWAY_NAMESPACE
  hostnames: [$hostname]
  rules:
    - backendRefs:
        - {name: web-stable, port: 8080, weight: 90}
        - {name: web-canary, port: 8080, weight: 10}
EOF

# route_status [--print]: true once the Gateway's parent status says Accepted and ResolvedRefs
# for the current generation; --print shows it.
route_status() {
    "$kubectl" get httproute web -n "$ns" -o json >"$work/route.json"
    python3 - "$work/route.json" "$FIREBREAK_GATEWAY_NAMESPACE" "$FIREBREAK_GATEWAY_NAME" "$@" <<'PY'
import json, sys
route, gw_ns, gw_name = json.load(open(sys.argv[1])), sys.argv[2], sys.argv[3]
show = "--print" in sys.argv[4:]
generation = route["metadata"]["generation"]
ok = False
for parent in route.get("status", {}).get("parents", []):
    ref = parent["parentRef"]
    if ref["name"] != gw_name or ref.get("namespace", route["metadata"]["namespace"]) != gw_ns:
        continue
    conditions = {c["type"]: c for c in parent.get("conditions", [])}
    ok = all(
        conditions.get(t, {}).get("status") == "True"
        and conditions[t].get("observedGeneration") == generation
        for t in ("Accepted", "ResolvedRefs")
    )
    if show:
        print(f"metadata.generation {generation}; parent {gw_ns}/{gw_name}, controller {parent['controllerName']}:")
        for c in conditions.values():
            print(f"  {c['type']:<13} {c['status']:<5} reason={c['reason']:<10} observedGeneration={c.get('observedGeneration')}")
sys.exit(0 if ok else 1)
PY
}
eventually "HTTPRoute web Accepted and ResolvedRefs by the Gateway" 60 route_status

# send COUNT [HOST]: COUNT requests to the gateway, only ever to 127.0.0.1 (Traefik's entrypoint);
# prints "STATUS BODY" counts.
send() {
    python3 - "$gateway_port" "$1" "${2:-$hostname}" <<'PY'
import collections, http.client, sys
port, count, host = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
counts = collections.Counter()
conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
for _ in range(count):
    try:
        conn.request("GET", "/", headers={"Host": host})
        response = conn.getresponse()
        counts[(response.status, response.read().decode(errors="replace"))] += 1
    except (OSError, http.client.HTTPException) as e:
        counts[(0, type(e).__name__)] += 1
        conn.close()
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
for (status, body), n in sorted(counts.items()):
    print(status, n, body.strip().replace("\n", " ")[:80])
PY
}
routed() { send 1 | grep -q '^200 '; }
eventually "a first 200 through the gateway" 60 routed

say "$requests requests to $FIREBREAK_GATEWAY_URL (Host: $hostname)"
send "$requests" >"$work/split.txt"
declare -A by_pod=()
non_200=0
while read -r status n body; do
    if [[ "$status" == 200 ]]; then by_pod[$body]=$n; else non_200=$((non_200 + n)); fi
done <"$work/split.txt"
stable=0 canary=0
for i in 0 1 2 3; do
    n="${by_pod[${pods[$i]}]:-0}"
    if ((i < 3)); then stable=$((stable + n)); else canary=$((canary + n)); fi
    printf '  %-28s %-14s %s %4d\n' "${pods[$i]}" "${ips[$i]}" "$( ((i < 3)) && echo stable || echo canary)" "$n"
done
printf '  web-stable %d (%d.%d%%), web-canary %d (%d.%d%%), other answers %d\n' \
    "$stable" $((stable * 100 / requests)) $((stable * 1000 / requests % 10)) \
    "$canary" $((canary * 100 / requests)) $((canary * 1000 / requests % 10)) "$non_200"

say "HTTPRoute web status"
route_status --print || true

say "EndpointSlices"
"$kubectl" get endpointslices -n "$ns" -o wide

say "a request for another hostname"
other="$(send 1 other.gateway-check.test)"
echo "  $other"

failures=()
((non_200 == 0)) || failures+=("$non_200 of $requests requests got no 200: $(grep -v '^200 ' "$work/split.txt" | paste -sd';' -)")
((stable + canary == requests)) || failures+=("only $((stable + canary)) of $requests answers came from the pods")
((stable >= requests * 88 / 100 && stable <= requests * 92 / 100)) ||
    failures+=("web-stable got $stable of $requests requests; want 90% +- 2 points")
for i in 0 1 2 3; do
    ((${by_pod[${pods[$i]}]:-0} > 0)) || failures+=("pod ${pods[$i]} (${ips[$i]}) got no request")
done
[[ "$other" == "404 "* ]] || failures+=("a request for another hostname got '$other', want a 404")
route_status >/dev/null || failures+=("the HTTPRoute is no longer Accepted and ResolvedRefs")

if ((${#failures[@]})); then
    printf '\ngateway check FAILED:\n' >&2
    printf '  - %s\n' "${failures[@]}" >&2
    exit 1
fi
printf '\ngateway check passed: %d requests, %d to web-stable and %d to web-canary through %s\n' \
    "$requests" "$stable" "$canary" "$FIREBREAK_GATEWAY_URL"
