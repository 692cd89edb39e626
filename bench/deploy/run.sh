#!/usr/bin/env bash
# Deployment benchmarks (127.0.0.1 only, bounded):
#  1. time to Healthy: cold deploy (new image content) vs warm redeploy (only the model version changed)
#  2. wrk against an echo score.py: amlc's scoring server vs gunicorn+flask, same worker count, both on the host
# Usage: bench/deploy/run.sh [path/to/amlc]   (env: DURATION=10s WORKERS=2 CONNECTIONS=16 SKIP_DEPLOY=1 SKIP_WRK=1)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
AMLC="${1:-$root/build/apps/amlc/amlc}"
DURATION="${DURATION:-10s}"
WORKERS="${WORKERS:-2}"
CONNECTIONS="${CONNECTIONS:-16}"
PY=/usr/bin/python3
tmp="$(mktemp -d)"
pids=()
cleanup() {
  for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
  if [ -n "${ws:-}" ]; then "$AMLC" -w "$ws" service delete -n bench-svc -o none >/dev/null 2>&1 || true; fi
  rm -rf "$tmp"
}
trap cleanup EXIT

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.2f'; }

if [ -z "${SKIP_DEPLOY:-}" ]; then
  ws="$tmp/ws"
  "$AMLC" workspace create "$ws" -o none
  mkdir -p "$tmp/app"
  # A unique comment makes the image content new, so the first deploy really builds (cold).
  { echo "# bench $(date +%s%N)"; cat "$root/examples/deploy/echo/score.py"; } > "$tmp/app/score.py"
  echo '{"v": 1}' > "$tmp/model.json"
  "$AMLC" -w "$ws" model register -n echo -p "$tmp/model.json" -o none
  echo '{"v": 2}' > "$tmp/model.json"
  "$AMLC" -w "$ws" model register -n echo -p "$tmp/model.json" -o none
  t0=$(now)
  cold=$("$AMLC" -w "$ws" model deploy -n bench-svc -m echo:1 --es "$tmp/app/score.py")
  t1=$(now)
  warm=$("$AMLC" -w "$ws" service update -n bench-svc -m echo:2)
  t2=$(now)
  over=$("$AMLC" -w "$ws" model deploy -n bench-svc -m echo:1 --es "$tmp/app/score.py" --overwrite)
  t3=$(now)
  built() { echo "$1" | $PY -c 'import json,sys; print(json.load(sys.stdin)["imageBuilt"])'; }
  echo "deploy: cold (image built: $(built "$cold")) $(secs "$t0" "$t1") s to Healthy"
  echo "deploy: warm update, new model version (image built: $(built "$warm")) $(secs "$t1" "$t2") s to Healthy"
  echo "deploy: warm --overwrite redeploy (image built: $(built "$over")) $(secs "$t2" "$t3") s to Healthy"
  echo "deploy: warm/cold ratio $(echo "($t2 - $t1) / ($t1 - $t0)" | bc -l | xargs printf '%.2f')"
  "$AMLC" -w "$ws" service delete -n bench-svc --delete-image -o none
fi

if [ -z "${SKIP_WRK:-}" ]; then
  command -v wrk >/dev/null || { echo "wrk missing: apt-get install wrk" >&2; exit 1; }
  free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
  wait_healthy() {
    for _ in $(seq 1 200); do
      curl -fs "http://127.0.0.1:$1/" >/dev/null 2>&1 && return 0
      sleep 0.05
    done
    echo "server on port $1 did not become healthy" >&2
    return 1
  }
  script="$root/examples/deploy/echo/score.py"
  p1=$(free_port)
  AML_APP_ROOT="$tmp" AZUREML_ENTRY_SCRIPT="$script" AMLC_PORT=$p1 AMLC_HOST=127.0.0.1 WORKER_COUNT=$WORKERS \
    PYTHONPATH="$root/lib/amlc/assets/python" $PY -m amlc_scoring.server >"$tmp/amlc.log" 2>&1 &
  pids+=($!)
  p2=$(free_port)
  (cd "$here" && AZUREML_ENTRY_SCRIPT="$script" exec gunicorn -w "$WORKERS" -b "127.0.0.1:$p2" --log-level warning flask_app:app) \
    >"$tmp/gunicorn.log" 2>&1 &
  pids+=($!)
  wait_healthy "$p1"
  wait_healthy "$p2"
  bench() {
    wrk -t2 -c"$CONNECTIONS" -d"$DURATION" --latency -s "$here/post.lua" "http://127.0.0.1:$1/score" > "$tmp/wrk-$1.txt"
    local rps p99
    rps=$(awk '/Requests\/sec/ {print $2}' "$tmp/wrk-$1.txt")
    p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub("us","",v); v=v/1000} else if (v ~ /ms$/) {sub("ms","",v)} else if (v ~ /s$/) {sub("s","",v); v=v*1000}; print v}' "$tmp/wrk-$1.txt")
    echo "$rps $p99"
  }
  read -r a_rps a_p99 < <(bench "$p1")
  read -r g_rps g_p99 < <(bench "$p2")
  echo "wrk ($WORKERS workers, $CONNECTIONS connections, $DURATION, echo score.py):"
  echo "  amlc scoring server: $a_rps req/s, p99 $a_p99 ms"
  echo "  gunicorn + flask:    $g_rps req/s, p99 $g_p99 ms"
  echo "  ratio req/s (amlc/gunicorn): $(echo "$a_rps / $g_rps" | bc -l | xargs printf '%.2f')x"
  echo "  ratio p99 (gunicorn/amlc, higher is better for amlc): $(echo "$g_p99 / $a_p99" | bc -l | xargs printf '%.2f')x"
fi
