#!/usr/bin/env bash
# Early-termination savings on synthetic learning curves (50 configs, 30 intervals, 10 concurrent, 10 seeds).
#   bench/policy/run.sh [--configs 50] [--intervals 30] [--concurrency 10] [--seeds 10]
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${AMLC_BENCH_OUT:-$(mktemp -d)}"
g++ -std=c++20 -O2 -Wall -Wextra -Wpedantic -I"$root/lib" "$here/bench_policy.cpp" \
  "$root"/lib/amlc/sweep/{config,expression,sampler,sampler_gp,sampler_tpe,policy,journal}.cpp "$root/lib/amlc/config/document.cpp" \
  "$root"/lib/amlc/core/{error,fs,hash,json,process,util}.cpp -lyaml-cpp -lcrypto -lpthread -o "$out/amlc_bench_policy"
"$out/amlc_bench_policy" "$@" | tee "$out/policy.jsonl"
/usr/bin/python3 - "$out/policy.jsonl" <<'PY'
import json, sys
for l in open(sys.argv[1]):
    r = json.loads(l)
    print("%-45s compute saved %5.1f%% (min %5.1f%%), best metric loss %.3f%% (worst %.3f%%)" % (
        r["policy"], 100 * r["mean_compute_saved"], 100 * r["min_compute_saved"], 100 * r["mean_best_loss"], 100 * r["worst_best_loss"]))
PY
