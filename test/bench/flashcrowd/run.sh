#!/usr/bin/env bash
# The flash-crowd benchmark with put+get on and then off, as the issue asks
# for both. Builds coral once; extra arguments go to both runs, e.g.
#
#   bash test/bench/flashcrowd/run.sh -nodes 100 -direct-timeout 5m
#
# Each run prints its full report; the last two lines are the runs'
# key=value summaries (put_get=true first).
set -euo pipefail
cd "$(dirname "$0")/../../.."
bin=${CORAL_BIN:-}
if [ -z "$bin" ]; then
  work=$(mktemp -d /tmp/coral-flashcrowd-bin.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  go build -o "$work/coral" ./app/cmd/coral
  bin=$work/coral
fi
summaries=()
for pg in true false; do
  echo "=== put_get=$pg"
  out=$(go run ./test/bench/flashcrowd -bin "$bin" -putget="$pg" "$@" | tee /dev/stderr | tail -n 1)
  summaries+=("$out")
done 2>&1
printf '%s\n' "${summaries[@]}"
