#!/usr/bin/env bash
# README command 2: install what is missing, build, start Docker (and build the local base image if
# needed), then run the whole test suite (unit, end-to-end, Python, Docker) with ctest.
# Usage: scripts/test.sh [PRESET]   (release by default; asan for the sanitizer build)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
bash scripts/install-deps.sh
bash scripts/build.sh "$preset"
bash scripts/docker-setup.sh
ctest --preset "$preset" --timeout 900
