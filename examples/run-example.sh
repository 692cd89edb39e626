#!/usr/bin/env bash
# The churn example end to end, in a fresh workspace: one training run, a HyperDrive sweep, register the
# best model, deploy it on the local Docker engine, score it, delete everything again.
# Needs: amlc built (AMLC=path, default build/apps/amlc/amlc) and a Docker engine with the base image
# (scripts/docker-setup.sh). Run by scripts/example.sh.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
AMLC=${AMLC:-$HERE/../build/apps/amlc/amlc}
WORK=$(mktemp -d /tmp/amlc-example.XXXXXX)
export AMLC_WORKSPACE="$WORK/ws"
SERVICE=churn-example
cleanup() {
  "$AMLC" service delete -n "$SERVICE" -o none >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
step() { printf '\n\033[1m== %s\033[0m\n' "$*" >&2; }
field() { python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval("d" + sys.argv[1]))' "$1"; }

step "workspace"
"$AMLC" workspace create "$AMLC_WORKSPACE" --name churn-demo -o table

step "one training run (local process)"
run=$("$AMLC" run submit-script -e churn --source-directory "$HERE/churn/src" train.py --epochs 5)
echo "$run" | field '["status"]'
run_id=$(echo "$run" | field '["runId"]')
"$AMLC" run metrics -r "$run_id" -o table | tail -3

step "HyperDrive sweep: 8 trials, 2 at a time, Bandit policy"
sweep=$("$AMLC" sweep submit -f "$HERE/churn/sweep.yml" --source-directory "$HERE/churn/src" -e churn-sweep --seed 7 train.py)
sweep_id=$(echo "$sweep" | field '["sweepId"]')
"$AMLC" sweep show "$sweep_id" -o table

step "register the best trial's model"
"$AMLC" sweep best "$sweep_id" --register-model churn --asset-path outputs/model.json -o yaml
"$AMLC" model list -o table

step "deploy it as a local web service"
"$AMLC" model deploy -n "$SERVICE" -m churn:1 --ic "$HERE/churn/deploy/inferenceconfig.yml" \
  --dc "$HERE/churn/deploy/deploymentconfig.yml" --overwrite -o table

step "score it"
"$AMLC" service run -n "$SERVICE" -d @"$HERE/churn/deploy/sample-request.json"

step "delete the service and the model"
"$AMLC" service delete -n "$SERVICE" -o table
"$AMLC" model delete -i churn:1 -o table
"$AMLC" workspace check -o table
echo "example: OK" >&2
