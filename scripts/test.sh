#!/usr/bin/env bash
# The project's test command (README "Development"): checks formatting and lints, builds the
# local environment's tools if they are not cached yet, starts one environment shared by the
# whole run (each test makes its own namespace), runs every test, and stops the environment
# again, whether the tests pass, fail or are interrupted.
#
# Set FIREBREAK_USE_EXISTING=1 to test against the cluster in KUBECONFIG and the Prometheus in
# FIREBREAK_PROMETHEUS_URL / FIREBREAK_SCRAPE_DIR instead of starting an environment.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."

step() { printf '\n== %s\n' "$*" >&2; }

step "format and lints"
cargo fmt --all --check
cargo clippy --workspace --all-targets --locked -- -D warnings

# The cluster tests start the fleet simulator, a binary of another package of the workspace;
# build it now (the tests run the same build, then find it up to date) so that a compile error
# shows here rather than in the first test that needs it.
step "fleet simulator"
cargo build --locked --quiet --bin fleet-sim

if [[ "${FIREBREAK_USE_EXISTING:-0}" != 1 ]]; then
    env_name="test"
    step "local environment '$env_name'"
    trap 'scripts/env.sh down "$env_name"' EXIT
    trap 'exit 130' INT TERM
    scripts/env.sh up "$env_name" >/dev/null
    # shellcheck disable=SC1090
    source "target/firebreak-env/$env_name/env"
fi

step "tests"
cargo test --workspace --locked --all-targets
