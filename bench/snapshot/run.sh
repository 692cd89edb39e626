#!/usr/bin/env bash
# Snapshot throughput: `amlc snapshot create` vs `tar -czf` on the same tree, in the same run.
#
#   bench/snapshot/run.sh [AMLC_BINARY]
#   FILES=20000 MB=500 LEVELS="1 3" KEEP=1 bench/snapshot/run.sh build/apps/amlc/amlc
#
# Builds FILES files totalling about MB megabytes of random-ish, compressible data (text-like lines with
# random words, some binary-ish noise: gzip compresses it ~3x), warms the page cache, then times each tool
# (best of RUNS) and prints the ratio amlc/tar (< 1 means amlc is faster).
set -euo pipefail

AMLC=${1:-${AMLC:-$(dirname "$0")/../../build/apps/amlc/amlc}}
FILES=${FILES:-20000}
MB=${MB:-500}
RUNS=${RUNS:-2}
LEVELS=${LEVELS:-1}
WORK=${WORK:-$(mktemp -d "${TMPDIR:-/tmp}/amlc-bench-snapshot.XXXXXX")}
[ -x "$AMLC" ] || { echo "amlc binary not found: $AMLC (pass it as the first argument)" >&2; exit 2; }
cleanup() { [ -n "${KEEP:-}" ] || rm -rf "$WORK"; }
trap cleanup EXIT

TREE="$WORK/tree"
if [ ! -d "$TREE" ]; then
  echo "building $FILES files, ~$MB MB in $TREE ..." >&2
  python3 - "$TREE" "$FILES" "$MB" <<'PY'
import os, random, sys
root, files, mb = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(42)
words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 10))) for _ in range(5000)]
avg = mb * 1024 * 1024 // files
# One pool of content to slice from keeps generation fast; offsets differ per file.
pool_lines = []
size = 0
while size < 8 * 1024 * 1024:
    if rng.random() < 0.1:
        line = os.urandom(rng.randint(8, 40)).hex()
    else:
        line = " ".join(rng.choice(words) for _ in range(rng.randint(4, 16)))
    pool_lines.append(line)
    size += len(line) + 1
pool = ("\n".join(pool_lines) + "\n").encode()
for i in range(files):
    d = os.path.join(root, "d%03d" % (i % 200), "s%02d" % (i % 7))
    os.makedirs(d, exist_ok=True)
    n = max(1, int(rng.expovariate(1.0 / avg))) if i % 50 else avg * 3
    n = min(n, len(pool) - 1)
    start = rng.randrange(0, len(pool) - n)
    with open(os.path.join(d, "f%05d.txt" % i), "wb") as f:
        f.write(pool[start:start + n])
PY
fi
echo "tree: $(find "$TREE" -type f | wc -l) files, $(du -sm "$TREE" | cut -f1) MB" >&2
cat $(find "$TREE" -type f | head -100000) > /dev/null  # warm the page cache

# Best wall time of RUNS runs of "$@", with that run's CPU time (user+sys, children included): "wall cpu".
# On a busy machine the CPU time is the fairer comparison (tar -czf runs tar and gzip as two processes).
best() {
  local b="" bc=""
  for _ in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %U %S" -o "$WORK/time.txt" "$@" > /dev/null
    read -r w u s < "$WORK/time.txt"
    local c
    c=$(echo "$u + $s" | bc -l)
    if [ -z "$b" ] || (( $(echo "$w < $b" | bc -l) )); then b=$w; bc=$c; fi
  done
  echo "$b $bc"
}

export AMLC_SNAPSHOT_MAX_FILES=$((FILES * 2)) AMLC_SNAPSHOT_MAX_MB=$((MB * 4))
read -r TAR TARCPU < <(best tar -czf "$WORK/tar.tar.gz" -C "$TREE" .)
TARSIZE=$(stat -c %s "$WORK/tar.tar.gz")
printf '%-22s %8.2f s wall %8.2f s cpu  %6d MB archive\n' "tar -czf" "$TAR" "$TARCPU" $((TARSIZE / 1048576))
for L in $LEVELS; do
  read -r T TCPU < <(best "$AMLC" snapshot create "$TREE" -f "$WORK/amlc.tar.gz" --level "$L")
  SIZE=$(stat -c %s "$WORK/amlc.tar.gz")
  printf '%-22s %8.2f s wall %8.2f s cpu  %6d MB archive  ratio amlc/tar: wall %.2f cpu %.2f\n' \
    "amlc snapshot --level $L" "$T" "$TCPU" $((SIZE / 1048576)) "$(echo "$T / $TAR" | bc -l)" "$(echo "$TCPU / $TARCPU" | bc -l)"
done
