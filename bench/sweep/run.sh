#!/usr/bin/env bash
# Sweep scheduling overhead: N trials of a trivial script at concurrency 2 through `amlc sweep submit`, vs the
# same N python3 processes started by `xargs -P2`, in the same run. Target: ratio < 1.2x.
#
# The machine's speed drifts by 20-30% over tens of seconds (shared host), so one pair of timings says little:
# the two contenders alternate for ROUNDS rounds (xargs first in odd rounds, amlc first in even ones), each round
# gives a ratio, and the median ratio is the result. Every amlc round gets a fresh workspace; all are removed at
# the end (removing them between rounds would slow the next round's file creation on ext4 without a journal:
# every inode freed in the last minutes is skipped, one by one, by each new allocation in its block group. For
# the same reason the first round of a run started right after another one is slower than the rest).
#
# Usage: bench/sweep/run.sh [AMLC_BINARY] [TRIALS (default 1000)] [ROUNDS (default 3)]
set -euo pipefail
AMLC=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/apps/amlc/amlc}
N=${2:-1000}
ROUNDS=${3:-3}
WORK=$(mktemp -d /var/tmp/amlc-bench-sweep.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

mkdir -p "$WORK/src"
printf 'print("accuracy=1")\n' > "$WORK/src/trivial.py"
# The real interpreter for both contenders (a pyenv/asdf shim on PATH would cost more than everything measured).
PY=$(python3 -c 'import sys; print(sys.executable)')
printf 'environment:\n  python:\n    interpreterPath: %s\n' "$PY" > "$WORK/py.runconfig"
cat > "$WORK/sweep.yml" <<YML
sampling:
  type: random
  parameter_space:
  - {name: x, expression: uniform, values: [0, 1]}
policy: {type: NoTerminationPolicy}
primary_metric_name: accuracy
primary_metric_goal: Maximize
max_total_runs: $N
max_concurrent_runs: 2
seed: 1
YML
now() { date +%s.%N; }
# Warm up python and the page cache alike for both contenders.
"$PY" "$WORK/src/trivial.py" > /dev/null

run_xargs() {
  local t0 t1
  t0=$(now)
  seq "$N" | xargs -P2 -I{} "$PY" "$WORK/src/trivial.py" --x 0.{} > /dev/null
  t1=$(now)
  echo "$t0 $t1"
}
run_amlc() {
  local ws=$WORK/ws$1 t0 t1
  "$AMLC" workspace create "$ws" -o none
  t0=$(now)
  "$AMLC" -w "$ws" -o none sweep submit -f "$WORK/sweep.yml" -c "$WORK/py.runconfig" --source-directory "$WORK/src" trivial.py 2> /dev/null
  t1=$(now)
  local completed
  completed=$("$AMLC" -w "$ws" sweep list -o tsv | awk -F'\t' '{print $5}' | head -1)
  [ "$completed" = "$N" ] || { echo "bench: only $completed of $N trials completed" >&2; exit 1; }
  echo "$t0 $t1"
}

results=()
for r in $(seq "$ROUNDS"); do
  if (( r % 2 )); then x=$(run_xargs); a=$(run_amlc "$r"); else a=$(run_amlc "$r"); x=$(run_xargs); fi
  results+=("$x $a")
done

python3 - "$N" "${results[@]}" <<'PY'
import statistics, sys
n = int(sys.argv[1])
rounds = []
for r in sys.argv[2:]:
    x0, x1, a0, a1 = map(float, r.split())
    rounds.append((x1 - x0, a1 - a0))
print(f"trials per round: {n}, concurrency 2, {len(rounds)} rounds (alternating order)")
for i, (x, a) in enumerate(rounds, 1):
    print(f"  round {i}: xargs -P2 {x:6.2f} s ({1000 * x / n:5.2f} ms/trial)   "
          f"amlc sweep {a:6.2f} s ({1000 * a / n:5.2f} ms/trial)   ratio {a / x:.3f}x")
ratio = statistics.median(a / x for x, a in rounds)
xm = statistics.median(x for x, _ in rounds)
am = statistics.median(a for _, a in rounds)
print(f"median: xargs {1000 * xm / n:.2f} ms/trial, amlc {1000 * am / n:.2f} ms/trial "
      f"(+{1000 * (am - xm) / n:.2f} ms/trial)")
print(f"ratio (median of rounds): {ratio:.3f}x  (target < 1.2x)")
PY
