#!/usr/bin/env bash
# The project's test command (README "Development"): checks formatting and lints, builds the
# workspace and its tests and the local environment's tools if they are not cached yet, then, in a
# private network namespace (scripts/netns.sh: loopback only, pod IPs local), starts one
# environment shared by the whole run (each test makes its own namespace), runs every test, and
# stops the environment again, whether the tests pass, fail or are interrupted.
#
# Everything that needs the network (crates, Go modules, Debian packages) happens in the first
# phase; the second runs Cargo with --offline, since the namespace has no network. The script
# re-runs itself in the namespace for the second phase.
#
# Set FIREBREAK_USE_EXISTING=1 to test against the environment whose settings are in the shell
# (KUBECONFIG, FIREBREAK_PROMETHEUS_URL, FIREBREAK_SCRAPE_DIR, FIREBREAK_GATEWAY_URL, ...) instead
# of starting one. The tests send requests to pod IPs, so this runs only inside a private network
# namespace, the environment's own (Cargo is offline there: fetch the crates first):
#   scripts/env.sh up dev
#   scripts/env.sh exec dev bash -c 'source target/firebreak-env/dev/env && FIREBREAK_USE_EXISTING=1 scripts/test.sh'
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
# shellcheck source=netns.sh
source "$here/netns.sh"

step() { printf '\n== %s\n' "$*" >&2; }

# In a private namespace already (the second phase, or a caller's), Cargo must not try the network.
if netns_is_private; then
    export CARGO_NET_OFFLINE=true
elif [[ "${FIREBREAK_USE_EXISTING:-0}" == 1 ]]; then
    netns_require_private "run the tests against an existing environment (they send requests to pod IPs)"
fi

if [[ "${FIREBREAK_TEST_PHASE:-}" != tests ]]; then
    step "format and lints"
    cargo fmt --all --check
    cargo clippy --workspace --all-targets --locked -- -D warnings

    # The cluster tests start the fleet simulator, a binary of another package of the workspace;
    # build it now (the tests run the same build, then find it up to date) so that a compile error
    # shows here rather than in the first test that needs it.
    step "fleet simulator and tests"
    cargo build --locked --quiet --bin fleet-sim
    cargo test --workspace --locked --all-targets --no-run --quiet

    if [[ "${FIREBREAK_USE_EXISTING:-0}" != 1 ]]; then
        step "local environment tools"
        scripts/toolchain.sh >/dev/null
        if ! netns_is_private; then
            step "private network namespace"
            FIREBREAK_TEST_PHASE=tests exec "$here/netns.sh" run "$here/test.sh" "$@"
        fi
    fi
fi

if [[ "${FIREBREAK_USE_EXISTING:-0}" != 1 ]]; then
    netns_require_private "start the test environment"
    env_name="test"
    step "local environment '$env_name'"
    trap 'scripts/env.sh down "$env_name"' EXIT
    trap 'exit 130' INT TERM
    scripts/env.sh up "$env_name" >/dev/null
    # shellcheck disable=SC1090
    source "target/firebreak-env/$env_name/env"
fi

step "tests"
cargo test --workspace --locked --all-targets --offline
