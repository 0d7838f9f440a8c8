#!/usr/bin/env bash
# Builds or installs every binary the local test environment needs, and caches each one under
#   ${FIREBREAK_CACHE:-~/.cache/firebreak}/<component>-<version>/bin/
# (the Gateway API CRDs under gateway-api-<version>/crd/). A component directory exists only once
# its build has finished: builds happen in a scratch directory that is renamed into place at the
# end, so an interrupted build is rebuilt, never reused. Two runs at once are safe: a build of a
# component waits for another run's build of the same component and then uses it.
# Builds need the Go module proxy, so run this outside the environment's private network namespace
# (scripts/env.sh and scripts/test.sh do).
#
# Usage: scripts/toolchain.sh            # ensure everything, print the bin directories
#        scripts/toolchain.sh --print    # print KEY=path lines for the binaries (after ensuring)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=versions.env
source "$here/versions.env"

cache="${FIREBREAK_CACHE:-$HOME/.cache/firebreak}"
mkdir -p "$cache"

export CGO_ENABLED=0
# Never let `go` fetch a different toolchain: only the module proxy is reachable.
export GOTOOLCHAIN=local
export GOFLAGS=-mod=mod

log() { printf '[toolchain] %s\n' "$*" >&2; }
die() { printf '[toolchain] error: %s\n' "$*" >&2; exit 1; }

need() {
    command -v "$1" >/dev/null 2>&1 || die "'$1' is not installed. $2"
}

# with_scratch NAME FUNC: runs FUNC SCRATCH_DIR, then renames SCRATCH_DIR to $cache/NAME.
# Leftover scratch directories from interrupted builds are deleted first; a lock file per component
# keeps a concurrent run from deleting the scratch directory of a build still under way.
with_scratch() {
    local name="$1" fn="$2" final="$cache/$1"
    if [[ -f "$final/.complete" ]]; then
        return 0
    fi
    local lock
    exec {lock}>"$cache/.lock-$name"
    if ! flock -n "$lock"; then
        log "waiting for another run's build of $name"
        flock "$lock"
    fi
    if [[ -f "$final/.complete" ]]; then
        exec {lock}>&-
        return 0
    fi
    rm -rf "$final" "$cache/.scratch-$name".*
    local scratch
    scratch="$(mktemp -d "$cache/.scratch-$name.XXXXXX")"
    local started=$SECONDS
    log "building $name (first run only; cached afterwards)"
    if ! "$fn" "$scratch"; then
        rm -rf "$scratch"
        die "building $name failed (see the Go output above). Check that the Go module proxy is reachable (GOPROXY=$(go env GOPROXY); there is no network inside the environment's private network namespace) and that $(go version | cut -d' ' -f3) can build it; then rerun."
    fi
    date -u +%FT%TZ > "$scratch/.complete"
    mv "$scratch" "$final"
    exec {lock}>&-
    log "built $name in $((SECONDS - started))s"
}

# A throwaway Go module requiring k8s.io/kubernetes, with every staging module (which the
# kubernetes go.mod points at ./staging/...) replaced by its published v0.x release.
build_kubernetes() {
    local out="$1" work="$1/src"
    local minor="${KUBE_VERSION#v1.}" # 35.4
    local staging_version="v0.${minor}"
    mkdir -p "$work" "$out/bin"
    local gomod
    gomod="$(cd "$work" && go mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    [[ -f "$gomod" ]] || { log "could not download k8s.io/kubernetes@$KUBE_VERSION"; return 1; }
    {
        echo "module firebreak.dev/kubernetes-build"
        echo
        echo "go 1.25"
        echo
        echo "require k8s.io/kubernetes $KUBE_VERSION"
        echo
        echo "replace ("
        grep -E '^\s*k8s\.io/[a-z0-9-]+ => \./staging/' "$gomod" |
            awk -v v="$staging_version" '{ print "\t" $1 " => " $1 " " v }'
        echo ")"
    } > "$work/go.mod"
    (
        cd "$work"
        go build -trimpath -ldflags "-s -w \
            -X k8s.io/component-base/version.gitVersion=$KUBE_VERSION \
            -X k8s.io/component-base/version.gitMajor=1 \
            -X k8s.io/component-base/version.gitMinor=${minor%%.*} \
            -X k8s.io/client-go/pkg/version.gitVersion=$KUBE_VERSION" \
            -o "$out/bin/" \
            k8s.io/kubernetes/cmd/kube-apiserver \
            k8s.io/kubernetes/cmd/kube-controller-manager \
            k8s.io/kubernetes/cmd/kube-scheduler \
            k8s.io/kubernetes/cmd/kubectl
    ) || return 1
    rm -rf "$work"
}

build_kwok() {
    local out="$1"
    mkdir -p "$out/bin"
    GOBIN="$out/bin" go install -trimpath -ldflags "-s -w" \
        "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" \
        "sigs.k8s.io/kwok/cmd/kwokctl@$KWOK_VERSION"
}

# etcd's server module has replace directives of its own, so `go install pkg@version` refuses it:
# build its main package from a throwaway module instead.
build_etcd() {
    local out="$1" work="$1/src"
    mkdir -p "$work" "$out/bin"
    cat > "$work/go.mod" <<EOF
module firebreak.dev/etcd-build

go 1.25

require go.etcd.io/etcd/server/v3 $ETCD_VERSION
EOF
    (cd "$work" && go build -trimpath -ldflags "-s -w" -o "$out/bin/etcd" go.etcd.io/etcd/server/v3) || return 1
    rm -rf "$work"
}

build_helm() {
    local out="$1"
    mkdir -p "$out/bin"
    GOBIN="$out/bin" go install -trimpath -ldflags "-s -w" "helm.sh/helm/v3/cmd/helm@$HELM_VERSION"
}

# Traefik's go.mod has replace and exclude directives, so `go install pkg@version` refuses it (as
# etcd's): build its main package from a throwaway module that repeats those directives.
build_traefik() {
    local out="$1" work="$1/src"
    mkdir -p "$work" "$out/bin"
    local gomod
    gomod="$(cd "$work" && go mod download -json "github.com/traefik/traefik/v3@$TRAEFIK_VERSION" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')"
    [[ -f "$gomod" ]] || { log "could not download github.com/traefik/traefik/v3@$TRAEFIK_VERSION"; return 1; }
    {
        echo "module firebreak.dev/traefik-build"
        echo
        grep -m1 -E '^go [0-9.]+$' "$gomod"
        echo
        echo "require github.com/traefik/traefik/v3 $TRAEFIK_VERSION"
        echo
        sed -n '/^replace (/,/^)/p; /^exclude (/,/^)/p' "$gomod"
        grep -E '^(replace|exclude) [^(]' "$gomod" || true
    } > "$work/go.mod"
    (
        cd "$work"
        go build -trimpath \
            -ldflags "-s -w -X github.com/traefik/traefik/v3/pkg/version.Version=$TRAEFIK_VERSION" \
            -o "$out/bin/traefik" github.com/traefik/traefik/v3/cmd/traefik
    ) || return 1
    rm -rf "$work"
}

# The Gateway API CRDs of the standard channel, as the module sigs.k8s.io/gateway-api ships them.
fetch_gateway_api_crds() {
    local out="$1" dir
    mkdir -p "$out/crd"
    dir="$(cd "$out" && go mod download -json "sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
    [[ -d "$dir/config/crd/standard" ]] || { log "could not download sigs.k8s.io/gateway-api@$GATEWAY_API_VERSION"; return 1; }
    cp "$dir"/config/crd/standard/*.yaml "$out/crd/"
    # The module cache is read-only; the copies need not be.
    chmod u+w "$out"/crd/*.yaml
    ls "$out"/crd/*_httproutes.yaml >/dev/null
}

# The kstatus checker: a program of the project's own (tools/kstatus-check) around
# sigs.k8s.io/cli-utils' kstatus, built from its committed go.mod and go.sum (-mod=readonly: a
# go.sum that does not cover the build fails instead of being filled in from the network).
kstatus_src="$(cd "$here/../tools/kstatus-check" && pwd)"
build_kstatus_check() {
    local out="$1" work="$1/src"
    mkdir -p "$work" "$out/bin"
    cp "$kstatus_src"/go.mod "$kstatus_src"/go.sum "$kstatus_src"/*.go "$work/"
    (cd "$work" && GOFLAGS=-mod=readonly go build -trimpath -ldflags "-s -w" -o "$out/bin/kstatus-check" .) || return 1
    rm -rf "$work"
}

# ensure_debian_package COMMAND PACKAGE: installs Debian's PACKAGE if COMMAND is not on PATH.
ensure_debian_package() {
    local command="$1" package="$2"
    if command -v "$command" >/dev/null 2>&1; then
        return 0
    fi
    if [[ $(id -u) -ne 0 ]]; then
        die "$command is not installed. Install Debian's package: sudo apt-get install --no-install-recommends $package"
    fi
    log "installing Debian package '$package'"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null ||
        die "apt-get update failed; check that Debian's package mirror is reachable"
    apt-get install -y -qq --no-install-recommends "$package" >/dev/null ||
        die "apt-get install $package failed; run it by hand to see why"
    command -v "$command" >/dev/null 2>&1 || die "$command still not on PATH after installing $package"
}

need go "Install Go 1.25 or newer (https://go.dev/doc/install)."
ensure_debian_package prometheus "$PROMETHEUS_DEBIAN_PACKAGE"
# `ip`, which scripts/netns.sh uses to set up and check the private network namespace.
ensure_debian_package ip iproute2
with_scratch "kubernetes-$KUBE_VERSION" build_kubernetes
with_scratch "kwok-$KWOK_VERSION" build_kwok
with_scratch "etcd-$ETCD_VERSION" build_etcd
with_scratch "helm-$HELM_VERSION" build_helm
with_scratch "gateway-api-$GATEWAY_API_VERSION" fetch_gateway_api_crds
with_scratch "traefik-$TRAEFIK_VERSION" build_traefik
grep -qE "^[[:space:]]*(require[[:space:]]+)?sigs\.k8s\.io/cli-utils ${CLI_UTILS_VERSION}[[:space:]]*$" "$kstatus_src/go.mod" ||
    die "tools/kstatus-check/go.mod does not require sigs.k8s.io/cli-utils $CLI_UTILS_VERSION (scripts/versions.env). Update it: cd tools/kstatus-check && go get sigs.k8s.io/cli-utils@$CLI_UTILS_VERSION && go mod tidy"
# Named after the cli-utils version and a digest of the sources, so that an edit rebuilds it.
kstatus_digest="$(cd "$kstatus_src" && cat go.mod go.sum ./*.go | sha256sum | cut -c1-12)"
kstatus_dir="kstatus-check-$CLI_UTILS_VERSION-$kstatus_digest"
with_scratch "$kstatus_dir" build_kstatus_check

kbin="$cache/kubernetes-$KUBE_VERSION/bin"
cat <<EOF
KUBE_APISERVER=$kbin/kube-apiserver
KUBE_CONTROLLER_MANAGER=$kbin/kube-controller-manager
KUBE_SCHEDULER=$kbin/kube-scheduler
KUBECTL=$kbin/kubectl
KWOK=$cache/kwok-$KWOK_VERSION/bin/kwok
KWOKCTL=$cache/kwok-$KWOK_VERSION/bin/kwokctl
ETCD=$cache/etcd-$ETCD_VERSION/bin/etcd
PROMETHEUS=$(command -v prometheus)
HELM=$cache/helm-$HELM_VERSION/bin/helm
KSTATUS=$cache/$kstatus_dir/bin/kstatus-check
TRAEFIK=$cache/traefik-$TRAEFIK_VERSION/bin/traefik
GATEWAY_API_CRDS=$cache/gateway-api-$GATEWAY_API_VERSION/crd
EOF
