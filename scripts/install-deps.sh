#!/usr/bin/env bash
# Installs (as root, with apt) whatever amlc's build, tests and example need and is missing.
# Idempotent: packages already installed are not touched; apt-get update runs only when needed.
# Usage: scripts/install-deps.sh [--bench] [--fuzz] [--lint]
#   --bench adds wrk, Optuna, gunicorn and Flask for bench/
#   --lint adds clang-format and clang-tidy (14) for scripts/lint.sh
#   --fuzz adds clang-14 with libFuzzer and the sanitizer runtimes (libclang-rt-14-dev), llvm-symbolizer and zlib for
#          scripts/fuzz.sh
set -euo pipefail
packages=(
  g++ cmake ninja-build ccache pkg-config git curl ca-certificates python3
  libcli11-dev libyaml-cpp-dev nlohmann-json3-dev libcurl4-openssl-dev libarchive-dev libssl-dev doctest-dev
  docker.io debootstrap
)
for arg in "$@"; do
  case $arg in
    --bench) packages+=(wrk python3-optuna python3-flask gunicorn hyperfine) ;;
    --lint) packages+=(clang-format-14 clang-tidy-14 clang-format clang-tidy) ;;
    --fuzz) packages+=(clang-14 libclang-rt-14-dev llvm-14 zlib1g-dev) ;;
    *) echo "install-deps: unknown option $arg" >&2; exit 2 ;;
  esac
done
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi
echo "install-deps: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
if ! apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/amlc-apt.log 2>&1; then
  apt-get update -qq >/dev/null
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/tmp/amlc-apt.log 2>&1 || { tail -30 /tmp/amlc-apt.log >&2; exit 1; }
fi
