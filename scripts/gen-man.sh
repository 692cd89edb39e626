#!/usr/bin/env bash
# Writes man/amlc.1: the hand-written sections of man/amlc.1.in followed by every command's --help,
# taken from the binary, so the page cannot drift from the CLI (a test compares them).
# Usage: scripts/gen-man.sh [OUTPUT]   (default man/amlc.1)
set -euo pipefail
cd "$(dirname "$0")/.."
AMLC=${AMLC:-build/apps/amlc/amlc}
out=${1:-man/amlc.1}
version=$("$AMLC" --version | awk '{print $2}')
paths=$("$AMLC" completion bash | sed -n '/^_amlc_subs()/,/^}/p' | sed -n 's/^    "\([a-z -]*\)") echo "\(.*\)" ;;$/\1|\2/p')
{
  sed "s/@VERSION@/$version/" man/amlc.1.in
  while IFS='|' read -r path subs; do
    [ -n "$path" ] || continue
    [ -z "$subs" ] || [ "$path" = "completion" ] || continue
    echo ".SS amlc $path"
    echo ".nf"
    # shellcheck disable=SC2086
    "$AMLC" $path --help | sed -e 's/\\/\\e/g' -e 's/^\./\\\&./' -e "s/^'/\\\\\&'/"
    echo ".fi"
  done <<< "$paths"
  echo ".SH SEE ALSO"
  echo "README.md in the amlc sources; az ml v1 documentation."
} > "$out"
