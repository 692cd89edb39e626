#!/usr/bin/env bash
# Regenerates completions/ from the CLI definition (a test fails when they differ from the binary's).
set -euo pipefail
cd "$(dirname "$0")/.."
AMLC=${AMLC:-build/apps/amlc/amlc}
"$AMLC" completion bash > completions/amlc.bash
"$AMLC" completion zsh > completions/_amlc
"$AMLC" completion fish > completions/amlc.fish
