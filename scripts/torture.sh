#!/usr/bin/env bash
# kill -9 at random instants and concurrent amlc processes against one workspace; prints, per operation, how many
# tries there were, how many left the workspace damaged (`workspace check` exit 6) or broke an invariant, and what
# leftovers they left before and after `workspace gc`. Exits 1 if anything was damaged or left after gc.
# Usage: scripts/torture.sh [AMLC_BINARY] [TRIES_PER_OPERATION]
set -uo pipefail
AMLC=${1:-$(cd "$(dirname "$0")/.." && pwd)/build/apps/amlc/amlc}
TRIES=${2:-100}
WORK=$(mktemp -d /var/tmp/amlc-torture.XXXXXX)
trap 'rm -rf "$WORK"' EXIT
WS="$WORK/ws"
a() { "$AMLC" -w "$WS" "$@"; }
"$AMLC" workspace create "$WS" -o none
head -c $((24 << 20)) /dev/urandom > "$WORK/big.bin"
head -c 200000 /dev/urandom > "$WORK/small.bin"
mkdir -p "$WORK/src"
printf 'import sys\nprint("accuracy=0.5")\n' > "$WORK/src/train.py"
cat > "$WORK/sweep.yml" <<'YML'
sampling: {type: random}
parameters:
  lr: uniform(0.01, 0.1)
primary_metric_name: accuracy
primary_metric_goal: maximize
max_total_runs: 3
max_concurrent_runs: 2
YML

damaged=0 broken=0
# Runs amlc with "$@" in the background and kills it with SIGKILL after a random 0..MAX_MS milliseconds.
kill_after() {
  local max_ms=$1; shift
  "$AMLC" -w "$WS" "$@" >/dev/null 2>&1 &
  local pid=$!
  sleep "$(awk -v r="$RANDOM" -v m="$max_ms" 'BEGIN { printf "%.4f", r / 32768 * m / 1000 }')"
  kill -9 "$pid" 2>/dev/null
  wait "$pid" 2>/dev/null
}
check() {
  a workspace check -o none 2>/dev/null
  if [ $? -eq 6 ]; then damaged=$((damaged + 1)); echo "damaged after $1" >&2; fi
}
report() { printf '%-28s tries %4d  damaged %d  broken invariants %d\n' "$1" "$TRIES" "$damaged" "$broken"; }

damaged=0 broken=0
for i in $(seq "$TRIES"); do kill_after 150 model register -n big -p "$WORK/big.bin"; check register; done
report "model register (24 MiB)"
total_damaged=$damaged total_broken=$broken

damaged=0 broken=0
for i in $(seq "$TRIES"); do
  a model register -n del -p "$WORK/small.bin" -o none
  v=$(a model list -n del --latest -o json | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["version"])')
  a model alias set del prod "$v" -o none
  kill_after 60 model delete -i "del:$v"
  has_version=0 has_alias=0
  a model show -i "del:$v" -o none 2>/dev/null && has_version=1
  a model show -i "del@prod" -o none 2>/dev/null && has_alias=1
  if [ $has_version -ne $has_alias ]; then broken=$((broken + 1)); echo "version $v: exists=$has_version alias=$has_alias" >&2; fi
  [ $has_version -eq 1 ] && a model delete -i "del:$v" -o none
  check delete
done
report "model delete (with alias)"
total_damaged=$((total_damaged + damaged)) total_broken=$((total_broken + broken))

damaged=0 broken=0
for i in $(seq "$TRIES"); do kill_after 120 run submit-script -e torture --source-directory "$WORK/src" train.py; check run; done
report "run submit-script"
total_damaged=$((total_damaged + damaged))

damaged=0 broken=0
for i in $(seq "$TRIES"); do
  kill_after 300 sweep submit -f "$WORK/sweep.yml" --source-directory "$WORK/src" -e torture-sweep train.py
  check sweep
done
report "sweep submit"
total_damaged=$((total_damaged + damaged))
# Every sweep the kills left behind can be resumed or canceled.
stuck=0
for id in $(a sweep list -o json | python3 -c 'import json,sys; [print(s["sweepId"]) for s in json.load(sys.stdin) if s["status"] not in ("Completed","Failed","Canceled")]'); do
  a sweep cancel "$id" -o none 2>/dev/null || { stuck=$((stuck + 1)); echo "sweep $id can be neither canceled" >&2; }
done
echo "sweeps left unfinished that cancel could not end: $stuck"
total_broken=$((total_broken + stuck))

read -r count bytes < <(a workspace check -o json | python3 -c 'import json,sys; l=json.load(sys.stdin)["leftovers"]; print(l["count"], l["bytes"])')
echo "leftovers the kills left: $count ($bytes bytes)"

# Concurrency: registers, deletes and gc at once.
damaged=0
for p in 1 2 3 4; do
  ( for i in $(seq 10); do a model register -n "c$p" -p "$WORK/small.bin" -o none || echo "register failed" >&2
      a model delete -i "c$p:latest" -o none || echo "delete failed" >&2; a model register -n "c$p" -p "$WORK/small.bin" -o none; done ) &
done
( for i in $(seq 10); do a workspace gc -o none || echo "gc failed" >&2; done ) &
wait
check concurrency
echo "concurrent registers/deletes/gc: damaged $damaged"
total_damaged=$((total_damaged + damaged))

a workspace gc -o none
read -r count2 bytes2 < <(a workspace check -o json | python3 -c 'import json,sys; l=json.load(sys.stdin)["leftovers"]; print(l["count"], l["bytes"])')
echo "leftovers after gc:  $count2 ($bytes2 bytes)"
echo "total: damaged $total_damaged, broken invariants $total_broken"
[ "$total_damaged" -eq 0 ] && [ "$total_broken" -eq 0 ] && [ "$count2" -eq 0 ]
