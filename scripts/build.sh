#!/usr/bin/env bash
# Configures and builds amlc (release preset: build/, warnings are errors) with 2 jobs.
# Usage: scripts/build.sh [PRESET]   (PRESET: release (default) or asan)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
# ccache: paths relative to the checkout, so a fresh clone (CI) reuses the cache of another one.
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake --preset "$preset" >/dev/null
cmake --build --preset "$preset"
