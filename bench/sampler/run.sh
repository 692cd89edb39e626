#!/usr/bin/env bash
# Sampler quality: amlc random / amlc bayesian (GP-EI) / Optuna TPESampler on Branin, Hartmann-6 and a 2-D
# quadratic; 100 sequential trials, 20 seeds (seeds 0..19 for everyone). Prints median best regret and ratios.
#   bench/sampler/run.sh [--trials 100] [--seeds 20] [--variants]     (--variants adds amlc's TPE samplers)
# Needs: g++, yaml-cpp, nlohmann-json, OpenSSL headers (the amlc build deps) and python3-optuna
# (apt-get install -y python3-optuna; run by Debian's /usr/bin/python3).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${AMLC_BENCH_OUT:-$(mktemp -d)}"
trials=100 seeds=20 variants=""
while [ $# -gt 0 ]; do
  case "$1" in
    --trials) trials="$2"; shift 2 ;;
    --seeds) seeds="$2"; shift 2 ;;
    --variants) variants="--variants"; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
echo "building amlc_bench_sampler in $out ..." >&2
g++ -std=c++20 -O2 -Wall -Wextra -Wpedantic -I"$root/lib" "$here/bench_sampler.cpp" \
  "$root"/lib/amlc/sweep/{config,expression,sampler,sampler_gp,sampler_tpe,policy,journal}.cpp "$root/lib/amlc/config/document.cpp" \
  "$root"/lib/amlc/core/{error,fs,hash,json,process,util}.cpp -lyaml-cpp -lcrypto -lpthread -o "$out/amlc_bench_sampler"
echo "running amlc samplers and Optuna TPE (in parallel) ..." >&2
"$out/amlc_bench_sampler" --trials "$trials" --seeds "$seeds" $variants > "$out/amlc.jsonl" &
amlc_pid=$!
/usr/bin/python3 "$here/optuna_bench.py" --trials "$trials" --seeds "$seeds" > "$out/optuna.jsonl"
wait "$amlc_pid"
/usr/bin/python3 - "$out/amlc.jsonl" "$out/optuna.jsonl" <<'PY'
import json, sys
rows = [json.loads(l) for f in sys.argv[1:] for l in open(f) if l.strip()]
by = {}
for r in rows:
    by.setdefault(r["function"], {})[r["sampler"]] = r
print("%-10s %-22s %14s %9s" % ("function", "sampler", "median_regret", "seconds"))
for fn, s in by.items():
    for name, r in s.items():
        print("%-10s %-22s %14.6g %9.1f" % (fn, name, r["median_regret"], r["seconds"]))
    b, o, rnd = s.get("amlc_bayesian"), s.get("optuna_tpe"), s.get("amlc_random")
    if b and o and rnd:
        ok = b["median_regret"] <= o["median_regret"] and b["median_regret"] < rnd["median_regret"]
        print("%-10s ratio bayesian/optuna_tpe = %.3g, bayesian/random = %.3g  -> %s" % (
            fn, b["median_regret"] / max(o["median_regret"], 1e-300), b["median_regret"] / max(rnd["median_regret"], 1e-300),
            "OK" if ok else "WORSE"))
PY
echo "raw results: $out" >&2
