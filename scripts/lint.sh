#!/usr/bin/env bash
# The style and static checks CI runs (scripts/test.sh calls this after the release build):
#   1. clang-format (.clang-format): every C++ file under lib/ apps/ tests/ fuzz/ bench/ is formatted; a diff fails.
#      Fix with: scripts/lint.sh --fix
#   2. clang-tidy (.clang-tidy, warnings are errors) on every lib/ and apps/ source, with the flags of the release
#      build (build/compile_commands.json; run scripts/build.sh first).
# clang-tidy takes about 10 s of CPU per file, so a file that passed is remembered (like ccache) in
# ${XDG_CACHE_HOME:-~/.cache}/amlc-lint, keyed by the SHA-256 of: the file, every project header, .clang-tidy and
# the clang-tidy version. Changing a header re-checks everything; a system header upgrade is not noticed (clear the
# folder after one). Only passes are remembered, never a failure.
# Usage: scripts/lint.sh [--fix]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh --lint
fix=0
[ "${1:-}" = --fix ] && fix=1

mapfile -t cxx < <(git ls-files -co --exclude-standard -- 'lib/*.cpp' 'lib/*.hpp' 'apps/*.cpp' 'apps/*.hpp' \
  'tests/*.cpp' 'tests/*.hpp' 'fuzz/*.cpp' 'fuzz/*.hpp' 'bench/*.cpp' 'bench/*.hpp' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
if [ $fix = 1 ]; then
  clang-format -i "${cxx[@]}"
  echo "lint: formatted ${#cxx[@]} files" >&2
  exit 0
fi
if ! clang-format --dry-run -Werror "${cxx[@]}" 2>/tmp/amlc-format.log; then
  grep -m 20 'error:' /tmp/amlc-format.log >&2 || true
  echo "lint: files above are not formatted as .clang-format says; run scripts/lint.sh --fix" >&2
  exit 1
fi
echo "lint: clang-format: ${#cxx[@]} files formatted" >&2

[ -f build/compile_commands.json ] || { echo "lint: build/compile_commands.json is missing; run scripts/build.sh first" >&2; exit 1; }
cache=${XDG_CACHE_HOME:-$HOME/.cache}/amlc-lint
mkdir -p "$cache"
common=$( { clang-tidy --version; cat .clang-tidy; git ls-files -co --exclude-standard -- 'lib/*.hpp' 'apps/*.hpp' | sort | xargs cat; } | sha256sum | cut -c1-64)
todo=()
for f in "${cxx[@]}"; do
  case $f in lib/*.cpp|apps/*.cpp) ;; *) continue ;; esac
  key=$( { echo "$common"; echo "$f"; cat "$f"; } | sha256sum | cut -c1-64)
  [ -e "$cache/$key" ] || todo+=("$f:$key")
done
echo "lint: clang-tidy: ${#todo[@]} files to check (the others passed unchanged before)" >&2
[ ${#todo[@]} -eq 0 ] && exit 0
export cache
printf '%s\n' "${todo[@]}" | xargs -P 2 -I{} bash -c '
  f=${1%%:*}; key=${1##*:}
  if out=$(clang-tidy -p build --quiet --extra-arg=-Wno-unknown-warning-option "$f" 2>&1); then
    touch "$cache/$key"
  else
    printf "%s\n" "$out" | grep -v "warnings generated\|Suppressed\|Use -header-filter\|Use -system-headers" >&2
    exit 255
  fi' _ {} || { echo "lint: clang-tidy found problems (above); fix them, or change .clang-tidy with a reason" >&2; exit 1; }
echo "lint: clang-tidy: passed" >&2
