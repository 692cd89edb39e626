#!/usr/bin/env bash
# README command 1: install what is missing, build, start Docker, then run the example in examples/
# end to end (train, sweep, register, deploy, score, delete) in a fresh workspace.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh release
bash scripts/docker-setup.sh
AMLC="$PWD/build/apps/amlc/amlc" bash examples/run-example.sh
