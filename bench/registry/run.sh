#!/usr/bin/env bash
# Registry throughput vs cp, in the same run:
#  1. `amlc model register` of a 1 GiB folder of 1000 files vs `cp -r` of the same folder
#     (target: amlc throughput >= 0.8x cp's);
#  2. re-registering identical contents (target: < 10% of cp's time, zero extra bytes stored).
# Usage: bench/registry/run.sh [AMLC_BINARY] [FILES] [FILE_KB]
set -euo pipefail
AMLC=${1:-$(cd "$(dirname "$0")/../.." && pwd)/build/apps/amlc/amlc}
FILES=${2:-1000}
KB=${3:-1024}
WORK=$(mktemp -d /var/tmp/amlc-bench-registry.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

python3 - "$WORK/src" "$FILES" "$KB" <<'PY'
import os, sys
root, n, kb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
for i in range(n):
    d = os.path.join(root, f"shard{i % 20:02d}")
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, f"part{i:05d}.bin"), "wb") as f:
        f.write(os.urandom(kb * 1024))
PY
sync
now() { date +%s.%N; }
# Warm the page cache for both contenders alike.
cat "$WORK"/src/*/* > /dev/null

# Three alternating rounds (disk writeback makes single timings noisy); the median of each is reported.
cp_times=() reg_times=() rereg_times=()
for round in 1 2 3; do
  t0=$(now); cp -r "$WORK/src" "$WORK/cp$round"; sync; t1=$(now)
  "$AMLC" workspace create "$WORK/ws$round" -o none
  t2=$(now); "$AMLC" -w "$WORK/ws$round" model register -n big -p "$WORK/src" -o none; sync; t3=$(now)
  bytes1=$(du -sb "$WORK/ws$round/.amlc/blobs" | cut -f1)
  t4=$(now); "$AMLC" -w "$WORK/ws$round" model register -n big -p "$WORK/src" -o none; sync; t5=$(now)
  bytes2=$(du -sb "$WORK/ws$round/.amlc/blobs" | cut -f1)
  cp_times+=("$(python3 -c "print($t1 - $t0)")") reg_times+=("$(python3 -c "print($t3 - $t2)")") rereg_times+=("$(python3 -c "print($t5 - $t4)")")
  rm -rf "$WORK/cp$round" "$WORK/ws$round"
done

python3 - "${cp_times[*]}" "${reg_times[*]}" "${rereg_times[*]}" "$bytes1" "$bytes2" "$FILES" "$KB" <<'PY'
import statistics, sys
cps, regs,ueregs = (list(map(float, a.split())) for a in sys.argv[1:4])
b1, b2, n, kb = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6]), int(sys.argv[7])
cp, reg, rereg = statistics.median(cps), statistics.median(regs), statistics.median(ueregs)
mib = n * kb / 1024
print(f"data: {n} files, {mib:.0f} MiB; medians of 3 rounds (all: cp {cps}, register {regs}, re-register {ueregs})")
print(f"cp -r:              {cp:6.3f} s  ({mib / cp:7.1f} MiB/s)")
print(f"amlc register:      {reg:6.3f} s  ({mib / reg:7.1f} MiB/s)   throughput ratio vs cp: {cp / reg:.2f}x (target >= 0.80x)")
print(f"amlc re-register:   {rereg:6.3f} s  = {100 * rereg / cp:.1f}% of cp's time (target < 10%), extra bytes stored: {b2 - b1}")
PY
