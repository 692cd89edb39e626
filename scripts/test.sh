#!/usr/bin/env bash
# README command 2: install what is missing, build, start Docker (and build the local base image if
# needed), then run the whole test suite (unit, end-to-end, Python, Docker) with ctest; then the same C++
# suites again on the AddressSanitizer + UndefinedBehaviorSanitizer build; then a short fuzzing pass (each
# libFuzzer target for 30 s from its seed corpus, scripts/fuzz.sh; the scoring server's HTTP fuzzer runs in
# the Python suite).
# Usage: scripts/test.sh [PRESET]   (release by default: release suite, asan suite, fuzzing;
#                                    asan: only the asan suite; AMLC_SKIP_ASAN=1 / AMLC_SKIP_FUZZ=1 skip a pass)
set -euo pipefail
cd "$(dirname "$0")/.."
preset=${1:-release}
bash scripts/install-deps.sh
bash scripts/docker-setup.sh
bash scripts/build.sh "$preset"
ctest --preset "$preset" --timeout 900
if [ "$preset" = release ] && [ -z "${AMLC_SKIP_ASAN:-}" ]; then
  echo "test: the C++ suites again under AddressSanitizer + UndefinedBehaviorSanitizer" >&2
  bash scripts/build.sh asan
  ctest --preset asan --timeout 900 -LE python
fi
if [ "$preset" = release ] && [ -z "${AMLC_SKIP_FUZZ:-}" ]; then
  echo "test: fuzzing, 30 s per target" >&2
  bash scripts/fuzz.sh 30
fi
