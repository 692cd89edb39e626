#!/usr/bin/env bash
# Sweep scheduling overhead: N trials of a trivial script at concurrency 2 through `amlc sweep submit`,
# vs the same N python3 processes started by `xargs -P2`, in the same run. Target: ratio < 1.2x.
# Usage: bench/sweep/run.sh [AMLC_BINARY] [TRIALS (default 1000)]
set -euo pipefail
AMLC=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/apps/amlc/amlc}
N=${2:-1000}
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
"$AMLC" workspace create "$WORK/ws" -o none
now() { date +%s.%N; }
# Warm up python and the page cache alike for both contenders.
"$PY" "$WORK/src/trivial.py" > /dev/null

t0=$(now)
seq "$N" | xargs -P2 -I{} "$PY" "$WORK/src/trivial.py" --x 0.{} > /dev/null
t1=$(now)
"$AMLC" -w "$WORK/ws" -o none sweep submit -f "$WORK/sweep.yml" -c "$WORK/py.runconfig" --source-directory "$WORK/src" trivial.py
t2=$(now)
seq "$N" | xargs -P2 -I{} "$PY" "$WORK/src/trivial.py" --x 0.{} > /dev/null
t3=$(now)
completed=$("$AMLC" -w "$WORK/ws" sweep list -o tsv | awk -F'\t' '{print $5}' | head -1)

python3 - "$t0" "$t1" "$t2" "$t3" "$N" "$completed" <<'PY'
import sys
t0, t1, t2, t3 = map(float, sys.argv[1:5])
n, completed = int(sys.argv[5]), sys.argv[6]
xargs = min(t1 - t0, t3 - t2)   # the better of two xargs runs (before and after amlc)
amlc = t2 - t1
print(f"trials:            {n} (completed: {completed})")
print(f"xargs -P2:         {xargs:.2f} s  ({1000 * xargs / n:.2f} ms/trial)  [runs: {t1 - t0:.2f} s, {t3 - t2:.2f} s]")
print(f"amlc sweep (c=2):  {amlc:.2f} s  ({1000 * amlc / n:.2f} ms/trial)")
print(f"ratio:             {amlc / xargs:.2f}x  (target < 1.2x)")
PY
