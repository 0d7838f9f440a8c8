#!/usr/bin/env bash
# Starts and stops a local Firebreak test environment: a kwok cluster (real kube-apiserver,
# kube-controller-manager, kube-scheduler and etcd, fake nodes run by kwok), a real Prometheus and
# a Gateway API gateway (Traefik), all on 127.0.0.1 of a private network namespace.
#
#   scripts/env.sh up   [NAME]          start environment NAME (default: firebreak); prints its env file
#   scripts/env.sh down [NAME]          stop it and delete its state; never fails if it is already gone
#   scripts/env.sh env  [NAME]          print the env file of a running environment
#   scripts/env.sh exec NAME CMD [ARG...]
#                                       run CMD in the environment's network namespace, where its
#                                       components and its pod IPs can be reached
#
# The private network namespace (scripts/netns.sh) has nothing but loopback, and pod IPs
# (10.244.0.0/16; node i has podCIDR 10.244.i.0/24 and InternalIP 127.0.1.<i+1>; kube-apiserver
# advertises 10.244.255.1 but listens on 127.0.0.1 only) are local addresses in it, so the fleet simulator can serve on them and Traefik can proxy to them without
# a packet leaving the namespace. Run from a normal shell, `up` starts a holder process in a new
# namespace (its pid in NAME/netns.pid) and every component inside it, and `down` kills them all;
# run inside a private namespace already (scripts/netns.sh run ..., as scripts/test.sh does), `up`
# starts the components right there. The environment's addresses (127.0.0.1:PORT) can only be
# reached from inside its namespace: use `exec`.
#
# Several environments can run side by side under different names. Each lives in
#   ${FIREBREAK_ENV_ROOT:-<repo>/target/firebreak-env}/NAME/
# and its env file (NAME/env) exports:
#   KUBECONFIG                   the cluster's kubeconfig (admin)
#   FIREBREAK_PROMETHEUS_URL     http://127.0.0.1:PORT
#   FIREBREAK_SCRAPE_DIR         a directory Prometheus watches for file_sd target files (*.json)
#   FIREBREAK_PROMETHEUS_BIN     the Prometheus binary (tests start private ones with it)
#   FIREBREAK_KUBECTL            the kubectl built with the control plane
#   FIREBREAK_HELM               helm, built from its Go module
#   FIREBREAK_KSTATUS            tools/kstatus-check: prints what kstatus (Flux, kubectl wait) computes
#                                for objects given as JSON or YAML
#   FIREBREAK_POD_CIDR           10.244.0.0/16: every pod IP, local in the namespace only
#   FIREBREAK_GATEWAY_URL        http://127.0.0.1:PORT, Traefik's entrypoint for the Gateway
#   FIREBREAK_GATEWAY_NAME       the Gateway (GatewayClass firebreak, one HTTP listener on PORT whose
#   FIREBREAK_GATEWAY_NAMESPACE    routes may come from any namespace) and its namespace
#   FIREBREAK_TRAEFIK_BIN        the Traefik binary
#
# Settings (environment variables):
#   FIREBREAK_NODES              fake nodes to create (default 4, at most 250)
#   FIREBREAK_PROMETHEUS_PORT    Prometheus port (default: first free port from 19090)
#   FIREBREAK_APISERVER_PORT     kube-apiserver port (default: first free port from 16443)
#   FIREBREAK_GATEWAY_PORT       Traefik's entrypoint and the Gateway listener's port (default: first
#                                free port from 18000)
#   FIREBREAK_SCRAPE_INTERVAL    Prometheus scrape interval (default 2s)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/.." && pwd)"
# shellcheck source=netns.sh
source "$here/netns.sh"
cmd="${1:-}"
name="${2:-firebreak}"
root="${FIREBREAK_ENV_ROOT:-$repo/target/firebreak-env}"
dir="$root/$name"

gateway_name=gateway
gateway_namespace=firebreak-gateway
gateway_class=firebreak

log() { printf '[env %s] %s\n' "$name" "$*" >&2; }
die() { printf '[env %s] error: %s\n' "$name" "$*" >&2; exit 1; }

port_in_use() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# pick_port VAR DEFAULT: an explicitly set port must be free; otherwise the first free one from DEFAULT.
pick_port() {
    local var="$1" start="$2" value="${!1:-}"
    if [[ -n "$value" ]]; then
        if port_in_use "$value"; then
            die "port $value ($var) is already in use on 127.0.0.1. Find the process with \`ss -ltnp 'sport = :$value'\` and stop it, or set $var to a free port."
        fi
        echo "$value"
        return
    fi
    local p
    for ((p = start; p < start + 200; p++)); do
        if ! port_in_use "$p"; then
            echo "$p"
            return
        fi
    done
    die "no free port in $start-$((start + 199)) for $var; set $var to a free port"
}

load_tools() {
    local line
    while IFS= read -r line; do
        export "${line?}"
    done < <("$here/toolchain.sh")
}

# shellcheck disable=SC2153 # KUBECTL and the other tools' paths come from load_tools
kwokctl_env() {
    export KWOK_WORKDIR="$dir/kwok"
    export KWOK_KUBECTL_BINARY="$KUBECTL"
}

netns_id_of() { readlink "/proc/$1/ns/net" 2>/dev/null; }

# enter_netns: sets the array `enter` to the command prefix that runs a command in the
# environment's network namespace (empty if this process is in it already). Fails if that
# namespace is gone: its holder no longer runs, or the pid in netns.pid is now another process.
enter_netns() {
    local want pid
    want="$(cat "$dir/netns.id" 2>/dev/null)" || return 1
    enter=()
    [[ "$(netns_id_of self)" == "$want" ]] && return 0
    pid="$(cat "$dir/netns.pid" 2>/dev/null)" || return 1
    [[ -n "$pid" && "$(netns_id_of "$pid")" == "$want" ]] || return 1
    enter=(nsenter -t "$pid")
    # Unless root, the holder's network namespace is owned by a user namespace of its own.
    if [[ "$(readlink "/proc/$pid/ns/user")" != "$(readlink /proc/self/ns/user)" ]]; then
        enter+=(-U --preserve-credentials)
    fi
    enter+=(-n --)
}

stop_pidfile() {
    local pidfile="$dir/$1"
    [[ -f "$pidfile" ]] || return 0
    local pid
    pid="$(cat "$pidfile")"
    if kill -0 "$pid" 2>/dev/null; then
        kill "$pid" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    fi
    rm -f "$pidfile"
}

down() {
    [[ -d "$dir" ]] || return 0
    log "stopping"
    stop_pidfile traefik.pid
    stop_pidfile prometheus.pid
    if [[ -d "$dir/kwok" ]]; then
        [[ -n "${KWOKCTL:-}" ]] || load_tools
        kwokctl_env
        local enter=()
        enter_netns || enter=()
        "${enter[@]}" "$KWOKCTL" --name "$name" delete cluster >/dev/null 2>&1 || true
    fi
    # kwokctl records each component's pid under its work dir; make sure none survives. This also
    # ends the namespace's holder (netns.pid).
    local pidf
    while IFS= read -r pidf; do
        kill -9 "$(cat "$pidf")" 2>/dev/null || true
    done < <(find "$dir" -name '*.pid' 2>/dev/null)
    # Anything else still in the environment's own namespace (say, a server a test left behind),
    # unless that namespace is ours: then the caller would be among them.
    local netns proc
    netns="$(cat "$dir/netns.id" 2>/dev/null || true)"
    if [[ -f "$dir/netns.pid" && -n "$netns" && "$netns" != "$(netns_id_of self)" ]]; then
        for proc in /proc/[0-9]*; do
            if [[ "$(readlink "$proc/ns/net" 2>/dev/null)" == "$netns" ]]; then
                kill -9 "${proc#/proc/}" 2>/dev/null || true
            fi
        done
    fi
    rm -rf "$dir"
}

start_prometheus() {
    local port="$1"
    mkdir -p "$dir/prometheus/data" "$dir/scrape"
    cat > "$dir/prometheus/prometheus.yml" <<EOF
# Generated by scripts/env.sh. Targets are added by writing file_sd JSON files to $dir/scrape.
global:
  scrape_interval: ${FIREBREAK_SCRAPE_INTERVAL:-2s}
  evaluation_interval: ${FIREBREAK_SCRAPE_INTERVAL:-2s}
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:$port"]
  - job_name: firebreak
    file_sd_configs:
      - files: ["$dir/scrape/*.json"]
        refresh_interval: 2s
EOF
    setsid "$PROMETHEUS" \
        --config.file="$dir/prometheus/prometheus.yml" \
        --storage.tsdb.path="$dir/prometheus/data" \
        --storage.tsdb.retention.time=1d \
        --web.listen-address="127.0.0.1:$port" \
        --web.enable-lifecycle \
        >"$dir/prometheus/prometheus.log" 2>&1 < /dev/null &
    echo $! > "$dir/prometheus.pid"
    for _ in $(seq 100); do
        if curl -fsS "http://127.0.0.1:$port/-/ready" >/dev/null 2>&1; then
            return 0
        fi
        kill -0 "$(cat "$dir/prometheus.pid")" 2>/dev/null ||
            die "Prometheus exited at start; its log: $dir/prometheus/prometheus.log"$'\n'"$(tail -5 "$dir/prometheus/prometheus.log")"
        sleep 0.2
    done
    die "Prometheus did not become ready on 127.0.0.1:$port within 20s; see $dir/prometheus/prometheus.log"
}

# start_gateway PORT: installs the Gateway API CRDs, starts Traefik with one entrypoint on
# 127.0.0.1:PORT, and creates GatewayClass firebreak and a Gateway whose HTTP listener is on PORT
# (Traefik maps a listener to the entrypoint with the same port); waits until it is Programmed.
start_gateway() {
    local port="$1" kubectl=("$KUBECTL" --kubeconfig "$dir/kubeconfig")
    "${kubectl[@]}" apply --server-side -f "$GATEWAY_API_CRDS" >/dev/null
    local crds
    crds="$("${kubectl[@]}" get crd -o name | grep '\.gateway\.networking\.k8s\.io$')" ||
        die "no Gateway API CRD was created from $GATEWAY_API_CRDS"
    # shellcheck disable=SC2086 # one argument per CRD
    "${kubectl[@]}" wait --for=condition=Established --timeout=60s $crds >/dev/null ||
        die "the Gateway API CRDs were not Established within 60s"

    # Traefik would take in-cluster credentials over KUBECONFIG if these were set. It applies a
    # new configuration at most once per throttle period (2 s by default) but writes route status
    # before that: a short period keeps what the data plane does close to what status says.
    env -u KUBERNETES_SERVICE_HOST -u KUBERNETES_SERVICE_PORT KUBECONFIG="$dir/kubeconfig" \
        setsid "$TRAEFIK" \
        --providers.kubernetesgateway=true \
        --providers.kubernetesgateway.statusAddress.ip=127.0.0.1 \
        --providers.providersthrottleduration=100ms \
        --entryPoints.web.address="127.0.0.1:$port" \
        --global.checkNewVersion=false \
        --global.sendAnonymousUsage=false \
        --log.level=INFO \
        --log.noColor=true \
        >"$dir/traefik.log" 2>&1 </dev/null &
    echo $! > "$dir/traefik.pid"

    "${kubectl[@]}" apply --server-side -f - >/dev/null <<EOF
apiVersion: gateway.networking.k8s.io/v1
kind: GatewayClass
metadata:
  name: $gateway_class
spec:
  controllerName: traefik.io/gateway-controller
---
apiVersion: v1
kind: Namespace
metadata:
  name: $gateway_namespace
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata:
  name: $gateway_name
  namespace: $gateway_namespace
spec:
  gatewayClassName: $gateway_class
  listeners:
    - name: web
      protocol: HTTP
      port: $port
      allowedRoutes:
        namespaces:
          from: All
EOF
    local status
    for _ in $(seq 300); do
        kill -0 "$(cat "$dir/traefik.pid")" 2>/dev/null ||
            die "Traefik exited at start; its log: $dir/traefik.log"$'\n'"$(tail -5 "$dir/traefik.log")"
        status="$("${kubectl[@]}" get gateway "$gateway_name" -n "$gateway_namespace" \
            -o jsonpath='{.status.conditions[?(@.type=="Accepted")].status}/{.status.conditions[?(@.type=="Programmed")].status}' 2>/dev/null || true)"
        if [[ "$status" == True/True ]] && port_in_use "$port"; then
            return 0
        fi
        sleep 0.2
    done
    die "Gateway $gateway_namespace/$gateway_name was not Accepted and Programmed within 60s (Accepted/Programmed: ${status:-none}); see $dir/traefik.log and \`kubectl get gateway -n $gateway_namespace -o yaml\`"
}

# start_components: everything but the namespace itself; runs inside it.
start_components() {
    local nodes="${FIREBREAK_NODES:-4}"
    if ! [[ "$nodes" =~ ^[0-9]+$ ]] || ((nodes > 250)); then
        die "FIREBREAK_NODES=$nodes: give a number up to 250 (node i gets podCIDR 10.244.i.0/24)"
    fi
    local apiserver_port prometheus_port gateway_port
    apiserver_port="$(pick_port FIREBREAK_APISERVER_PORT 16443)"
    prometheus_port="$(pick_port FIREBREAK_PROMETHEUS_PORT 19090)"
    gateway_port="$(pick_port FIREBREAK_GATEWAY_PORT 18000)"

    # kwok gives a pod an IP from its node's podCIDR; a pod on a node without one would get an
    # IP from kwok's default cidr, kept inside POD_CIDR too (10.244.254.0/24). The namespace has
    # no default route, from which kube-apiserver would pick the address it advertises (the
    # endpoint of the `kubernetes` Service, which may not be loopback): give it 10.244.255.1.
    cat > "$dir/kwokctl.yaml" <<EOF
apiVersion: config.kwok.x-k8s.io/v1alpha1
kind: KwokctlConfiguration
options:
  runtime: binary
  bindAddress: 127.0.0.1
  kubeApiserverPort: $apiserver_port
  kubeApiserverBinary: $KUBE_APISERVER
  kubeControllerManagerBinary: $KUBE_CONTROLLER_MANAGER
  kubeSchedulerBinary: $KUBE_SCHEDULER
  kwokControllerBinary: $KWOK
  etcdBinary: $ETCD
  kubectlBinary: $KUBECTL
componentsPatches:
  - name: kube-apiserver
    extraArgs:
      - key: advertise-address
        value: 10.244.255.1
  - name: kwok-controller
    extraArgs:
      - key: cidr
        value: 10.244.254.0/24
EOF
    log "starting cluster (kube-apiserver on 127.0.0.1:$apiserver_port)"
    "$KWOKCTL" --name "$name" create cluster \
        --config "$dir/kwokctl.yaml" \
        --kubeconfig "$dir/kubeconfig" \
        --wait 3m >"$dir/kwokctl.log" 2>&1 ||
        die "kwokctl create cluster failed; its output: $dir/kwokctl.log"$'\n'"$(tail -15 "$dir/kwokctl.log")"$'\n'"kube-apiserver's log ends with:"$'\n'"$(tail -3 "$dir/kwok/clusters/$name/logs/kube-apiserver.log" 2>/dev/null)"
    # kwokctl's node template adds the node's index to the first address of each parameter:
    # node-00000i gets podCIDR 10.244.i.0/24 and InternalIP 127.0.1.(i+1) (IPv4 only).
    "$KWOKCTL" --name "$name" scale node --replicas "$nodes" \
        --param '.podCIDRs=["10.244.0.0/24"]' \
        --param '.nodeIPs=["127.0.1.1"]' >>"$dir/kwokctl.log" 2>&1 ||
        die "creating fake nodes failed; its output: $dir/kwokctl.log"$'\n'"$(tail -5 "$dir/kwokctl.log")"

    log "starting Prometheus on 127.0.0.1:$prometheus_port"
    start_prometheus "$prometheus_port"

    log "starting Traefik and Gateway $gateway_namespace/$gateway_name on 127.0.0.1:$gateway_port"
    start_gateway "$gateway_port"

    cat > "$dir/env" <<EOF
export KUBECONFIG=$dir/kubeconfig
export FIREBREAK_PROMETHEUS_URL=http://127.0.0.1:$prometheus_port
export FIREBREAK_SCRAPE_DIR=$dir/scrape
export FIREBREAK_ENV_NAME=$name
export FIREBREAK_PROMETHEUS_BIN=$PROMETHEUS
export FIREBREAK_KUBECTL=$KUBECTL
export FIREBREAK_KSTATUS=$KSTATUS
export FIREBREAK_HELM=$HELM
export FIREBREAK_POD_CIDR=$POD_CIDR
export FIREBREAK_GATEWAY_URL=http://127.0.0.1:$gateway_port
export FIREBREAK_GATEWAY_NAME=$gateway_name
export FIREBREAK_GATEWAY_NAMESPACE=$gateway_namespace
export FIREBREAK_TRAEFIK_BIN=$TRAEFIK
EOF
}

# start_holder: a process in a new private network namespace that keeps it alive; records its pid
# (netns.pid) and the namespace's identity (netns.id).
start_holder() {
    local ready="$dir/netns.ready" pid=""
    setsid "$here/netns.sh" hold "$ready" >"$dir/netns.log" 2>&1 </dev/null &
    # `down` kills it: no job report from this shell then.
    disown
    for _ in $(seq 100); do
        pid="$(cat "$ready" 2>/dev/null || true)"
        [[ -n "$pid" ]] && break
        sleep 0.1
    done
    [[ -n "$pid" ]] || die "the private network namespace was not set up within 10s; see $dir/netns.log"$'\n'"$(tail -5 "$dir/netns.log")"
    echo "$pid" > "$dir/netns.pid"
    netns_id_of "$pid" > "$dir/netns.id"
    [[ "$(cat "$dir/netns.id")" != "$(netns_id_of self)" ]] ||
        die "the holder (pid $pid) is in this shell's own network namespace; refusing to go on"
}

# save_logs: copies the logs of a failed start to $root/NAME.failed/, since `down` deletes them.
save_logs() {
    local kept="$root/$name.failed"
    rm -rf "$kept"
    mkdir -p "$kept"
    (cd "$dir" && find . -name '*.log' -exec cp --parents {} "$kept/" \;) 2>/dev/null || true
}

up() {
    command -v curl >/dev/null || die "curl is not installed: apt-get install curl"
    # Building tools needs the network: do it before entering the namespace.
    load_tools
    # A leftover environment of the same name (say, from a killed run) is replaced, not reused.
    down
    mkdir -p "$dir"
    # Clean up everything started so far if any later step fails.
    started=0
    trap '[[ $started == 1 ]] || { save_logs; log "start failed; cleaning up (logs kept in $root/$name.failed)"; down; }' EXIT

    if netns_is_private; then
        log "in a private network namespace already: starting the components in it"
        netns_setup
        netns_id_of self > "$dir/netns.id"
        kwokctl_env
        start_components
    else
        start_holder
        log "private network namespace held by pid $(cat "$dir/netns.pid")"
        local enter
        enter_netns || die "cannot enter the new network namespace"
        "${enter[@]}" "$here/env.sh" _components "$name"
    fi
    started=1
    rm -rf "$root/$name.failed"
    log "ready"
    cat "$dir/env"
}

# exec_in CMD...: runs CMD in the environment's network namespace, after checking that it is private.
exec_in() {
    (($# > 0)) || die "usage: $0 exec NAME CMD [ARG...]"
    [[ -f "$dir/env" && -f "$dir/netns.id" ]] ||
        die "environment '$name' is not running (no $dir/env); start it with: scripts/env.sh up $name"
    local enter
    if ! enter_netns; then
        [[ -f "$dir/netns.pid" ]] ||
            die "environment '$name' was started inside a private network namespace of another process (scripts/netns.sh run ...), which has no holder to enter; run the command in that namespace"
        die "the network namespace of environment '$name' is gone (its holder, pid $(cat "$dir/netns.pid"), is not running); restart it: scripts/env.sh up $name"
    fi
    "${enter[@]}" "$here/netns.sh" check >/dev/null ||
        die "the network namespace of environment '$name' is not private any more; stop it: scripts/env.sh down $name"
    exec "${enter[@]}" "$@"
}

case "$cmd" in
    up) up ;;
    down) down ;;
    env) [[ -f "$dir/env" ]] || die "environment '$name' is not running (no $dir/env); start it with: scripts/env.sh up $name"; cat "$dir/env" ;;
    exec) shift 2 || die "usage: $0 exec NAME CMD [ARG...]"; exec_in "$@" ;;
    _components)
        # Run by `up` inside the new namespace, with the tools' paths in the environment.
        netns_require_private "start environment '$name'"
        kwokctl_env
        start_components
        ;;
    *) echo "usage: $0 up|down|env [NAME] | exec NAME CMD [ARG...]" >&2; exit 2 ;;
esac
