#!/usr/bin/env bash
# Installs the TrueType font the judge benchmark's plot uses for its text (Debian's
# fonts-dejavu-core: /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf). Without it
# `cargo run --release -p judge-bench` still draws the plot, without text, and report.md
# names the lines. Another font: FIREBREAK_BENCH_FONT=/path/to/font.ttf.
set -euo pipefail

font=/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf
if [[ -r "$font" ]]; then
    echo "font present: $font"
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    echo "need root to install fonts-dejavu-core (or set FIREBREAK_BENCH_FONT)" >&2
    exit 1
fi
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-dejavu-core
echo "installed: $font"
