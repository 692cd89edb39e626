#!/usr/bin/env bash
# Builds the libFuzzer targets (preset `fuzz`: clang-14, ASan+UBSan, build-fuzz/) and runs each for
# SECONDS_PER_TARGET seconds (default 60), one after the other, starting from its seed corpus in fuzz/corpus/<target>/.
# Each target first replays its fuzz/corpus/<target>/regress-* inputs in full (the fuzzing run would cut a seed
# longer than its -max_len).
# Fails (exit 1) on any crash, sanitizer report, leak, timeout (an input taking over 10 s) or out-of-memory; the
# input is kept in build-fuzz/artifacts/<target>/ and the command to reproduce it is printed.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]
#   TARGETS: config extract ignore sweep_expr (default: all four)
#   FUZZ_JOBS=N      run N libFuzzer workers per target (default 1; the machine has 2 cores shared)
#   FUZZ_KEEP=1      keep what the run found new in build-fuzz/corpus/<target>/ (it is recreated from the seeds
#                    otherwise); merge useful inputs into fuzz/corpus/ by hand
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(config extract ignore sweep_expr)

bash scripts/install-deps.sh --fuzz  # idempotent: installs only what is missing
export CCACHE_BASEDIR="$PWD" CCACHE_NOHASHDIR=true
cmake --preset fuzz >/dev/null
cmake --build --preset fuzz

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export ASAN_SYMBOLIZER_PATH=${ASAN_SYMBOLIZER_PATH:-$(command -v llvm-symbolizer-14 || true)}
status=0
for t in "${targets[@]}"; do
  bin=build-fuzz/fuzz/fuzz_$t
  seeds=fuzz/corpus/$t
  [ -x "$bin" ] || { echo "fuzz: no target '$t'" >&2; exit 2; }
  work=build-fuzz/corpus/$t
  [ "${FUZZ_KEEP:-0}" = 1 ] || rm -rf "$work"
  mkdir -p "$work" "build-fuzz/artifacts/$t"
  opts=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="build-fuzz/artifacts/$t/")
  case $t in
    config) opts+=(-max_len=16384 -dict=fuzz/yaml.dict) ;;
    sweep_expr) opts+=(-max_len=4096) ;;
    ignore) opts+=(-max_len=4096) ;;
    extract) opts+=(-max_len=65536) ;;
  esac
  log=build-fuzz/fuzz-$t.log
  regress=()
  for r in "$seeds"/regress-*; do [ -e "$r" ] && regress+=("$r"); done
  if [ ${#regress[@]} -gt 0 ]; then
    if ! "$bin" -timeout=10 -rss_limit_mb=2048 -malloc_limit_mb=2048 "${regress[@]}" >"$log" 2>&1; then
      status=1
      echo "fuzz: $t FAILED on a regress input (log: $log)" >&2
      grep -E "^Running: |ERROR: |SUMMARY: " "$log" | tail -5 >&2 || true
      continue
    fi
    echo "fuzz: $t: ${#regress[@]} regress inputs pass" >&2
  fi
  echo "fuzz: $t for ${seconds}s" >&2
  if [ "${FUZZ_JOBS:-1}" -gt 1 ]; then
    opts+=(-jobs="$FUZZ_JOBS" -workers="$FUZZ_JOBS")
  fi
  if "$bin" "${opts[@]}" "$work" "$seeds" >"$log" 2>&1; then
    grep -E "^stat::number_of_executed_units|^Done [0-9]+ runs" "$log" | sed "s/^/fuzz: $t: /" >&2 || true
  else
    status=1
    echo "fuzz: $t FAILED (log: $log)" >&2
    grep -E "ERROR: |SUMMARY: |Test unit written to|fuzz_extract: " "$log" | head -20 >&2 || true
    for a in build-fuzz/artifacts/$t/*; do
      [ -e "$a" ] && echo "fuzz: reproduce: $bin $a" >&2
    done
  fi
done
exit $status
